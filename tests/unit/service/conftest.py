"""An app on in-memory persistence with one registered tenant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from domain.application import TenantCredentials
from service.app import create_app
from service.bootstrap import Components, bootstrap
from service.settings import Settings


@dataclass
class Served:
    """The app under test, its components, a client and a tenant's credentials."""

    app: Flask
    components: Components
    client: FlaskClient
    tenant: TenantCredentials

    def auth(self, key: str | None = None) -> dict[str, str]:
        """Bearer headers for the tenant's key (or another)."""
        return {"Authorization": f"Bearer {key or self.tenant.api_key}"}


@pytest.fixture
def served() -> Iterator[Served]:
    settings = Settings(database_url="memory:", admin_token="admin-token-for-tests")
    components = bootstrap(settings)
    app = create_app(settings, components)
    tenant = components.ledger.register_tenant("acme", at=components.clock())
    with app.test_client() as client:
        yield Served(app, components, client, tenant)
    components.close()
