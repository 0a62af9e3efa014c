"""Share links: a counsellor's read-only way into one person's dashboard, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from domain.promise import PromiseTerms
from domain.share import share_book_id
from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from service.sharing import mint
from tests.clock import T0
from tests.histories import NOW, record_everything
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

SHARES = "/v1/tenants/acme/people/ann/shares"
DASHBOARD = "/v1/tenants/acme/people/ann/dashboard"
REPORT = "/v1/tenants/acme/people/ann/report"
KEY = "the-share-signing-key-of-these-tests"


def body(response: TestResponse) -> Any:
    """A JSON answer's body."""
    return response.json


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sharing:
    """An app with share links on, its clock, a client and two tenants' credentials."""

    client: FlaskClient
    clock: Clock
    components: Any
    api_key: str
    webhook_secret: str
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}

    def share(self, **body: Any) -> dict[str, Any]:
        response = self.client.post(SHARES, json={"expires_in": "P7D", **body}, headers=self.auth())
        assert response.status_code == 201, response.json
        answer: dict[str, Any] = response.json or {}
        return answer

    def open(self, url: str, **headers: str) -> TestResponse:
        parts = urlsplit(url)
        return self.client.get(f"{parts.path}?{parts.query}", headers=headers)


@pytest.fixture
def sharing() -> Iterator[Sharing]:
    clock = Clock(NOW)
    settings = Settings(database_url="memory:", share_key=KEY)
    components = bootstrap(settings, clock=clock)
    app = create_app(settings, components)
    acme = components.ledger.register_tenant("acme", at=T0 - timedelta(days=1))
    other = components.ledger.register_tenant("other", at=T0 - timedelta(days=1))
    record_everything(components.ledger, "acme")
    record_everything(components.ledger, "other")
    components.projector.catch_up()
    with app.test_client() as client:
        yield Sharing(client, clock, components, acme.api_key, acme.webhook_secret, other.api_key)
    components.close()


def token_of(share: dict[str, Any]) -> str:
    token: str = parse_qs(urlsplit(share["url"]).query)["share"][0]
    return token


def test_a_share_link_opens_the_persons_dashboard_and_report_read_only(
    sharing: Sharing,
) -> None:
    share = sharing.share()
    assert share["url"].startswith("http://localhost/v1/tenants/acme/people/ann/dashboard?share=")
    assert token_of(share) == share["token"]
    assert (share["person"], share["promisee"], share["is_active"]) == ("ann", None, True)
    assert share["expires_at"] == (NOW + timedelta(days=7)).isoformat()

    page = sharing.open(share["url"])
    assert page.status_code == 200
    assert "a read-only shared view" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # Links on the page carry the token, so the counsellor can download and look back.
    assert f"report.csv?share={share['token']}" in page.get_data(as_text=True)

    token = share["token"]
    by_key = sharing.client.get(REPORT, headers=sharing.auth()).json
    assert sharing.client.get(REPORT, query_string={"share": token}).json == by_key
    assert sharing.client.get(REPORT, headers=sharing.auth(token)).json == by_key
    assert sharing.open(share["report_url"]).json == by_key
    csv = sharing.client.get(f"{REPORT}.csv", query_string={"share": token})
    assert csv.status_code == 200


def test_a_share_token_opens_nothing_but_that_persons_pages(sharing: Sharing) -> None:
    token = sharing.share()["token"]
    as_token = sharing.auth(token)
    elsewhere = {
        "/v1/tenants/acme/people/dev/dashboard": 404,
        "/v1/tenants/acme/people/dev/report": 404,
        "/v1/tenants/other/people/ann/dashboard": 404,
        "/v1/tenants/other/people/ann/report": 404,
        "/v1/tenants/acme/people": 401,
        "/v1/tenants/acme/promises": 401,
        "/v1/tenants/acme/promises/p1": 401,
        "/v1/tenants/acme/export": 401,
        SHARES: 401,
    }
    for path, status in elsewhere.items():
        assert sharing.client.get(path, headers=as_token).status_code == status, path
        assert sharing.client.get(path, query_string={"share": token}).status_code in (
            status,
            401,
        ), path
    assert (
        sharing.client.post(SHARES, json={"expires_in": "P1D"}, headers=as_token).status_code == 401
    )
    raw, headers = signed(sharing.webhook_secret, envelope("promise.made", made("new")))
    headers.pop("webhook-signature")
    refused = sharing.client.post(
        "/v1/tenants/acme/events", data=raw, headers={**headers, **as_token}
    )
    assert refused.status_code == 401
    assert sharing.client.delete(f"{SHARES}/anything", headers=as_token).status_code == 401


