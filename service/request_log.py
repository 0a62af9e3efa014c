"""Per-request observability: a request id, one JSON log line and the HTTP metrics.

The line holds only the request id, tenant, method, route template, status and latency:
never headers, bodies or query strings, so API keys, webhook secrets and promise content
cannot reach the logs.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

from flask import Flask, Response, g, request

from service.context import components

REQUEST_ID_HEADER: Final = "X-Request-Id"
# Accept a caller's id only if it is a short token: anything else could forge log lines.
ACCEPTABLE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")

logger = logging.getLogger("troth.request")


def install(app: Flask) -> None:
    """Give every request an id, and log and count it when answered."""
    app.before_request(_start)
    app.after_request(_finish)


def _start() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if ACCEPTABLE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    if started is None:  # a request that failed before before_request ran
        return response
    seconds = time.perf_counter() - started
    route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    components().metrics.observe_request(route, request.method, response.status_code, seconds)
    response.headers[REQUEST_ID_HEADER] = g.request_id
    logger.info(
        "request",
        extra={
            "request_id": g.request_id,
            "tenant": (request.view_args or {}).get("tenant"),
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "latency_ms": round(seconds * 1000, 2),
        },
    )
    return response
