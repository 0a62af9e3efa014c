"""The delivery log and redelivery over HTTP, with a real local receiver; and a sender that
falls back to a name's second checked address."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from service.app import create_app
from service.bootstrap import bootstrap
from service.delivery.sender import Sender
from service.delivery.worker import DeliveryWorker
from service.settings import Settings
from tests.receiver import Receiver, Reply, running_receiver
from tests.unit.service.conftest import Served
from tests.workers import steady_worker


def create(served: Served, url: str) -> dict[str, Any]:
    response = served.client.post(
        "/v1/tenants/acme/subscriptions", json={"url": url, "types": ["*"]}, headers=served.auth()
    )
    assert response.status_code == 201, response.json
    assert isinstance(response.json, dict)
    return response.json


@pytest.fixture
def local(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Served, Receiver, DeliveryWorker]]:
    """An app allowed to send to a local receiver, with a worker without jitter."""
    caplog.set_level(logging.DEBUG)
    settings = Settings(database_url="memory:", allow_private_targets=True)
    components = bootstrap(settings)
    app = create_app(settings, components)
    tenant = components.ledger.register_tenant("acme", at=components.clock())
    worker = steady_worker(components)
    with running_receiver() as receiver, app.test_client() as client:
        yield Served(app, components, client, tenant), receiver, worker
    worker.close()
    components.close()


def test_the_delivery_log_shows_every_attempt_and_redelivery_sends_again(
    local: tuple[Served, Receiver, DeliveryWorker], caplog: pytest.LogCaptureFixture
) -> None:
    served, receiver, worker = local
    created = create(served, receiver.url)
    receiver.secret = created["secret"]
    receiver.script(Reply(500, body=b"database down"), Reply(200, body=b"thanks"))
    now = served.components.clock()
    served.components.ledger.queue_message(
        "acme", message_id="m1", type="promise.due", at=now, data={"promise": {"id": "p1"}}
    )
    worker.deliver_due(now)
    path = f"/v1/tenants/acme/subscriptions/{created['id']}/deliveries"

    log = served.client.get(path, headers=served.auth()).json
    assert log is not None
    [attempt] = log["attempts"]
    assert attempt["message_id"] == "m1"
    assert attempt["type"] == "promise.due"
    assert (attempt["outcome"], attempt["status"]) == ("retry", 500)
    assert attempt["response_excerpt"] == "database down"
    assert attempt["latency_ms"] >= 0

    redelivered = served.client.post(f"{path}/m1/redeliver", headers=served.auth())
    assert redelivered.status_code == 202
    assert served.client.post(f"{path}/nope/redeliver", headers=served.auth()).status_code == 404
    worker.deliver_due(served.components.clock())
    log = served.client.get(path, headers=served.auth()).json
    assert log is not None
    assert [(a["outcome"], a["status"]) for a in log["attempts"]] == [
        ("delivered", 200),
        ("retry", 500),
    ]
    assert [r.is_verified for r in receiver.received] == [True, True]

    everything = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert created["secret"] not in everything
    assert created["secret"].removeprefix("whsec_") not in everything


def test_redeliver_all_failed_since_a_time(
    local: tuple[Served, Receiver, DeliveryWorker],
) -> None:
    served, receiver, worker = local
    created = create(served, receiver.url)
    receiver.secret = created["secret"]
    receiver.script(Reply(422, {"webhook-delivery": "abort-message"}))
    now = served.components.clock()
    served.components.ledger.queue_message(
        "acme", message_id="m1", type="promise.due", at=now, data={}
    )
    worker.deliver_due(now)
    path = f"/v1/tenants/acme/subscriptions/{created['id']}/deliveries/redeliver"
    bad = served.client.post(path, json={"since": "yesterday"}, headers=served.auth())
    assert bad.status_code == 422
    # An aborted message is not a failure: only redelivered one by one.
    answer = served.client.post(path, json={"since": now.isoformat()}, headers=served.auth())
    assert answer.status_code == 202
    assert answer.json == {"redelivered": 0}


def test_a_name_whose_first_address_refuses_is_sent_to_its_second() -> None:
    with running_receiver() as receiver:
        receiver.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        port = receiver.server.server_address[1]
        sender = Sender(allow_private=True, resolver=lambda host, port: ["::1", "127.0.0.1"])
        answer = sender.send(f"http://hooks.test:{port}/x", {"webhook-id": "m1"}, b"{}")
    assert (answer.status, answer.error) == (200, None)
    assert receiver.received[0].headers["host"] == f"hooks.test:{port}"
