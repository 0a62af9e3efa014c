"""Reading promises back: Bearer keys, scopes, and tenants that cannot see each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.credentials import Scope
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed


def record(served: Served) -> None:
    now = datetime.now(UTC)
    for body in [
        envelope("promise.made", made(reminders=["PT1H"]), at=now - timedelta(minutes=2)),
        envelope("promise.kept", {"promise_id": "p1", "note": "called"}),
    ]:
        raw, headers = signed(served.tenant.webhook_secret, body)
        served.client.post("/v1/tenants/acme/events", data=raw, headers=headers)


def test_a_promise_reads_back_with_state_and_history(served: Served) -> None:
    record(served)
    response = served.client.get("/v1/tenants/acme/promises/p1", headers=served.auth())
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["status"] == "kept"
    assert body["reminders"] == ["PT1H"]
    assert [h["event"] for h in body["history"]] == ["Made", "Kept"]
    assert body["history"][1]["facts"]["note"] == "called"
    assert body["made_at"].endswith("+00:00")


def test_reading_needs_a_key(served: Served) -> None:
    record(served)
    response = served.client.get("/v1/tenants/acme/promises/p1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    bad = served.client.get("/v1/tenants/acme/promises/p1", headers=served.auth("tk_acme_x_y"))
    assert bad.status_code == 401


def test_a_key_of_another_tenant_gets_404(served: Served) -> None:
    record(served)
    other = served.components.ledger.register_tenant("globex", at=datetime.now(UTC))
    response = served.client.get("/v1/tenants/acme/promises/p1", headers=served.auth(other.api_key))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_key_without_the_reports_scope_gets_403(served: Served) -> None:
    record(served)
    writer = served.components.ledger.issue_api_key(
        "acme", scopes=frozenset({Scope.EVENTS_WRITE}), at=datetime.now(UTC)
    )
    response = served.client.get(
        "/v1/tenants/acme/promises/p1", headers=served.auth(writer.api_key)
    )
    assert response.status_code == 403


def test_an_unknown_promise_is_404(served: Served) -> None:
    response = served.client.get("/v1/tenants/acme/promises/nope", headers=served.auth())
    assert response.status_code == 404
    assert response.json is not None
    assert response.json["type"] == "/problems/promise-not-found"
