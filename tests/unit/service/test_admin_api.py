"""The operator's admin API: off without a token, and the same powers as `troth tenants`."""

from __future__ import annotations

from service.app import create_app
from service.settings import Settings
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


def test_the_admin_api_is_off_without_a_configured_token() -> None:
    app = create_app(Settings(database_url="memory:"))
    response = app.test_client().get("/v1/admin/tenants", headers=ADMIN)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_a_wrong_admin_token_is_401_even_with_a_bad_body(served: Served) -> None:
    response = served.client.post(
        "/v1/admin/tenants", json={"name": "has space"}, headers={"Authorization": "Bearer no"}
    )
    assert response.status_code == 401


def test_a_tenant_created_over_http_can_post_and_read_at_once(served: Served) -> None:
    created = served.client.post("/v1/admin/tenants", json={"name": "globex"}, headers=ADMIN)
    assert created.status_code == 201
    credentials = created.json
    assert credentials is not None
    raw, headers = signed(credentials["webhook_secret"], envelope("promise.made", made()))
    assert (
        served.client.post("/v1/tenants/globex/events", data=raw, headers=headers).status_code
        == 202
    )
    read = served.client.get(
        "/v1/tenants/globex/promises/p1",
        headers={"Authorization": f"Bearer {credentials['api_key']}"},
    )
    assert read.status_code == 200


def test_creating_an_existing_tenant_is_409_and_a_bad_name_422(served: Served) -> None:
    assert (
        served.client.post("/v1/admin/tenants", json={"name": "acme"}, headers=ADMIN).status_code
        == 409
    )
    bad = served.client.post("/v1/admin/tenants", json={"name": "has space"}, headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json is not None
    assert set(bad.json["errors"]) == {"name"}


def test_listing_shows_key_ids_and_scopes_never_keys(served: Served) -> None:
    response = served.client.get("/v1/admin/tenants", headers=ADMIN)
    assert response.status_code == 200
    assert response.json is not None
    [tenant] = response.json
    assert tenant["name"] == "acme"
    assert tenant["api_keys"][0]["key_id"] == served.tenant.key_id
    assert tenant["api_keys"][0]["scopes"] == [
        "events:write",
        "reports:read",
        "subscriptions:write",
    ]
    assert served.tenant.api_key not in response.get_data(as_text=True)
    assert served.tenant.webhook_secret not in response.get_data(as_text=True)


def test_issued_keys_work_and_revoked_keys_stop_at_once(served: Served) -> None:
    issued = served.client.post(
        "/v1/admin/tenants/acme/api-keys", json={"scopes": ["reports:read"]}, headers=ADMIN
    )
    assert issued.status_code == 201
    assert issued.json is not None
    key = {"Authorization": f"Bearer {issued.json['api_key']}"}
    assert served.client.get("/v1/tenants/acme/promises/none", headers=key).status_code == 404
    revoked = served.client.delete(
        f"/v1/admin/tenants/acme/api-keys/{issued.json['key_id']}", headers=ADMIN
    )
    assert revoked.status_code == 204
    assert served.client.get("/v1/tenants/acme/promises/none", headers=key).status_code == 401


def test_a_rotated_secret_is_returned_once_and_signs_deliveries(served: Served) -> None:
    rotated = served.client.post(
        "/v1/admin/tenants/acme/webhook-secrets/rotate", json={"grace_hours": 0}, headers=ADMIN
    )
    assert rotated.status_code == 201
    assert rotated.json is not None
    new_secret = rotated.json["webhook_secret"]
    old_raw, old_headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    assert (
        served.client.post("/v1/tenants/acme/events", data=old_raw, headers=old_headers).status_code
        == 401
    )
    raw, headers = signed(new_secret, envelope("promise.made", made()))
    assert (
        served.client.post("/v1/tenants/acme/events", data=raw, headers=headers).status_code == 202
    )
