"""The baseline for bench/ingest.py: Flask under the same gunicorn, parsing the same JSON."""

from __future__ import annotations

import json

from flask import Flask, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    """A bare app answering 202 after parsing the body, with no verification or storage."""
    app = Flask(__name__)

    @app.post("/v1/tenants/<tenant>/events")
    def post_event(tenant: str) -> ResponseReturnValue:
        envelope = json.loads(request.get_data())
        return {"promise_id": envelope["data"]["promise_id"], "event": envelope["type"]}, 202

    return app
