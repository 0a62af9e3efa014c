"""Prometheus metrics of this process (every worker's under gunicorn), behind a token."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound, Unauthorized

from service.api.health import readiness
from service.context import components
from service.metrics import CONTENT_TYPE, is_authorized

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; needs `Authorization: Bearer <TROTH_METRICS_TOKEN>`."""
    built = components()
    token = built.settings.metrics_token
    if not token:
        raise NotFound("Metrics are disabled: set TROTH_METRICS_TOKEN to enable them.")
    if not is_authorized(token, request.headers.get("Authorization")):
        raise Unauthorized("The metrics need the bearer token TROTH_METRICS_TOKEN.")
    # Lag read from the database at scrape time: it shows even when the projector is down.
    readiness(built)
    return Response(built.metrics.exposition(), mimetype=None, content_type=CONTENT_TYPE)
