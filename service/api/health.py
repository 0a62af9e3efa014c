"""Health checks: unauthenticated, for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint

from service.context import components

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> dict[str, object]:
    """The process can serve: the database answers. Reports how far the views lag the log."""
    built = components()
    head = built.ledger.head_position()
    position = built.projector.position()
    return {
        "status": "ready",
        "log_head": head,
        "projection": {"position": position, "lag": max(head - position, 0)},
    }
