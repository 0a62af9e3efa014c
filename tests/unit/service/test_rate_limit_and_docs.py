"""Per-tenant rate limits, and the OpenAPI document and docs page served locally."""

from __future__ import annotations

from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed


def test_a_tenant_over_its_rate_limit_gets_429_with_retry_after() -> None:
    settings = Settings(database_url="memory:", rate_limit="3/minute")
    components = bootstrap(settings)
    tenant = components.ledger.register_tenant("acme", at=components.clock())
    other = components.ledger.register_tenant("globex", at=components.clock())
    client = create_app(settings, components).test_client()
    statuses = []
    for i in range(4):
        raw, headers = signed(tenant.webhook_secret, envelope("promise.made", made(f"p{i}")))
        response = client.post("/v1/tenants/acme/events", data=raw, headers=headers)
        statuses.append(response.status_code)
    assert statuses == [202, 202, 202, 429]
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    raw, headers = signed(other.webhook_secret, envelope("promise.made", made()))
    assert client.post("/v1/tenants/globex/events", data=raw, headers=headers).status_code == 202
    components.close()


def test_successful_answers_carry_no_retry_after(served: Served) -> None:
    raw, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    response = served.client.post("/v1/tenants/acme/events", data=raw, headers=headers)
    assert response.status_code == 202
    assert "Retry-After" not in response.headers


def test_the_openapi_document_lists_every_answer_of_the_webhook_endpoint(served: Served) -> None:
    spec = served.client.get("/openapi.json").json
    assert spec is not None
    post = spec["paths"]["/v1/tenants/{tenant}/events"]["post"]
    assert set(post["responses"]) >= {"200", "202", "401", "409", "413", "422", "429"}
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert "/v1/tenants/{tenant}/promises/{promise_id}" in spec["paths"]


def test_the_docs_page_and_its_assets_are_served_without_any_external_host(
    served: Served,
) -> None:
    page = served.client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/docs/static/swagger-ui-bundle.js" in html
    assert "https://" not in html
    asset = served.client.get("/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()
