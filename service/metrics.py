"""Prometheus metrics: what every Troth process counts, and the token-protected exposition.

The metric objects are built by `Metrics()` (in `bootstrap`), never at import, each on its
own registry, so tests can build many apps in one process. Under gunicorn, `troth api` sets
prometheus-client's `PROMETHEUS_MULTIPROC_DIR` before the workers start: every value is then
written to a per-process file in that folder, and a scrape of any worker reads all of them
through a `MultiProcessCollector` (the gunicorn config marks dead workers' files). Without
that variable (`troth serve`, the projector and the scheduler) values live in memory.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS: Final = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


class Metrics:
    """Every metric Troth exposes; the processes that do the work increment them."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "troth_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "troth_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest_latency = Histogram(
            "troth_ingest_duration_seconds",
            "Time to verify and record posted events (kind: single or batch).",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_appended = Counter(
            "troth_events_appended",
            "Events appended to the event store by ingestion (repeated deliveries excluded).",
            registry=r,
        )
        self.projector_lag = Gauge(
            "troth_projector_lag_events",
            "Events in the log the report views have not applied yet.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.projector_position = Gauge(
            "troth_projector_position",
            "Notification id of the last event the report views applied.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.projector_batch_events = Histogram(
            "troth_projector_batch_events",
            "Events per batch the projector applied in one transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.projector_batch_seconds = Histogram(
            "troth_projector_batch_duration_seconds",
            "Time to read, apply and write one projector batch.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.projected_events = Counter(
            "troth_projector_events_applied",
            "Events the projector applied (rate() of it is the projector's throughput).",
            registry=r,
        )
        self.reminders_due = Gauge(
            "troth_reminders_due",
            "Due items (reminders, follow-ups, lapses) whose time has come, in the scheduler's "
            "current batch (at most 500); 0 once all are fired.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reminders = Counter(
            "troth_reminders",
            "Due reminders, follow-ups and lapse notices fired, by outcome: sent (queued as an "
            "outgoing message), failed (dropped: tenant gone or data invalid) or retrying "
            "(a concurrent write; fired again on the next tick).",
            ["outcome"],
            registry=r,
        )
        self.webhook_latency = Histogram(
            "troth_webhook_delivery_duration_seconds",
            "Time of one outgoing webhook delivery attempt, by outcome (HTTP status class).",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        self.requests.labels(route, method, str(status)).inc()
        self.request_latency.labels(route).observe(seconds)

    def observe_projector(self, position: int, head: int) -> None:
        """Record where the report views stand against the log's head."""
        self.projector_position.set(position)
        self.projector_lag.set(max(head - position, 0))

    def observe_batch(self, events: int, seconds: float) -> None:
        """Record one projector batch written."""
        self.projector_batch_events.observe(events)
        self.projector_batch_seconds.observe(seconds)
        self.projected_events.inc(events)

    def reminder_sent(self, count: int = 1) -> None:
        """Due reminders, follow-ups or lapse notices were queued as outgoing messages."""
        self.reminders.labels("sent").inc(count)

    def reminder_failed(self) -> None:
        """A due item was dropped (its tenant is gone or its data invalid)."""
        self.reminders.labels("failed").inc()

    def reminder_retrying(self, count: int = 1) -> None:
        """Due items met a concurrent write; the next tick fires them again."""
        self.reminders.labels("retrying").inc(count)

    def set_reminders_due(self, count: int) -> None:
        """How many due items the scheduler's current batch holds."""
        self.reminders_due.set(count)

    def observe_webhook_delivery(self, status: int | None, seconds: float) -> None:
        """One outgoing webhook attempt: `status` None when no answer came (delivery)."""
        outcome = "error" if status is None else f"{status // 100}xx"
        self.webhook_latency.labels(outcome).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (all workers' under gunicorn)."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)


def is_authorized(token: str | None, authorization: str | None) -> bool:
    """Whether an `Authorization` header carries the metrics bearer token.

    Without a configured token the metrics are not served at all: counts by route and
    tenant-free latencies are not secret, but the guide allows no unauthenticated endpoint
    other than health checks and docs.
    """
    if not token:
        return False
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the process's own log lines."""


class MetricsServer:
    """A small HTTP listener for processes without an API (projector, scheduler): `/metrics`
    with the same bearer token as the API's, and `/healthz` for the liveness probe."""

    def __init__(
        self,
        metrics: Metrics,
        token: str | None,
        host: str,
        port: int,
        is_alive: Callable[[], bool] = lambda: True,
    ) -> None:
        scrape = make_wsgi_app(metrics.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz":
                # The liveness probe: 503 once the worker thread has died, so it is restarted.
                if not is_alive():
                    start_response(
                        "503 Service Unavailable", [("Content-Type", "application/json")]
                    )
                    return [b'{"status": "dead"}']
                start_response("200 OK", [("Content-Type", "application/json")])
                return [b'{"status": "ok"}']
            if environ.get("PATH_INFO") != "/metrics":
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found\n"]
            if not is_authorized(token, environ.get("HTTP_AUTHORIZATION")):
                start_response(
                    "401 Unauthorized",
                    [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
                )
                return [b"metrics need the bearer token TROTH_METRICS_TOKEN\n"]
            result: Iterable[bytes] = scrape(environ, start_response)
            return result

        self._server: WSGIServer = make_server(host, port, app, handler_class=_QuietHandler)
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="troth-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        """Serve in a background thread."""
        self._thread.start()
        logger.info("metrics on port %s (bearer token required)", self.port)
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
