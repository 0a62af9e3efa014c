"""Fifty concurrent deliveries of one webhook to real gunicorn workers on PostgreSQL: one event."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.stores import open_ledger, unique_name
from tests.webhooks import envelope, made, signed

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def api_on_postgres(isolated_postgres_url: str) -> Iterator[tuple[str, str, str]]:
    env = {
        **os.environ,
        "TROTH_DATABASE_URL": isolated_postgres_url,
        "TROTH_RATE_LIMIT": "10000/second",
    }
    subprocess.run([BIN / "troth", "migrate"], env=env, check=True, capture_output=True)
    name = unique_name()
    created = json.loads(
        subprocess.run(
            [BIN / "troth", "tenants", "create", name, "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    port = free_port()
    server = subprocess.Popen(
        [BIN / "troth", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield base, name, created["webhook_secret"]
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def deliver(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_fifty_concurrent_deliveries_of_one_webhook_record_one_event(
    api_on_postgres: tuple[str, str, str], isolated_postgres_url: str
) -> None:
    base, tenant, secret = api_on_postgres
    body, headers = signed(secret, envelope("promise.made", made("p1")), msg_id="msg-same")
    url = f"{base}/v1/tenants/{tenant}/events"
    barrier = threading.Barrier(50)
    answers: list[tuple[int, bytes]] = []

    def one() -> None:
        barrier.wait()
        answers.append(deliver(url, body, headers))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 49 + [202]
    assert len({json.loads(payload)["position"] for _, payload in answers}) == 1
    ledger = open_ledger(Settings(database_url=isolated_postgres_url))
    assert len(ledger.promise(tenant, "p1").history) == 1
    ledger.close()
