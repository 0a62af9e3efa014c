"""Starting real Troth processes for end-to-end tests: free ports, health polling, clean stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TROTH = str(Path(sys.executable).parent / "troth")


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def troth_env(database_url: str, **settings: str) -> dict[str, str]:
    """The process environment for a Troth process on `database_url`."""
    env = {
        **os.environ,
        "TROTH_DATABASE_URL": database_url,
        "TROTH_RATE_LIMIT": "100000/second",
        # The test PostgreSQL is shared with other test runs: small pools leave room for them.
        "TROTH_DB_POOL_SIZE": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(settings)
    return env


def create_tenant(env: dict[str, str], name: str) -> dict[str, str]:
    """Register tenant `name` with the CLI; its credentials."""
    created: dict[str, str] = json.loads(
        subprocess.run(
            [TROTH, "tenants", "create", name, "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return created


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `troth ARGS`, its output going to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([TROTH, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Wait until `base`/healthz answers; fails if the process dies first.

    Generous: on a 2-core machine shared with other test runs, gunicorn and its workers can
    take tens of seconds to import everything.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with {process.returncode}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not come up in {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, and the exit code once it has stopped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


def request(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: status, headers and body (errors are answers too)."""
    method = "POST" if body is not None else "GET"
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def worker_pids(master: int) -> list[int]:
    """The child processes of `master` (gunicorn's workers)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]
