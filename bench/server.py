"""The benchmarks' HTTP servers: an app under `troth api`'s gunicorn configuration."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port nothing listens on now (other benchmarks may run on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_server_arguments(parser: argparse.ArgumentParser, threads: int) -> None:
    """The gunicorn options every HTTP benchmark takes (the same for Troth and the bare app)."""
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--worker-class",
        default=None,
        help="gunicorn worker class instead of `troth api`'s own (gevent), e.g. gthread",
    )
    parser.add_argument(
        "--threads", type=int, default=threads, help="threads per worker (gthread only)"
    )


def server_name(args: argparse.Namespace) -> str:
    """The gunicorn set-up a run used, for its report."""
    if args.worker_class in (None, "gevent"):
        return f"gunicorn {args.workers} gevent workers (`troth api`'s settings)"
    return f"gunicorn {args.workers} {args.worker_class} workers x {args.threads} threads"


@contextmanager
def gunicorn(app: str, port: int, env: dict[str, str], args: argparse.Namespace) -> Iterator[str]:
    """`app` under `troth api`'s gunicorn configuration (`service/web_server.py`), or the
    worker class `args` names instead."""
    options = [f"--workers={args.workers}"]
    if args.worker_class is not None:
        options += [f"--worker-class={args.worker_class}", f"--threads={args.threads}"]
    # The servers log every request to a file, as a deployment's log collector takes them:
    # a pipe to this terminal fills up when the machine is busy and blocks the workers.
    log = tempfile.NamedTemporaryFile(prefix="troth-bench-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            app,
            "--config=python:service.web_server",
            f"--bind=127.0.0.1:{port}",
            *options,
            "--log-level=warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()  # noqa: S310
            break
        except urllib.error.HTTPError:
            break  # an answer (the bare app has no /healthz): the server is up
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                sys.exit(f"{app} did not start:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
