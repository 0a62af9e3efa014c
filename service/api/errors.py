"""Install the problem-details mapping on the app: no failure ever shows a stack trace."""

from __future__ import annotations

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from service.problems import describe

PROBLEM_JSON = "application/problem+json"


def problem_response(error: Exception) -> Response:
    """The RFC 9457 answer to `error`."""
    described = describe(error)
    response = Response(json.dumps(described.body), status=described.status, mimetype=PROBLEM_JSON)
    for name, value in described.headers.items():
        response.headers[name] = value
    return response


def register(app: Flask) -> None:
    """Install the error map on `app` (after flask-smorest's, which it replaces)."""
    app.register_error_handler(HTTPException, problem_response)
    app.register_error_handler(Exception, problem_response)
