"""NDJSON batches: per-line answers, each line all-or-nothing, retries answered from receipts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.test import TestResponse

from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

URL = "/v1/tenants/acme/events/batch"


def ndjson(lines: list[dict[str, Any] | str]) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


def line(key: str, kind: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    return {"id": key, **envelope(kind, data, at)}


def post_batch(served: Served, body: bytes) -> TestResponse:
    raw, headers = signed(served.tenant.webhook_secret, body)
    headers["content-type"] = "application/x-ndjson"
    return served.client.post(URL, data=raw, headers=headers)


def test_each_line_gets_its_own_answer_and_bad_lines_do_not_stop_good_ones(
    served: Served,
) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    body = ndjson(
        [
            line("l1", "promise.made", made("p1"), at=earlier),
            line("l2", "promise.kept", {"promise_id": "p1"}),
            line("l3", "promise.broken", {"promise_id": "p1"}),
            line("l4", "promise.kept", {"promise_id": "never-made"}),
            "{not json",
            line("l6", "promise.made", made("p2", title="")),
            envelope("promise.made", made("p3")),
            line("l8", "promise.made", made("p4")),
        ]
    )
    response = post_batch(served, body)
    assert response.status_code == 200
    assert response.json is not None
    results = response.json["results"]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r["status"] for r in results] == [202, 202, 409, 409, 422, 422, 422, 202]
    assert results[2]["problem"]["type"] == "/problems/promise-already-settled"
    assert results[3]["problem"]["type"] == "/problems/promise-not-made-yet"
    assert results[6]["problem"]["errors"] == {"id": ["required on every batch line"]}
    assert response.json["summary"] == {"recorded": 3, "already_recorded": 0, "rejected": 5}
    assert results[1]["position"] == results[0]["position"] + 1
    ledger = served.components.ledger
    assert [h.event for h in ledger.promise("acme", "p1").history] == ["Made", "Kept"]
    assert ledger.head_position() == results[7]["position"]


def test_a_retried_batch_records_nothing_twice(served: Served) -> None:
    body = ndjson([line(f"l{i}", "promise.made", made(f"p{i}")) for i in range(5)])
    first = post_batch(served, body)
    head = served.components.ledger.head_position()
    again = post_batch(served, body)
    assert first.json is not None
    assert again.json is not None
    assert again.json["summary"] == {"recorded": 0, "already_recorded": 5, "rejected": 0}
    assert [r["position"] for r in again.json["results"]] == [
        r["position"] for r in first.json["results"]
    ]
    assert served.components.ledger.head_position() == head


def test_a_line_id_repeated_within_a_batch_is_recorded_once(served: Served) -> None:
    same = line("dup", "promise.made", made("p1"))
    other = line("dup", "promise.made", made("p2"))
    response = post_batch(served, ndjson([same, same, other]))
    assert response.json is not None
    statuses = [r["status"] for r in response.json["results"]]
    assert statuses == [202, 200, 422]
    assert served.components.ledger.head_position() == response.json["results"][0]["position"]


def test_a_batch_line_cannot_reuse_the_id_of_an_earlier_single_delivery(served: Served) -> None:
    # Batch line ids and webhook ids are one idempotency namespace per tenant.
    single = envelope("promise.made", made("p1"))
    raw, headers = signed(served.tenant.webhook_secret, single, msg_id="shared-id")
    served.client.post("/v1/tenants/acme/events", data=raw, headers=headers)
    response = post_batch(served, ndjson([line("shared-id", "promise.made", made("p2"))]))
    assert response.json is not None
    assert response.json["results"][0]["status"] == 422
    assert response.json["results"][0]["problem"]["type"] == "/problems/webhook-id-reused"


def test_more_than_ten_thousand_lines_is_413(served: Served) -> None:
    body = b"\n".join([b'{"id":"x"}'] * 10_001)
    response = post_batch(served, body)
    assert response.status_code == 413


def test_a_batch_with_a_bad_signature_is_refused_whole(served: Served) -> None:
    raw, headers = signed(
        served.tenant.webhook_secret, ndjson([line("l1", "promise.made", made())])
    )
    response = served.client.post(URL, data=raw + b"\n", headers=headers)
    assert response.status_code == 401
    assert served.components.ledger.head_position() == served.tenant.position


def test_a_large_batch_is_recorded_in_order_across_transactions(served: Served) -> None:
    lines: list[dict[str, Any] | str] = []
    for i in range(1_500):
        lines.append(line(f"m{i}", "promise.made", made(f"p{i}")))
    response = post_batch(served, ndjson(lines))
    assert response.json is not None
    positions = [r["position"] for r in response.json["results"]]
    assert positions == sorted(positions)
    assert len(set(positions)) == 1_500
