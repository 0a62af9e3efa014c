"""The webhook endpoint: idempotency, strict validation, conflicts, out-of-order delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

URL = "/v1/tenants/acme/events"


def post(served: Served, body: Any, **kwargs: Any) -> TestResponse:
    raw, headers = signed(served.tenant.webhook_secret, body, **kwargs)
    return served.client.post(URL, data=raw, headers=headers)


def test_the_same_webhook_again_gets_the_first_answer_and_records_nothing(
    served: Served,
) -> None:
    body = envelope("promise.made", made())
    first = post(served, body, msg_id="msg-1")
    head = served.components.ledger.head_position()
    again = post(served, body, msg_id="msg-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json == first.json
    assert served.components.ledger.head_position() == head


def test_a_retried_outcome_is_not_recorded_twice(served: Served) -> None:
    post(served, envelope("promise.made", made()))
    kept = envelope("promise.kept", {"promise_id": "p1"})
    assert post(served, kept, msg_id="kept-1").status_code == 202
    assert post(served, kept, msg_id="kept-1").status_code == 200
    history = served.components.ledger.promise("acme", "p1").history
    assert [h.event for h in history] == ["Made", "Kept"]


def test_the_same_webhook_id_with_another_body_is_refused_for_good(served: Served) -> None:
    post(served, envelope("promise.made", made()), msg_id="msg-1")
    response = post(served, envelope("promise.made", made("p2")), msg_id="msg-1")
    assert response.status_code == 422
    assert response.headers["webhook-delivery"] == "abort-message"
    assert response.json is not None
    assert response.json["type"] == "/problems/webhook-id-reused"


def test_a_reused_webhook_id_is_refused_as_reused_even_when_the_new_body_is_invalid(
    served: Served,
) -> None:
    post(served, envelope("promise.made", made()), msg_id="msg-1")
    response = post(served, envelope("promise.made", {"promise_id": "p2"}), msg_id="msg-1")
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["type"] == "/problems/webhook-id-reused"


def test_a_redelivered_person_update_gets_the_first_answer_and_records_nothing(
    served: Served,
) -> None:
    body = envelope("person.updated", {"person": "alex", "timezone": "Europe/Berlin"})
    first = post(served, body, msg_id="person-1")
    head = served.components.ledger.head_position()
    again = post(served, body, msg_id="person-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json == first.json
    assert served.components.ledger.head_position() == head


def test_a_repeated_promise_under_a_new_webhook_id_is_already_recorded(served: Served) -> None:
    body = envelope("promise.made", made())
    assert post(served, body).status_code == 202
    again = post(served, body)
    assert again.status_code == 200
    assert again.json is not None
    assert again.json["promise_id"] == "p1"


def test_at_defaults_to_the_envelope_timestamp(served: Served) -> None:
    sent = datetime.now(UTC).replace(microsecond=0)
    post(served, envelope("promise.made", made(), at=sent - timedelta(hours=1)))
    post(served, envelope("promise.kept", {"promise_id": "p1"}, at=sent))
    assert served.components.ledger.promise("acme", "p1").outcome_at == sent


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (envelope("promise.made", made(title="x" * 201)), {"data.title"}),
        (envelope("promise.made", made(promise_id="has space")), {"data.promise_id"}),
        (envelope("promise.made", made(due_at="2026-01-01T10:00:00")), {"data.due_at"}),
        (envelope("promise.made", made(reminders=["P1M"])), {"data.reminders.0"}),
        (envelope("promise.made", made(timezone="Mars/Base")), {"data.timezone"}),
        (envelope("promise.made", made(colour="red")), {"data.colour"}),
        (envelope("promise.made", {"promise_id": "p"}), {"data.promiser", "data.title"}),
        (envelope("promise.exploded", {}), {"type"}),
        ({"type": "promise.made", "data": made()}, {"timestamp"}),
        (
            envelope("promise.outcome_corrected", {"promise_id": "p1", "outcome": "lapsed"}),
            {"data.outcome", "data.at", "data.reason"},
        ),
        (envelope("person.updated", {"person": "a", "quiet_hours": {"start": "25:00"}}), None),
        (b"[1, 2]", {"body"}),
        (b"not json", {"body"}),
    ],
)
def test_signed_but_invalid_content_names_each_bad_field_and_aborts_retries(
    served: Served, body: Any, fields: set[str] | None
) -> None:
    response = post(served, body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.headers["webhook-delivery"] == "abort-message"
    assert response.json is not None
    named = set(response.json["errors"])
    if fields is None:
        assert named == {"data.quiet_hours.start", "data.quiet_hours.end"}
    else:
        assert named == fields
    assert served.components.ledger.head_position() == served.tenant.position


def test_a_domain_conflict_is_409_without_the_abort_header(served: Served) -> None:
    post(served, envelope("promise.made", made()))
    post(served, envelope("promise.broken", {"promise_id": "p1"}))
    response = post(served, envelope("promise.kept", {"promise_id": "p1"}))
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["type"] == "/problems/promise-already-settled"
    assert "webhook-delivery" not in response.headers


def test_renegotiating_an_overdue_promise_is_a_conflict(served: Served) -> None:
    now = datetime.now(UTC)
    post(
        served,
        envelope(
            "promise.made",
            made(due_at=(now - timedelta(hours=1)).isoformat()),
            at=now - timedelta(hours=2),
        ),
    )
    response = post(
        served,
        envelope(
            "promise.renegotiated",
            {"promise_id": "p1", "due_at": (now + timedelta(days=1)).isoformat()},
        ),
    )
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["type"] == "/problems/renegotiation-too-late"


def test_an_outcome_before_its_promise_is_a_retryable_409_that_heals_on_retry(
    served: Served,
) -> None:
    kept = envelope("promise.kept", {"promise_id": "p1"})
    early = post(served, kept, msg_id="kept-1")
    assert early.status_code == 409
    assert early.json is not None
    assert early.json["type"] == "/problems/promise-not-made-yet"
    assert "webhook-delivery" not in early.headers
    made_at = datetime.now(UTC) - timedelta(minutes=1)
    post(served, envelope("promise.made", made(), at=made_at))
    assert post(served, kept, msg_id="kept-1").status_code == 202


def test_an_outcome_time_before_the_promise_was_made_is_invalid(served: Served) -> None:
    now = datetime.now(UTC)
    post(served, envelope("promise.made", made(), at=now))
    response = post(
        served,
        envelope("promise.kept", {"promise_id": "p1", "at": (now - timedelta(days=1)).isoformat()}),
    )
    assert response.status_code == 422
    assert response.json is not None
    assert response.json["errors"] == {"at": ["an outcome cannot come before the promise was made"]}


def test_a_body_over_64_kib_is_413(served: Served) -> None:
    response = post(served, envelope("promise.made", made(details="x" * 70_000)))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_person_updates_are_recorded(served: Served) -> None:
    body = envelope(
        "person.updated",
        {
            "person": "alex",
            "timezone": "Europe/Berlin",
            "quiet_hours": {"start": "22:00", "end": "07:30"},
        },
    )
    response = post(served, body)
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["person"] == "alex"
    person = served.components.ledger.person("acme", "alex")
    assert person.timezone == "Europe/Berlin"
    assert person.quiet_hours is not None
    assert person.quiet_hours.end == "07:30"


def test_every_event_type_is_accepted(served: Served) -> None:
    now = datetime.now(UTC)
    day = timedelta(days=1)
    sequence = [
        envelope("promise.made", made("a", reminders=["PT1H", "P1D"], category="home")),
        envelope(
            "promise.renegotiated", {"promise_id": "a", "due_at": (now + 2 * day).isoformat()}
        ),
        envelope("promise.kept", {"promise_id": "a", "note": "done", "reported_by": "sam"}),
        envelope(
            "promise.outcome_corrected",
            {"promise_id": "a", "outcome": "broken", "at": (now + day).isoformat(), "reason": "x"},
        ),
        envelope("promise.made", made("b")),
        envelope("promise.released", {"promise_id": "b", "reason": "plans changed"}),
        envelope("promise.made", made("c")),
        envelope("promise.broken", {"promise_id": "c", "reason": "forgot"}),
        envelope("person.updated", {"person": "alex", "quiet_hours": None}),
    ]
    statuses = [post(served, body).status_code for body in sequence]
    assert statuses == [202] * len(sequence)
    history = served.components.ledger.promise("acme", "a").history
    assert [h.event for h in history] == ["Made", "Renegotiated", "Kept", "OutcomeCorrected"]
    assert json.loads(json.dumps(history[0].facts, default=str))["category"] == "home"