def test_revoking_a_link_closes_it_at_once_and_the_list_shows_it(sharing: Sharing) -> None:
    kept, revoked = sharing.share(), sharing.share(expires_in="P30D")
    assert sharing.open(revoked["url"]).status_code == 200
    gone = sharing.client.delete(f"{SHARES}/{revoked['share_id']}", headers=sharing.auth())
    assert gone.status_code == 204
    refused = sharing.open(revoked["url"])
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    # A browser gets the same answer as a short page in words.
    in_browser = sharing.open(revoked["url"], Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert in_browser.status_code == 401
    assert in_browser.mimetype == "text/html"
    assert "Ask the person who shared it for a new one." in in_browser.get_data(as_text=True)
    assert in_browser.headers["Referrer-Policy"] == "no-referrer"
    assert sharing.open(kept["url"]).status_code == 200
    again = sharing.client.delete(f"{SHARES}/{revoked['share_id']}", headers=sharing.auth())
    assert again.status_code == 204
    listed = body(sharing.client.get(SHARES, headers=sharing.auth()))["items"]
    states = {s["share_id"]: (s["is_active"], s["revoked_at"]) for s in listed}
    assert states == {revoked["share_id"]: (False, NOW.isoformat()), kept["share_id"]: (True, None)}
    assert all("token" not in s and "url" not in s for s in listed)
    unknown = sharing.client.delete(f"{SHARES}/shr_unknown", headers=sharing.auth())
    assert unknown.status_code == 404


def test_an_expired_link_opens_nothing(sharing: Sharing) -> None:
    share = sharing.share(expires_in="PT1H")
    sharing.clock.now = NOW + timedelta(minutes=59)
    assert sharing.open(share["url"]).status_code == 200
    sharing.clock.now = NOW + timedelta(hours=1)
    assert sharing.open(share["url"]).status_code == 401
    listed = body(sharing.client.get(SHARES, headers=sharing.auth()))["items"]
    assert listed[0]["is_active"] is False


def test_forged_or_foreign_tokens_are_refused(sharing: Sharing) -> None:
    token = sharing.share()["token"]
    payload, signature = token.rsplit(".", 1)
    tampered = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_key = mint("another-deployments-key", "acme", "ann").token
    unknown_link = mint(KEY, "acme", "ann").token  # signed right, but never recorded
    for bad in (tampered, other_key, unknown_link, "not-a-token"):
        assert sharing.client.get(DASHBOARD, query_string={"share": bad}).status_code == 401
    # A token of another tenant's person opens nothing here either.
    response = sharing.client.post(
        "/v1/tenants/other/people/ann/shares",
        json={"expires_in": "P1D"},
        headers=sharing.auth(sharing.other_key),
    )
    foreign = body(response)["token"]
    assert sharing.client.get(DASHBOARD, query_string={"share": foreign}).status_code == 404


def test_a_link_for_one_promisee_shows_only_promises_towards_them(sharing: Sharing) -> None:
    share = sharing.share(promisee="ben")
    token = share["token"]
    page = sharing.open(share["url"]).get_data(as_text=True)
    assert "ann&#39;s promises to ben" in page
    assert "Promises to cat" not in page
    assert "About home" not in page
    report = body(sharing.client.get(REPORT, query_string={"share": token}))
    assert report["subject"] == {"person": "ann", "promisee": "ben", "category": None}
    for query in ({"promisee": "cat"}, {"category": "home"}):
        refused = sharing.client.get(REPORT, query_string={"share": token, **query})
        assert refused.status_code == 404


def test_only_a_hash_of_the_token_is_recorded(sharing: Sharing) -> None:
    share = sharing.share()
    ledger = sharing.components.ledger
    events = list(ledger.events.get(share_book_id("acme", "ann")))
    recorded = repr([vars(e) for e in events])
    assert share["token"] not in recorded
    assert share["token"].rsplit(".", 1)[0] not in recorded


def test_bad_share_requests_are_refused_naming_the_field(sharing: Sharing) -> None:
    for body, field in (
        ({}, "expires_in"),
        ({"expires_in": "P366D"}, "expires_in"),
        ({"expires_in": "-PT1H"}, "expires_in"),
        ({"expires_in": "P1D", "promisee": "ann"}, "promisee"),
        ({"expires_in": "P1D", "promisee": "no spaces"}, "promisee"),
        ({"expires_in": "P1D", "colour": "blue"}, "colour"),
    ):
        response = sharing.client.post(SHARES, json=body, headers=sharing.auth())
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
        assert field in str(response.json), (body, response.json)
    nobody = sharing.client.post(
        "/v1/tenants/acme/people/nobody/shares", json={"expires_in": "P1D"}, headers=sharing.auth()
    )
    assert nobody.status_code == 404
    stranger = sharing.client.post(
        SHARES, json={"expires_in": "P1D", "promisee": "stranger"}, headers=sharing.auth()
    )
    assert stranger.status_code == 404


def test_without_a_signing_key_share_links_are_off(served: Served) -> None:
    served.components.ledger.make_promise(
        PromiseTerms(tenant="acme", key="p", promiser="ann", title="t", made_at=T0)
    )
    served.components.projector.catch_up()
    response = served.client.post(SHARES, json={"expires_in": "P1D"}, headers=served.auth())
    assert response.status_code == 403
    assert "TROTH_SHARE_KEY" in body(response)["detail"]
    token = mint("some-key", "acme", "ann").token
    assert served.client.get(DASHBOARD, query_string={"share": token}).status_code == 401
