"""PostgreSQL goes away under `troth api` and `troth projector`, then comes back.

The outage is a severed TCP proxy between the processes and the shared PostgreSQL, which
keeps running for everyone else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.settings import Database, Settings
from tests.proxy import SeverableProxy
from tests.servers import (
    create_tenant,
    free_port,
    request,
    start,
    stop,
    troth_env,
    wait_healthy,
    worker_pids,
)
from tests.stores import open_ledger, unique_name
from tests.webhooks import envelope, made, signed

CONNECT_TIMEOUT = 2
# The library tries a statement ten times, each waiting up to the connect timeout: the
# longest a request can take to learn of the outage (docs/operations.md), plus slack.
ANSWER_BOUND_SECONDS = 10 * (CONNECT_TIMEOUT + 0.25) + 5
RECOVERY_BOUND_SECONDS = 120


@dataclass
class Outage:
    base: str
    tenant: str
    secret: str
    proxy: SeverableProxy
    url: str
    api: subprocess.Popen[bytes]


@pytest.fixture
def outage(isolated_postgres_url: str, tmp_path: Path) -> Iterator[Outage]:
    direct = troth_env(isolated_postgres_url)
    start_migrate = start(["migrate"], direct, tmp_path / "migrate.log")
    assert start_migrate.wait(timeout=60) == 0
    tenant = unique_name()
    created = create_tenant(direct, tenant)
    db = Database.from_url(isolated_postgres_url)
    proxy = SeverableProxy((db.host, db.port))
    proxied_url = f"postgresql://{db.user}@127.0.0.1:{proxy.port}/{db.dbname}?schema={db.schema}"
    env = troth_env(
        proxied_url,
        TROTH_DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        TROTH_DB_STATEMENT_TIMEOUT_MS="5000",
        TROTH_WEB_WORKERS="2",
    )
    port = free_port()
    api = start(["api", "--port", str(port)], env, tmp_path / "api.log")
    projector = start(["projector"], env, tmp_path / "projector.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, api)
        yield Outage(base, tenant, created["webhook_secret"], proxy, isolated_postgres_url, api)
    finally:
        proxy.restore()
        codes = [stop(api), stop(projector)]
        proxy.close()
        assert codes == [0, 0], (tmp_path / "projector.log").read_text()[-3000:]


def post(outage: Outage, promise_id: str) -> tuple[int, dict[str, str], bytes, float]:
    body, headers = signed(outage.secret, envelope("promise.made", made(promise_id)))
    started = time.monotonic()
    status, answer_headers, answer = request(
        f"{outage.base}/v1/tenants/{outage.tenant}/events", body, headers
    )
    return status, answer_headers, answer, time.monotonic() - started


def test_writes_get_503_while_the_database_is_down_and_succeed_after_without_restart(
    outage: Outage,
) -> None:
    accepted: list[str] = []
    refusals: list[float] = []
    stop_load = threading.Event()

    def load() -> None:
        # Writes keep coming through the whole outage; each 2xx must be in the store.
        number = 0
        while not stop_load.is_set():
            number += 1
            promise_id = f"load-{number}"
            try:
                status, _, _, seconds = post(outage, promise_id)
            except OSError:
                continue  # no answer at all (a worker replaced): nothing was promised
            if status in (200, 202):
                accepted.append(promise_id)
            elif status == 503:
                refusals.append(seconds)
            else:
                raise AssertionError(f"unexpected {status}")

    loader = threading.Thread(target=load)
    loader.start()
    try:
        assert post(outage, "before")[0] == 202
        outage.proxy.sever()
        for number in range(6):
            status, headers, body, seconds = post(outage, f"during-{number}")
            refusals.append(seconds)
            assert status == 503
            assert seconds < ANSWER_BOUND_SECONDS
            assert headers["Content-Type"] == "application/problem+json"
            assert int(headers["Retry-After"]) > 0
            problem = json.loads(body)
            assert problem["type"] == "/problems/database-unavailable"
            assert "Traceback" not in body.decode()
        # Every 503 came within the bound; the circuit's fast refusals are tested in
        # tests/unit/service/test_circuit.py (here their share depends on timing).
        assert all(seconds < ANSWER_BOUND_SECONDS for seconds in refusals), refusals
        status, _, body = request(outage.base + "/readyz")
        assert status == 503
        assert json.loads(body)["reason"] == "database-unreachable"
        assert request(outage.base + "/healthz")[0] == 200

        recover(outage, accepted)
    finally:
        stop_load.set()
        loader.join(timeout=60)

    assert_projector_caught_up(outage)
    assert_stored(outage, ["before", "after", *accepted])
    assert len(accepted) > 0


def recover(outage: Outage, accepted: list[str]) -> None:
    """Bring the database back: writes succeed again without a restart, the load's too."""
    outage.proxy.restore()
    # A pool stops backing off after 10 s and tries afresh for the next request
    # (projections/pools.py); requests already retrying finish their round first.
    deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
    while (status := post(outage, "after")[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 202
    # The load goes on until some of it is accepted again (it may have met nothing but
    # the outage so far), so what follows checks writes from both sides of it.
    deadline = time.monotonic() + 30
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.1)


def assert_projector_caught_up(outage: Outage) -> None:
    # The projector process, running all along, catches up with everything accepted.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = request(outage.base + "/readyz")
        ready = json.loads(body)
        if status == 200 and ready["projection"]["lag"] == 0:
            break
        time.sleep(0.5)
    assert (status, ready["projection"]["lag"]) == (200, 0)


def assert_stored(outage: Outage, promise_ids: list[str]) -> None:
    ledger = open_ledger(Settings(database_url=outage.url))
    try:
        for promise_id in promise_ids:
            assert ledger.promise(outage.tenant, promise_id).history, promise_id
    finally:
        ledger.close()


def test_workers_replaced_during_the_outage_start_serving_when_the_database_returns(
    outage: Outage,
) -> None:
    assert post(outage, "before")[0] == 202
    outage.proxy.sever()
    # Every worker dies while the database is away; gunicorn starts new ones, which cannot
    # build their connection pools yet.
    for pid in worker_pids(outage.api.pid):
        os.kill(pid, signal.SIGKILL)
    # Long enough for the new workers to import everything and fail to connect (twice).
    time.sleep(3 * CONNECT_TIMEOUT + 8)
    assert outage.api.poll() is None
    outage.proxy.restore()
    deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
    status = 0
    while time.monotonic() < deadline:
        try:
            status = post(outage, "after")[0]
        except OSError:
            status = 0
        if status == 202:
            break
        time.sleep(0.5)
    assert status == 202
    # Same gunicorn master all along: nothing restarted the server.
    assert outage.api.poll() is None
    assert_stored(outage, ["before", "after"])
