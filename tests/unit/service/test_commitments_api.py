"""The commitments API: create, read, pause/resume/end, occurrences; bad schedules are 422."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from werkzeug.test import TestResponse

from projections.due_work import DueWorkProjector
from projections.due_work_popo import POPODueWorkStore
from service.reminders import Occurrences
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, signed

BODY = {
    "commitment_id": "weekly-talk",
    "promiser": "alex",
    "promisee": "sam",
    "title": "Give the Tuesday talk",
    "schedule": "FREQ=WEEKLY;BYDAY=TU",
    "timezone": "Europe/Berlin",
    "due_time": "20:00",
    "reminders": ["PT2H"],
}


def body(response: TestResponse) -> dict[str, Any]:
    answer: dict[str, Any] = response.json or {}
    return answer


def url(served: Served, suffix: str = "") -> str:
    return f"/v1/tenants/{served.tenant.tenant}/commitments{suffix}"


def test_creating_a_commitment_answers_201_then_200_for_the_same_one(served: Served) -> None:
    first = served.client.post(url(served), json=BODY, headers=served.auth())
    again = served.client.post(url(served), json=BODY, headers=served.auth())
    assert (first.status_code, again.status_code) == (201, 200)
    assert body(first)["status"] == "active"
    assert body(first)["reminders"] == ["PT2H"]


def test_other_content_under_the_same_id_is_a_conflict(served: Served) -> None:
    served.client.post(url(served), json=BODY, headers=served.auth())
    answer = served.client.post(
        url(served), json={**BODY, "title": "Something else"}, headers=served.auth()
    )
    assert answer.status_code == 409
    assert answer.content_type == "application/problem+json"


def test_a_bad_schedule_is_a_422_naming_schedule(served: Served) -> None:
    answer = served.client.post(
        url(served), json={**BODY, "schedule": "every other tuesday"}, headers=served.auth()
    )
    assert answer.status_code == 422
    assert answer.content_type == "application/problem+json"
    assert list(body(answer)["errors"]) == ["schedule"]


def scheduled_occurrences(served: Served) -> TestResponse:
    """Create the weekly talk, make its occurrences of the next 8 days, and list them."""
    served.client.post(url(served), json=BODY, headers=served.auth())
    ledger, store = served.components.ledger, POPODueWorkStore()
    DueWorkProjector(ledger.recorder, ledger.mapper, store).catch_up()
    Occurrences(ledger, store, served.components.clock, timedelta(days=8)).schedule()
    return served.client.get(url(served, "/weekly-talk/occurrences"), headers=served.auth())


def test_commitments_need_a_key_of_the_tenant(served: Served) -> None:
    assert served.client.post(url(served), json=BODY).status_code == 401
    assert served.client.get(url(served, "/weekly-talk")).status_code == 401


def test_occurrences_are_listed_made_and_upcoming_and_pause_releases_made_ones(
    served: Served,
) -> None:
    listed = scheduled_occurrences(served)
    statuses = [item["status"] for item in body(listed)["items"]]
    assert statuses[0] == "open"
    assert "upcoming" in statuses
    assert body(listed)["items"][0]["promise_id"].startswith("weekly-talk/")

    paused = served.client.post(url(served, "/weekly-talk/pause"), headers=served.auth())
    assert body(paused)["status"] == "paused"
    made = body(listed)["items"][0]["promise_id"]
    promise = served.client.get(
        f"/v1/tenants/{served.tenant.tenant}/promises/{made}", headers=served.auth()
    )
    assert body(promise)["status"] == "released"
    resumed = served.client.post(url(served, "/weekly-talk/resume"), headers=served.auth())
    assert body(resumed)["status"] == "active"
    ended = served.client.post(url(served, "/weekly-talk/end"), headers=served.auth())
    assert body(ended)["status"] == "ended"
    again = served.client.post(url(served, "/weekly-talk/resume"), headers=served.auth())
    assert again.status_code == 409


def test_an_occurrence_is_reported_by_its_commitment_and_date_and_read_back_by_that_id(
    served: Served,
) -> None:
    listed = scheduled_occurrences(served)
    occurrence = body(listed)["items"][0]
    key = occurrence["promise_id"]
    assert key == f"weekly-talk/{occurrence['local_date']}"

    raw, headers = signed(
        served.tenant.webhook_secret,
        envelope("promise.kept", {"promise_id": key, "at": occurrence["due_at"]}),
    )
    kept = served.client.post(
        f"/v1/tenants/{served.tenant.tenant}/events", data=raw, headers=headers
    )
    assert (kept.status_code, body(kept)["promise_id"]) == (202, key)
    promises = f"/v1/tenants/{served.tenant.tenant}/promises/"
    for path in (key, key.replace("/", "%2F")):
        read = served.client.get(promises + path, headers=served.auth())
        assert (read.status_code, body(read)["promise_id"], body(read)["status"]) == (
            200,
            key,
            "kept",
        )
    # After a `/` only an occurrence date may follow.
    made = envelope("promise.made", {"promise_id": "a/b", "promiser": "alex", "title": "x"})
    raw, headers = signed(served.tenant.webhook_secret, made)
    refused = served.client.post(
        f"/v1/tenants/{served.tenant.tenant}/events", data=raw, headers=headers
    )
    assert refused.status_code == 422
    assert "promise_id" in refused.text


def test_an_unknown_commitment_is_404(served: Served) -> None:
    answer = served.client.get(url(served, "/nope"), headers=served.auth())
    assert answer.status_code == 404
