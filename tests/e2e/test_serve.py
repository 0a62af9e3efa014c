"""`troth serve` (what `make run` starts) comes up on the embedded store and stays up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

TROTH = str(Path(sys.executable).parent / "troth")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get_json(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "TROTH_DATABASE_URL": f"sqlite:///{tmp_path}/var/troth.db"}
    process = subprocess.Popen(
        [TROTH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get_json(base + "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    yield base, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def test_serve_answers_health_checks_and_stays_up(
    served: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, process = served
    assert get_json(base + "/healthz") == (200, {"status": "ok"})
    time.sleep(1)
    assert process.poll() is None
    status, ready = get_json(base + "/readyz")
    assert (status, ready["status"]) == (200, "ready")
    # The welcome registers tenant `local`; the projector in the same process follows it.
    assert isinstance(ready["log_head"], int)
    assert ready["log_head"] > 0
    assert ready["projection"] == {"position": ready["log_head"], "lag": 0}
    assert (tmp_path / "var/troth.db").exists()


def test_serve_stops_cleanly_on_sigterm(served: tuple[str, subprocess.Popen[str]]) -> None:
    _, process = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
