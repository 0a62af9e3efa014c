"""gunicorn's configuration for `troth api` (loaded with `--config python:service.web_server`).

gunicorn executes this module in its master process before forking the workers, so the
logging it sets up from `logconfig_dict` is the workers' too; `child_exit` runs in the master,
`worker_exit` in the worker that stops.

Workers are gevent workers: each request is a greenlet, and the worker switches between them
only where one waits (for the database, the network, a lock). Requests spend most of their
time waiting for PostgreSQL, above all for the group commit (`domain/group_commit.py`). Under
threads, every such wait ended with a wait for the GIL, up to the 5 ms switch interval while
another request computed; the commit's leader paid that several times per transaction with
the table lock held, and ingestion reached 0.25 of a bare app's rate (0.37 under gevent; see
docs/benchmarks.md). gevent patches the standard library when the worker starts, before the
app (and psycopg, which then waits cooperatively) is imported, so this module and what it
imports must not import psycopg: the master imports it before forking.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

from service.logs import logging_config
from service.settings import Settings

_settings = Settings.from_env(os.environ)
# gunicorn's own lines (booting, worker exits) in the same format as the app's.
logconfig_dict = logging_config(_settings)

worker_class = "gevent"
workers = _settings.web_workers
# Requests a worker serves at once; more wait in the listen backlog (or on another worker).
worker_connections = _settings.web_connections
# SIGTERM: stop accepting, let in-flight requests finish for up to graceful_timeout seconds
# (Kubernetes' terminationGracePeriodSeconds must exceed it), then exit 0.
graceful_timeout = 20
timeout = 60
keepalive = 5
# Each request is logged by the app as JSON; gunicorn's access log would repeat it.
accesslog = None
# gunicorn's control socket would live in $HOME: unwritable in the image (read-only root),
# shared by every gunicorn of a user elsewhere, and nothing here uses it.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended (SIGKILL included): fold its live gauges out of the shared metrics."""
    if _settings.metrics_dir:
        multiprocess.mark_process_dead(worker.pid, _settings.metrics_dir)


def worker_exit(server: Any, worker: Any) -> None:
    """A worker stops: close its connection pools while its gevent hub still runs.

    Left to the interpreter's exit, each pool's finaliser would try to join its worker
    greenlets after the hub is gone, and log a traceback for every pool.
    """
    app = getattr(worker, "wsgi", None)
    built = getattr(app, "extensions", {}).get("troth")
    if built is not None:
        built.close()
