"""The baseline for bench/ingest.py and bench/report.py: Flask under the same gunicorn."""

from __future__ import annotations

import json

from flask import Flask, request
from flask.typing import ResponseReturnValue

REPORT: dict[str, object] = {
    "subject": {"person": "someone", "promisee": None, "category": None},
    "score": {"value": 87, "exact": 86.9, "band": {"low": 80, "high": 92}, "evidence": 120.5},
    "counts": {"made": 120, "kept": 100, "broken": 17, "open": 3},
    "trend": {"weeks": [{"week": f"2026-W{w:02d}", "score": 86.0} for w in range(1, 13)]},
}


def create_app() -> Flask:
    """A bare app: answers 202 after parsing a posted body, or a fixed report-sized JSON."""
    app = Flask(__name__)

    @app.post("/v1/tenants/<tenant>/events")
    def post_event(tenant: str) -> ResponseReturnValue:
        envelope = json.loads(request.get_data())
        return {"promise_id": envelope["data"]["promise_id"], "event": envelope["type"]}, 202

    @app.get("/report")
    def report() -> ResponseReturnValue:
        return REPORT

    return app
