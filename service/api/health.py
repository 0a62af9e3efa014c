"""Health checks: unauthenticated, for load balancers and orchestrators."""

from __future__ import annotations

import logging
import sqlite3

import psycopg
from eventsourcing.persistence import PersistenceError
from flask import Blueprint
from flask.typing import ResponseReturnValue

from service.bootstrap import Components
from service.context import components

blueprint = Blueprint("health", __name__)
logger = logging.getLogger(__name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (liveness: no database involved, so an outage restarts nothing)."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready to serve: the database answers and the views lag the log by at most
    `TROTH_READY_MAX_LAG` events; 503 with the reason otherwise."""
    body = readiness(components())
    return body, 200 if body["status"] == "ready" else 503


def readiness(built: Components) -> dict[str, object]:
    """The readiness verdict and its evidence, as the JSON body of `/readyz`."""
    try:
        # The views' pool first: it fails within one connect timeout, where the event
        # store's library would retry ten times before giving up.
        position = built.projector.position()
        head = built.ledger.head_position()
    except (PersistenceError, psycopg.Error, sqlite3.Error) as error:
        logger.warning("not ready: database unreachable (%s)", type(error).__name__)
        return {
            "status": "unavailable",
            "reason": "database-unreachable",
            "detail": "The database did not answer.",
        }
    lag = max(head - position, 0)
    built.metrics.observe_projector(position, head)
    body: dict[str, object] = {
        "status": "ready",
        "log_head": head,
        "projection": {"position": position, "lag": lag},
    }
    limit = built.settings.ready_max_lag
    if limit and lag > limit:
        body.update(
            status="unavailable",
            reason="projection-lagging",
            detail=f"The report views are {lag} events behind the log (limit {limit}).",
        )
    return body
