"""gunicorn's configuration for `troth api` (loaded with `--config python:service.web_server`).

gunicorn executes this module in its master process before forking the workers, so the
logging it sets up from `logconfig_dict` is the workers' too; the hooks run in the master.
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

worker_class = "gthread"
workers = _settings.web_workers
threads = _settings.web_threads
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
