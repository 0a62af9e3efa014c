"""A circuit breaker in front of the database: fail fast while it is down.

The event store's library retries a failed statement up to ten times, each waiting up to
`TROTH_DB_CONNECT_TIMEOUT` for a connection, so a request that meets a dead database is
answered 503 only after about ten connect timeouts. Once one request has been answered
503, the others get their 503 at once instead of piling up on the threads; one request per
cool-off period still goes through to find out whether the database is back, and the first
answer below 500 closes the circuit again. State is per process (per gunicorn
worker): nothing to coordinate, and each worker learns of an outage by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from eventsourcing.persistence import OperationalError
from flask import Flask, Response, g, request

from service.problems import PROBLEM_BASE

DATABASE_UNAVAILABLE: Final = PROBLEM_BASE + "database-unavailable"
# Health checks must see the database for themselves; the metrics never touch it for writes.
EXEMPT_BLUEPRINTS: Final = frozenset({"health", "metrics"})


class DatabaseCircuit:
    """Open after a 503, half-open once per `cool_off` seconds, closed by any other answer."""

    def __init__(self, cool_off: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._cool_off = cool_off
        self._clock = clock
        self._lock = threading.Lock()
        self._probe_at: float | None = None

    def admit(self) -> bool:
        """Whether a request may use the database now."""
        with self._lock:
            if self._probe_at is None:
                return True
            now = self._clock()
            if now < self._probe_at:
                return False
            # This request probes; the others keep failing fast until it is answered.
            self._probe_at = now + self._cool_off
            return True

    def trip(self) -> None:
        """The database failed a request."""
        with self._lock:
            self._probe_at = self._clock() + self._cool_off

    def reset(self) -> None:
        """The database answered."""
        with self._lock:
            self._probe_at = None


def install(app: Flask, circuit: DatabaseCircuit) -> None:
    """Guard every request but the health checks and metrics with `circuit`."""

    def guard() -> None:
        if request.blueprint not in EXEMPT_BLUEPRINTS and not circuit.admit():
            g.refused_by_circuit = True
            raise OperationalError("the database was unavailable moments ago")

    def observe(response: Response) -> Response:
        # Only answers that went to the database say anything about it: a refusal here
        # must not push the next probe further away.
        if request.blueprint in EXEMPT_BLUEPRINTS or g.get("refused_by_circuit"):
            return response
        if _is_database_unavailable(response):
            circuit.trip()
        elif response.status_code < 500:
            circuit.reset()
        return response

    app.before_request(guard)
    app.after_request(observe)


def _is_database_unavailable(response: Response) -> bool:
    # Other 503s (a read waiting for the views with `?after=`) say nothing about the database.
    if response.status_code != 503:
        return False
    body = response.get_json(silent=True)
    return isinstance(body, dict) and body.get("type") == DATABASE_UNAVAILABLE
