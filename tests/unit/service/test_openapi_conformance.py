"""Schemathesis against /openapi.json: no server errors, every answer as documented."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings

ADMIN_TOKEN = "admin-token"
# Schemathesis generates its tests from the schema at collection time, so the app under
# test is built when this module is collected (its fixture loader does not work on pytest 9).
CONFIG = Settings(database_url="memory:", admin_token=ADMIN_TOKEN, rate_limit="1000000/second")
COMPONENTS = bootstrap(CONFIG)
TENANT = COMPONENTS.ledger.register_tenant("acme", at=COMPONENTS.clock())
schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(CONFIG, COMPONENTS))


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_to_a_tenant_key(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TENANT.api_key}"})


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_to_the_operator(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
