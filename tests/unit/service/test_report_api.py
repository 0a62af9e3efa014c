"""The report API: scores, streaks and trends over HTTP, keyed, scoped and tenant-private."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.credentials import Scope
from service.api.report_schemas import ReportSchema
from service.app import create_app
from service.bootstrap import bootstrap
from service.following import FollowingProjector
from service.settings import Settings
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

REPORT = "/v1/tenants/acme/people/alex/report"


def post(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    raw, headers = signed(served.tenant.webhook_secret, body)
    response = served.client.post("/v1/tenants/acme/events", data=raw, headers=headers)
    assert response.status_code == 202, response.json
    answer: dict[str, Any] = response.json or {}
    return answer


def history(served: Served) -> None:
    """Alex kept two promises to Sam and broke one about chores; one is still open."""
    now = datetime.now(UTC)
    for i, (outcome, extra) in enumerate(
        [("kept", {}), ("kept", {}), ("broken", {"category": "chores", "promisee": "kim"})]
    ):
        made_at = now - timedelta(days=10 - i)
        post(served, envelope("promise.made", made(f"p{i}", **extra), at=made_at))
        post(served, envelope(f"promise.{outcome}", {"promise_id": f"p{i}"}, at=made_at))
    post(served, envelope("promise.made", made("open-one", due_at=None)))
    served.components.projector.catch_up()


def get(served: Served, path: str, key: str | None = None, **query: Any) -> Any:
    response = served.client.get(path, query_string=query, headers=served.auth(key))
    return response


def test_a_report_shows_score_counts_streaks_trend_and_open_promises(served: Served) -> None:
    history(served)
    response = get(served, REPORT)
    assert response.status_code == 200
    body = response.json
    assert body["subject"] == {"person": "alex", "promisee": None, "category": None}
    assert body["counts"]["made"] == 4
    assert (body["counts"]["kept"], body["counts"]["broken"], body["counts"]["open"]) == (2, 1, 1)
    assert 0 <= body["score"]["band"]["low"] <= body["score"]["value"] <= 100
    assert body["score"]["value"] <= body["score"]["band"]["high"] <= 100
    assert body["streaks"]["kept_streak"] == 0  # the broken promise was the latest outcome
    assert len(body["trend"]["weeks"]) == 12
    assert body["trend"]["direction"] in ("improving", "steady", "declining")
    assert [p["promise_id"] for p in body["open_promises"]] == ["open-one"]
    assert body["scoring"]["specification"] == "troth-scoring-v1"
    assert body["explanation"].startswith("In the last 30 days: 2 kept, 1 broken. Score ")
    assert body["timezone"] == "UTC"


def test_a_report_towards_one_promisee_or_in_one_category(served: Served) -> None:
    history(served)
    to_sam = get(served, REPORT, promisee="sam").json
    chores = get(served, REPORT, category="chores").json
    assert to_sam["subject"]["promisee"] == "sam"
    assert (to_sam["counts"]["kept"], to_sam["counts"]["broken"]) == (2, 0)
    assert (chores["counts"]["kept"], chores["counts"]["broken"]) == (0, 1)


def test_promisee_and_category_together_are_refused_naming_the_field(served: Served) -> None:
    history(served)
    response = get(served, REPORT, promisee="sam", category="chores")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "category" in response.json["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"as_of": "2026-03-02T09:00:00"}, "as_of"),  # no offset: which instant is that?
        ({"weeks": "0"}, "weeks"),
        ({"weeks": "many"}, "weeks"),
        ({"after": "-1"}, "after"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_query_arguments_get_422_naming_the_field(
    served: Served, query: dict[str, str], field: str
) -> None:
    history(served)
    response = get(served, REPORT, **query)
    assert response.status_code == 422
    assert field in response.json["errors"]


def test_a_person_without_promises_is_404(served: Served) -> None:
    history(served)
    response = get(served, "/v1/tenants/acme/people/nobody/report")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_reports_need_a_key_with_the_reports_scope_of_the_same_tenant(served: Served) -> None:
    history(served)
    assert served.client.get(REPORT).status_code == 401
    writer = served.components.ledger.issue_api_key(
        "acme", scopes=frozenset({Scope.EVENTS_WRITE}), at=datetime.now(UTC)
    )
    assert get(served, REPORT, writer.api_key).status_code == 403
    other = served.components.ledger.register_tenant("globex", at=datetime.now(UTC))
    assert get(served, REPORT, other.api_key).status_code == 404
    assert get(served, "/v1/tenants/globex/people/alex/report", other.api_key).status_code == 404


def test_a_past_report_leaves_out_what_happened_later(served: Served) -> None:
    history(served)
    before_any = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    middle = (datetime.now(UTC) - timedelta(days=8, hours=12)).isoformat()
    assert get(served, REPORT, as_of=before_any).json["counts"]["made"] == 0
    past = get(served, REPORT, as_of=middle).json
    assert (past["counts"]["made"], past["counts"]["kept"], past["counts"]["broken"]) == (2, 2, 0)
    assert past["as_of"] == middle


@pytest.mark.parametrize(
    "query",
    [{}, {"promisee": "sam"}, {"category": "chores"}, {"weeks": 3}, {"as_of": "past"}],
    ids=["current", "pair", "category", "three-weeks", "past"],
)
def test_a_report_is_exactly_what_its_documented_schema_describes(
    served: Served, query: dict[str, Any]
) -> None:
    history(served)
    due = datetime.now(UTC) + timedelta(days=2)
    post(served, envelope("promise.made", made("due-soon", due_at=due.isoformat())))
    served.components.projector.catch_up()
    if query.get("as_of") == "past":
        query = {"as_of": (datetime.now(UTC) - timedelta(days=8, hours=12)).isoformat()}
    body = get(served, REPORT, **query).json
    # Loading refuses a missing, unknown or malformed field; dumping again gives the JSON
    # the schema would have written.
    schema = ReportSchema()
    assert schema.dump(schema.load(body)) == body
    due_at = {p["promise_id"]: p["due_at"] for p in body["open_promises"]}
    if "as_of" not in query and "category" not in query:
        assert due_at["due-soon"] == schema.dump({"as_of": due})["as_of"]


def test_people_are_listed_a_page_at_a_time(served: Served) -> None:
    for person in ["cam", "alex", "bo"]:
        post(served, envelope("promise.made", made(f"{person}-1", promiser=person)))
    served.components.projector.catch_up()

    first = get(served, "/v1/tenants/acme/people", limit=2).json
    assert [p["person"] for p in first["items"]] == ["alex", "bo"]
    second = get(served, "/v1/tenants/acme/people", limit=2, cursor=first["next_cursor"]).json
    assert [p["person"] for p in second["items"]] == ["cam"]
    assert second["next_cursor"] is None
    assert first["items"][0]["made"] == 1


def test_promises_are_listed_with_filters_and_pages(served: Served) -> None:
    history(served)
    everything = get(served, "/v1/tenants/acme/promises", limit=3).json
    assert [p["promise_id"] for p in everything["items"]] == ["open-one", "p0", "p1"]
    rest = get(served, "/v1/tenants/acme/promises", cursor=everything["next_cursor"]).json
    assert [p["promise_id"] for p in rest["items"]] == ["p2"]
    kept = get(served, "/v1/tenants/acme/promises", status="kept").json
    assert [p["promise_id"] for p in kept["items"]] == ["p0", "p1"]
    assert get(served, "/v1/tenants/acme/promises", promiser="nobody").json["items"] == []
    assert get(served, "/v1/tenants/acme/promises", status="lost").status_code == 422


@pytest.fixture
def following() -> Iterator[Served]:
    """An app whose projector follows the log in the background, as `troth serve` runs it."""
    settings = Settings(database_url="memory:", read_wait_ms=3000)
    components = bootstrap(settings)
    app = create_app(settings, components)
    tenant = components.ledger.register_tenant("acme", at=components.clock())
    projector = FollowingProjector(settings, components.projector)
    projector.start()
    with app.test_client() as client:
        yield Served(app, components, client, tenant)
    projector.stop()
    components.close()


def test_after_a_write_position_the_report_includes_that_write(following: Served) -> None:
    answer = post(following, envelope("promise.made", made("p1")))
    response = get(following, REPORT, after=answer["position"])
    assert response.status_code == 200
    assert response.json["counts"]["made"] == 1


def test_a_position_the_views_do_not_reach_in_time_is_503_with_retry_after(
    served: Served,
) -> None:
    history(served)
    head = served.components.ledger.head_position()
    served.components.settings = Settings(database_url="memory:", read_wait_ms=50)
    response = get(served, REPORT, after=head + 100)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
