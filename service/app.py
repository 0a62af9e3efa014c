"""The Flask application factory."""

from __future__ import annotations

import logging
import os
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import isodate
import psycopg
import swagger_ui_bundle
from eventsourcing.persistence import OperationalError
from flask import Flask, Response, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from flask_limiter import HeaderNames, Limiter
from flask_smorest import Api

from service import circuit, request_log
from service.api import (
    admin,
    commitments,
    dashboard,
    errors,
    events,
    export,
    health,
    metrics,
    promises,
    reports,
    shares,
    subscriptions,
)
from service.bootstrap import Components, bootstrap
from service.problems import DATABASE_RETRY_AFTER_SECONDS
from service.rate_limits import SweptMemoryStorage
from service.settings import Settings

MAX_REQUEST_BYTES = 10 * 1024 * 1024 + 1024
BOOT_RETRY_SECONDS = 2.0
SWAGGER_STATIC = "/docs/static/"
LIMITER_RETRY_AFTER = "X-Troth-Limiter-Retry-After"
logger = logging.getLogger(__name__)


class IsoJSONProvider(DefaultJSONProvider):
    """JSON with ISO-8601 times and durations (Flask's default writes RFC 822 dates)."""

    sort_keys = False

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime | date):
            return o.isoformat()
        if isinstance(o, timedelta):
            return isodate.duration_isoformat(o)
        if isinstance(o, UUID):
            return str(o)
        return DefaultJSONProvider.default(o)


def create_app(settings: Settings | None = None, components: Components | None = None) -> Flask:
    """Build the WSGI app; gunicorn calls this after forking, so nothing is shared."""
    settings = settings or Settings.from_env(os.environ)
    components = components or bootstrap_patiently(settings)
    app = Flask(__name__)
    app.json = IsoJSONProvider(app)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        API_TITLE="Troth",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_STATIC,
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                }
            },
            "info": {
                "description": "Promises made, kept and broken, as signed webhooks in and "
                "consistency reports out. Errors are RFC 9457 problem details.",
            },
        },
        RATELIMIT_HEADERS_ENABLED=True,
    )
    app.extensions["troth"] = components
    api = Api(app)
    # after_request hooks run in reverse order: this one must see the limiter's headers.
    app.after_request(_retry_after_only_when_refused)
    limiter = Limiter(
        _tenant_of_request,
        app=app,
        storage_uri=SweptMemoryStorage.STORAGE_SCHEME[0] + "://",
        headers_enabled=True,
        header_name_mapping={HeaderNames.RETRY_AFTER: LIMITER_RETRY_AFTER},
    )
    tenant_blueprints = (
        events.blp,
        promises.blp,
        reports.blp,
        dashboard.blp,
        shares.blp,
        export.blp,
        subscriptions.blp,
        commitments.blp,
    )
    for blueprint in tenant_blueprints:
        limiter.limit(settings.rate_limit, key_func=_tenant_of_request)(blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    for blueprint in (*tenant_blueprints, admin.blp):
        api.register_blueprint(blueprint)
    limiter.exempt(health.blueprint)
    limiter.exempt(metrics.blueprint)
    request_log.install(app)
    circuit.install(app, circuit.DatabaseCircuit(cool_off=DATABASE_RETRY_AFTER_SECONDS))
    app.add_url_rule(SWAGGER_STATIC + "<path:filename>", "swagger_static", _swagger_static)
    errors.register(app)
    return app


def bootstrap_patiently(settings: Settings) -> Components:
    """`bootstrap`, retried while the database is unreachable.

    A gunicorn worker builds its components when it boots, and gunicorn stops the whole
    server when a worker fails to boot. A worker replaced during a database outage waits
    here instead (gunicorn's timeout replaces it again if the outage lasts), so the server
    outlives the outage and serves again once the database answers.
    """
    while True:
        try:
            return bootstrap(settings)
        except (OperationalError, psycopg.OperationalError) as error:
            logger.warning("database unreachable at worker start (%s); retrying", error)
            time.sleep(BOOT_RETRY_SECONDS)


def _retry_after_only_when_refused(response: Response) -> Response:
    # flask-limiter writes its Retry-After on every answer (rounded down, so often 0), which
    # would tell senders of successful requests to slow down and overwrite the Retry-After
    # of a 503. It writes under its own name instead; only a 429 turns it into Retry-After.
    limiter_value = response.headers.pop(LIMITER_RETRY_AFTER, None)
    if response.status_code == 429 and limiter_value is not None:
        response.headers["Retry-After"] = str(max(int(limiter_value), 1))
    elif response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def _tenant_of_request() -> str:
    return str((request.view_args or {}).get("tenant", "-"))


def _swagger_static(filename: str) -> ResponseReturnValue:
    return send_from_directory(Path(swagger_ui_bundle.swagger_ui_path), filename)
