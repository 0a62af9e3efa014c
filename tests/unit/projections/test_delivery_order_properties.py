"""Property: however webhook deliveries are ordered, duplicated or batched, the views agree.

Senders retry, networks reorder, and the projector may read the log in any batch size; a
person's report must not depend on any of that. Deliveries go through the real ingestion
path (signatures, receipts, the "not made yet" refusal a sender retries later).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.webhooks.inbound import Ingestion, PromiseNotMadeYetError
from tests.clock import T0
from tests.reporting import World, as_shown, assert_same
from tests.webhooks import envelope, signed

NOW = T0 + timedelta(days=60)
Delivery = tuple[bytes, dict[str, str]]


@st.composite
def histories(draw: st.DrawFn) -> list[Delivery]:
    """Signed deliveries of a few promises' lives and maybe one time-zone change."""
    bodies: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 5))):
        made_at = T0 + timedelta(days=i * 2, hours=draw(st.integers(0, 20)))
        data: dict[str, Any] = {
            "promise_id": f"p{i}",
            "promiser": draw(st.sampled_from(["ann", "ben"])),
            "title": f"promise {i}",
            "due_at": (made_at + timedelta(days=1)).isoformat(),
        }
        if draw(st.booleans()):
            data["promisee"] = draw(st.sampled_from(["sam", "kim"]))
        if draw(st.booleans()):
            data["category"] = draw(st.sampled_from(["calls", "chores"]))
        bodies.append(envelope("promise.made", data, made_at))
        outcome = draw(st.sampled_from(["none", "kept", "late", "broken", "released"]))
        # Distinct outcome minutes: ties in time would make the order a matter of arrival.
        done = made_at + timedelta(hours=3, minutes=i)
        if outcome == "late":
            outcome, done = "kept", done + timedelta(days=3)
        if outcome != "none":
            payload = {"promise_id": f"p{i}", "at": done.isoformat()}
            bodies.append(envelope(f"promise.{outcome}", payload, done))
    if draw(st.booleans()):
        zone = draw(st.sampled_from(["Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin"]))
        bodies.append(envelope("person.updated", {"person": "ann", "timezone": zone}, T0))
    return [(json.dumps(b).encode(), {"webhook-id": f"msg_{n}"}) for n, b in enumerate(bodies)]


def deliver(world: World, deliveries: list[Delivery]) -> None:
    """Deliver in order, retrying "not made yet" refusals after the rest, as senders do."""
    ingestion = Ingestion(world.ledger, lambda: NOW)
    queue = list(deliveries)
    while queue:
        body, meta = queue.pop(0)
        raw, headers = signed(
            world.credentials.webhook_secret, body, msg_id=meta["webhook-id"], sent_at=NOW
        )
        try:
            answer = ingestion.ingest(world.tenant, raw, headers)
        except PromiseNotMadeYetError:
            queue.append((body, meta))
            continue
        assert answer.status in (200, 202)


def new_world(batch_size: int) -> World:
    return World.create(batch_size=batch_size)


def view_of(world: World) -> dict[str, Any]:
    """What people can see, without log positions and recording times (arrival details)."""
    world.projector.catch_up()

    subjects = world.store.tenant_subjects(world.tenant)
    reports = {}
    for key in subjects:
        report = world.reader.report(key, now=NOW)
        assert report is not None
        reports[str(key)] = as_shown(report)
    promises = [
        (
            p.key,
            p.promiser,
            p.promisee,
            p.category,
            p.status,
            p.due_at,
            p.outcome_kind,
            p.outcome_at,
        )
        for p in world.store.list_promises(world.tenant, limit=1000)
    ]
    return {"reports": reports, "promises": promises, "events": world.ledger.head_position()}


@settings(max_examples=60, deadline=None)
@given(
    deliveries=histories(),
    data=st.data(),
    batch_size=st.integers(1, 6),
)
def test_any_order_duplication_or_batching_of_deliveries_gives_the_same_view(
    deliveries: list[Delivery], data: st.DataObject, batch_size: int
) -> None:
    reference = new_world(batch_size=1000)
    shuffled = new_world(batch_size=batch_size)
    try:
        deliver(reference, deliveries)
        order = data.draw(st.permutations(deliveries), label="order")
        repeats = data.draw(st.lists(st.sampled_from(deliveries), max_size=4), label="repeats")
        arrivals = list(order)
        for repeat in repeats:
            arrivals.insert(data.draw(st.integers(0, len(arrivals)), label="at"), repeat)
        deliver(shuffled, arrivals)

        expected, actual = view_of(reference), view_of(shuffled)
        assert actual["events"] == expected["events"], "a delivery was recorded twice or lost"
        assert actual["promises"] == expected["promises"]
        assert actual["reports"].keys() == expected["reports"].keys()
        for key, report in expected["reports"].items():
            assert_same(actual["reports"][key], report, key)
    finally:
        reference.close()
        shuffled.close()
