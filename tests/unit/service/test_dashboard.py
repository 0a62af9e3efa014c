"""The dashboard page and the report downloads, read with a tenant's key."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from werkzeug.test import TestResponse

from domain.promise import PromiseTerms
from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from tests.clock import T0
from tests.histories import NOW, record_everything
from tests.unit.service.conftest import Served

PAGE = "/v1/tenants/acme/people/ann/dashboard"


def body(response: TestResponse) -> Any:
    """A JSON answer's body."""
    return response.json


@pytest.fixture
def ann(served: Served) -> Served:
    record_everything(served.components.ledger, "acme")
    served.components.projector.catch_up()
    return served


@pytest.fixture
def fixed() -> Iterator[Served]:
    """An app whose clock stands at the history's NOW."""
    settings = Settings(database_url="memory:")
    components = bootstrap(settings, clock=lambda: NOW)
    app = create_app(settings, components)
    tenant = components.ledger.register_tenant("acme", at=T0 - timedelta(days=1))
    record_everything(components.ledger, "acme")
    components.projector.catch_up()
    with app.test_client() as client:
        yield Served(app, components, client, tenant)
    components.close()


def page(served: Served, path: str = PAGE, **query: Any) -> str:
    response = served.client.get(path, query_string=query, headers=served.auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def text(html: str) -> str:
    """The page's words, without tags, on one line."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_page_shows_score_streaks_charts_promises_history_and_sections(
    fixed: Served,
) -> None:
    html = page(fixed)
    report = body(fixed.client.get("/v1/tenants/acme/people/ann/report", headers=fixed.auth()))
    words = text(html)
    assert f'data-testid="score">{report["score"]["value"]}<' in html
    band = report["score"]["band"]
    assert f"likely between {band['low']} and {band['high']}" in words
    assert report["explanation"] in words
    assert f"{report['streaks']['kept_streak']} promises kept in a row" in words
    assert html.count("<svg") == 2
    assert "<script" not in html
    # History: the newest first, with their notes, in the words people read.
    assert "Outcome corrected: not kept Promise number 0" in words
    assert "“disputed”" in words
    assert "Released by agreement Promise number 4" in words
    assert "“overslept”" in words
    assert "No outcome reported Promise number 13" in words
    assert "New time agreed Promise number 11" in words
    assert words.index("Promise number 13") < words.index("Promise number 12")
    # Sections towards each promisee and in each category.
    assert "Promises to ben" in words
    assert "Promises to cat" in words
    assert "About home" in words
    # Times are in Ann's time zone (America/New_York since day 20).
    assert "times in America/New_York" in words


def test_open_and_overdue_promises_are_listed_gently(fixed: Served) -> None:
    words = text(page(fixed, "/v1/tenants/acme/people/dev/dashboard"))
    assert "Past their agreed time These are still open." in words
    assert words.index("Past their agreed time") < words.index("Dev's d2")
    assert "Coming up Dev's d1" in words
    assert "no set time" in words


def test_the_page_as_at_a_past_instant_shows_only_what_had_happened(fixed: Served) -> None:
    as_of = T0 + timedelta(days=10)
    words = text(page(fixed, as_of=as_of.isoformat()))
    report = body(
        fixed.client.get(
            "/v1/tenants/acme/people/ann/report",
            query_string={"as_of": as_of.isoformat()},
            headers=fixed.auth(),
        )
    )
    assert "As it was on" in words
    assert f"{report['score']['value']} of 100" in words
    assert "Promise number 3" in words
    assert "Promise number 4" not in words
    assert "See it as it is now" in words


def test_a_date_shows_the_page_as_that_local_day_ended(fixed: Served) -> None:
    # Local days are those of Ann's time zone (New York now): the 12th of March ends at
    # 04:00 UTC on the 13th there (daylight saving time began on the 8th).
    day = (T0 + timedelta(days=10)).date()
    end = "2026-03-13T03:59:59.999999+00:00"
    on = fixed.client.get(
        "/v1/tenants/acme/people/ann/report.json", query_string={"on": day}, headers=fixed.auth()
    )
    as_of = fixed.client.get(
        "/v1/tenants/acme/people/ann/report", query_string={"as_of": end}, headers=fixed.auth()
    )
    assert on.status_code == 200
    assert body(on)["as_of"] == end
    assert on.json == as_of.json


def test_the_history_shows_at_most_fifty_events(fixed: Served) -> None:
    ledger = fixed.components.ledger
    for i in range(40):
        made = T0 + timedelta(days=50, minutes=i)
        ledger.make_promise(
            PromiseTerms(tenant="acme", key=f"many{i}", promiser="ann", title="A", made_at=made)
        )
        ledger.keep_promise("acme", f"many{i}", at=made + timedelta(seconds=30))
    fixed.components.projector.catch_up()
    html = page(fixed)
    history = html.split('data-testid="history"')[1].split("</ol>")[0]
    assert history.count("<li>") == 50


def test_the_page_asks_nothing_of_other_servers_and_is_not_cached(ann: Served) -> None:
    response = ann.client.get(PAGE, headers=ann.auth())
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    references = re.findall(r'(?:src|href|action)="([^"]*)"', html)
    assert references
    assert all(ref.startswith("/v1/") for ref in references), references


def test_the_weekly_trend_downloads_as_csv(ann: Served) -> None:
    response = ann.client.get("/v1/tenants/acme/people/ann/report.csv", headers=ann.auth())
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="troth-ann-trend.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    report = body(ann.client.get("/v1/tenants/acme/people/ann/report", headers=ann.auth()))
    weeks = report["trend"]["weeks"]
    assert len(rows) == len(weeks) == 12
    for row, week in zip(rows, weeks, strict=True):
        assert row["week_start"] == week["week_start"]
        assert int(row["kept"]) == week["kept"]
        assert int(row["broken"]) == week["broken"]
        assert float(row["score"]) == week["score"]


def test_the_report_downloads_as_json_with_the_same_body(fixed: Served) -> None:
    query = {"promisee": "ben", "weeks": 4}
    download = fixed.client.get(
        "/v1/tenants/acme/people/ann/report.json", query_string=query, headers=fixed.auth()
    )
    report = fixed.client.get(
        "/v1/tenants/acme/people/ann/report", query_string=query, headers=fixed.auth()
    )
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == (
        'attachment; filename="troth-ann-ben-report.json"'
    )
    assert download.json == report.json


def test_wrong_requests_get_problems_not_pages(ann: Served) -> None:
    assert ann.client.get(PAGE).status_code == 401
    missing = ann.client.get("/v1/tenants/acme/people/nobody/dashboard", headers=ann.auth())
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
    both = ann.client.get(
        PAGE, query_string={"as_of": T0.isoformat(), "on": "2026-03-02"}, headers=ann.auth()
    )
    assert both.status_code == 422
    assert "on" in body(both)["errors"]


def test_the_current_history_is_the_same_as_read_from_every_promise(fixed: Served) -> None:
    # A hundred promises over 400 days: the newest fifty events are within half a year, but
    # not within the last month.
    ledger = fixed.components.ledger
    for i in range(100):
        made = NOW - timedelta(days=400 - 4 * i)
        ledger.make_promise(
            PromiseTerms(tenant="acme", key=f"old{i}", promiser="ann", title=f"T{i}", made_at=made)
        )
        if i % 5:
            ledger.keep_promise("acme", f"old{i}", at=made + timedelta(days=2))
    fixed.components.projector.catch_up()

    def history(html: str) -> str:
        return html.split('data-testid="history"')[1].split("</ol>", maxsplit=1)[0]

    current = history(page(fixed))
    # A page as at an instant reads every promise; at NOW it must show the same history.
    assert current == history(page(fixed, as_of=NOW.isoformat()))
    assert current.count("<li>") == 50
