"""The subscriptions API: secrets shown once, tenants isolated, bad URLs named."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from domain.credentials import Scope
from service.settings import Settings
from tests.unit.service.conftest import Served

HOOK = "https://hooks.example.com/troth"


def create(served: Served, **changes: Any) -> dict[str, Any]:
    body = {"url": HOOK, "types": ["promise.reminder"], "description": "ops"} | changes
    response = served.client.post(
        "/v1/tenants/acme/subscriptions", json=body, headers=served.auth()
    )
    assert response.status_code == 201, response.json
    assert isinstance(response.json, dict)
    return response.json


def test_a_new_subscription_shows_its_secret_once(served: Served) -> None:
    created = create(served)
    assert created["secret"].startswith("whsec_")
    assert created["state"] == "active"
    assert created["types"] == ["promise.reminder"]

    listed = served.client.get("/v1/tenants/acme/subscriptions", headers=served.auth())
    one = served.client.get(
        f"/v1/tenants/acme/subscriptions/{created['id']}", headers=served.auth()
    )
    assert listed.status_code == one.status_code == 200
    assert [s["id"] for s in listed.json or []] == [created["id"]]
    for answer in (listed, one):
        assert created["secret"] not in answer.get_data(as_text=True)
        assert "secret" not in answer.get_data(as_text=True)


def test_rotating_gives_a_new_secret_once(served: Served) -> None:
    created = create(served)
    rotated = served.client.post(
        f"/v1/tenants/acme/subscriptions/{created['id']}/secret/rotate",
        json={"grace_hours": 1},
        headers=served.auth(),
    )
    assert rotated.status_code == 201
    assert rotated.json is not None
    assert rotated.json["secret"].startswith("whsec_")
    assert rotated.json["secret"] != created["secret"]
    subscription = served.components.ledger.subscription("acme", created["id"])
    now = served.components.clock()
    assert subscription.secrets_valid_at(now) == [rotated.json["secret"], created["secret"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1/hook"}, "url"),
        ({"url": "http://[::ffff:127.0.0.1]/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "https://user:pass@hooks.example.com/"}, "url"),
        ({"url": "https://hooks.example.com:8443/"}, "url"),
        ({"types": []}, "types"),
        ({"types": ["Not A Type"]}, "types"),
        ({"description": "x" * 501}, "description"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    served: Served, changes: dict[str, Any], field: str
) -> None:
    body = {"url": HOOK, "types": ["*"]} | changes
    response = served.client.post(
        "/v1/tenants/acme/subscriptions", json=body, headers=served.auth()
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert set(response.json["errors"]) == {field}


def test_tenants_never_see_each_others_subscriptions(served: Served) -> None:
    created = create(served)
    other = served.components.ledger.register_tenant("globex", at=served.components.clock())
    as_other = served.auth(other.api_key)
    base = "/v1/tenants/globex/subscriptions"
    assert served.client.get(base, headers=as_other).json == []
    for method, path in [
        ("get", f"{base}/{created['id']}"),
        ("delete", f"{base}/{created['id']}"),
        ("get", f"{base}/{created['id']}/deliveries"),
        ("post", f"{base}/{created['id']}/secret/rotate"),
        ("post", f"{base}/{created['id']}/deliveries/m1/redeliver"),
    ]:
        assert getattr(served.client, method)(path, headers=as_other).status_code == 404
    # acme's key on globex's path is refused like an unknown tenant
    assert served.client.get(base, headers=served.auth()).status_code == 404
    assert served.client.get(
        f"/v1/tenants/acme/subscriptions/{created['id']}", headers=served.auth()
    ).json == {k: v for k, v in created.items() if k != "secret"}


def test_changing_subscriptions_needs_the_write_scope(served: Served) -> None:
    reader = served.components.ledger.issue_api_key(
        "acme", scopes=frozenset({Scope.REPORTS_READ}), at=served.components.clock()
    )
    response = served.client.post(
        "/v1/tenants/acme/subscriptions",
        json={"url": HOOK, "types": ["*"]},
        headers=served.auth(reader.api_key),
    )
    assert response.status_code == 403
    listed = served.client.get(
        "/v1/tenants/acme/subscriptions", headers=served.auth(reader.api_key)
    )
    assert listed.status_code == 200


def test_a_deleted_subscription_is_gone(served: Served) -> None:
    created = create(served)
    path = f"/v1/tenants/acme/subscriptions/{created['id']}"
    assert served.client.delete(path, headers=served.auth()).status_code == 204
    assert served.client.get(path, headers=served.auth()).status_code == 404
    assert served.client.delete(path, headers=served.auth()).status_code == 404
    assert served.client.get("/v1/tenants/acme/subscriptions", headers=served.auth()).json == []


def test_the_development_flag_is_off_by_default() -> None:
    assert not Settings.from_env({}).allow_private_targets
    assert Settings.from_env({"TROTH_ALLOW_PRIVATE_TARGETS": "1"}).allow_private_targets
    assert replace(Settings(), allow_private_targets=True).allow_private_targets
