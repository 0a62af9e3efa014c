"""Metrics, readiness verdicts and request logs, through Flask's test client (in memory)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from domain.application import Ledger
from domain.promise import PromiseTerms
from projections.due_work_popo import POPODueWorkStore
from service.app import create_app
from service.bootstrap import bootstrap
from service.logs import configure_logging
from service.metrics import Metrics
from service.reminders import Dispatcher
from service.settings import Settings
from tests.clock import T0
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture
def observed() -> Iterator[Served]:
    settings = Settings(database_url="memory:", metrics_token=METRICS_TOKEN, ready_max_lag=5)
    components = bootstrap(settings)
    app = create_app(settings, components)
    tenant = components.ledger.register_tenant("acme", at=components.clock())
    components.projector.catch_up()
    with app.test_client() as client:
        yield Served(app, components, client, tenant)
    components.close()


def scrape(client: FlaskClient) -> dict[str, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        f"{sample.name}{json.dumps(sample.labels, sort_keys=True)}": sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def post_made(served: Served, promise_id: str) -> int:
    body, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made(promise_id)))
    return served.client.post("/v1/tenants/acme/events", data=body, headers=headers).status_code


def test_metrics_need_the_metrics_token(observed: Served) -> None:
    assert observed.client.get("/metrics").status_code == 401
    wrong = observed.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.mimetype == "application/problem+json"
    tenant_key = observed.client.get("/metrics", headers=observed.auth())
    assert tenant_key.status_code == 401


def test_metrics_are_not_served_without_a_configured_token() -> None:
    app = create_app(Settings(database_url="memory:"))
    with app.test_client() as client:
        assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_count_requests_by_route_and_status_and_events_appended(observed: Served) -> None:
    assert post_made(observed, "p1") == 202
    assert post_made(observed, "p2") == 202
    observed.client.get("/v1/tenants/acme/promises/p1", headers=observed.auth())
    observed.client.get("/v1/tenants/acme/promises/nope", headers=observed.auth())
    samples = scrape(observed.client)
    events_route = '{"method": "POST", "route": "/v1/tenants/<tenant>/events", "status": "202"}'
    assert samples["troth_http_requests_total" + events_route] == 2
    promise_route = "/v1/tenants/<tenant>/promises/<path:promise_id>"
    assert (
        samples[
            "troth_http_requests_total"
            + json.dumps({"method": "GET", "route": promise_route, "status": "404"}, sort_keys=True)
        ]
        == 1
    )
    assert samples["troth_events_appended_total{}"] == 2
    assert samples['troth_ingest_duration_seconds_count{"kind": "single"}'] == 2
    # The projector has not run since: the scrape reads the lag from the store.
    assert samples["troth_projector_lag_events{}"] == 2


def test_every_listed_metric_is_exposed(observed: Served) -> None:
    metrics = observed.components.metrics
    metrics.reminder_sent()
    metrics.reminder_failed()
    metrics.reminder_retrying()
    metrics.set_reminders_due(4)
    metrics.observe_webhook_delivery(204, 0.12)
    metrics.observe_webhook_delivery(None, 5.0)
    metrics.observe_batch(1000, 0.3)
    samples = scrape(observed.client)
    for outcome in ("sent", "failed", "retrying"):
        assert samples[f'troth_reminders_total{{"outcome": "{outcome}"}}'] == 1
    assert samples["troth_reminders_due{}"] == 4
    assert samples['troth_webhook_delivery_duration_seconds_count{"outcome": "2xx"}'] == 1
    assert samples['troth_webhook_delivery_duration_seconds_count{"outcome": "error"}'] == 1
    assert samples["troth_projector_events_applied_total{}"] == 1000
    assert samples["troth_projector_batch_events_sum{}"] == 1000


def test_readyz_is_503_with_the_reason_when_the_views_lag_too_far(observed: Served) -> None:
    for number in range(6):
        assert post_made(observed, f"p{number}") == 202
    response = observed.client.get("/readyz")
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["reason"] == "projection-lagging"
    assert response.json["projection"]["lag"] == 6
    observed.components.projector.catch_up()
    assert observed.client.get("/readyz").status_code == 200


def test_each_request_logs_one_json_line_without_credentials_or_content(
    observed: Served, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format="json"))
    try:
        body, headers = signed(
            observed.tenant.webhook_secret,
            envelope("promise.made", made("p-secret", title="Surprise party for Sam")),
        )
        response = observed.client.post(
            "/v1/tenants/acme/events",
            data=body,
            headers={**headers, "X-Request-Id": "req-42", "Authorization": "Bearer abc"},
        )
        observed.client.get("/v1/tenants/acme/promises/p-secret", headers=observed.auth())
    finally:
        logging.getLogger().handlers.clear()
    assert response.headers["X-Request-Id"] == "req-42"
    lines = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if '"logger": "troth.request"' in line
    ]
    assert len(lines) == 2
    first, second = lines
    assert first["request_id"] == "req-42"
    assert first["tenant"] == "acme"
    assert first["route"] == "/v1/tenants/<tenant>/events"
    assert first["status"] == 202
    assert isinstance(first["latency_ms"], float)
    # A request without an id gets one made up.
    assert len(second["request_id"]) == 32
    logged = json.dumps(lines)
    for leaked in (
        observed.tenant.api_key,
        observed.tenant.webhook_secret,
        "Surprise party",
        headers["webhook-signature"],
    ):
        assert leaked not in logged


def test_scheduler_ticks_log_only_what_goes_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json"))
    try:
        runs = logging.getLogger("apscheduler.executors.default")
        runs.info('Running job "deliver" (scheduled at ...)')
        runs.warning('Run time of job "deliver" was missed by 0:00:02')
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("WARNING", 'Run time of job "deliver" was missed by 0:00:02')
    ]


def test_a_forged_request_id_is_replaced(observed: Served) -> None:
    forged = 'x", "level": "ERROR'
    response = observed.client.get("/healthz", headers={"X-Request-Id": forged})
    assert len(response.headers["X-Request-Id"]) == 32


def test_the_scheduler_counts_the_reminders_it_fires() -> None:
    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    ledger.register_tenant("acme", at=T0)
    ledger.make_promise(
        PromiseTerms(
            tenant="acme", key="p1", promiser="alex", promisee="sam", title="Call back",
            made_at=T0, due_at=T0 + timedelta(hours=48),
        )
    )  # fmt: skip
    metrics = Metrics()
    now = T0 + timedelta(hours=24)
    dispatcher = Dispatcher(ledger, POPODueWorkStore(), lambda: now, metrics=metrics)
    assert dispatcher.tick() == 1
    assert dispatcher.tick() == 0
    samples = {
        f"{s.name}{json.dumps(s.labels, sort_keys=True)}": s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples['troth_reminders_total{"outcome": "sent"}'] == 1
    assert samples["troth_reminders_due{}"] == 0
