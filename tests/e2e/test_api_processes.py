"""`troth api` as production runs it: gunicorn workers on PostgreSQL, killed, stopped, raced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from service.settings import Settings
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

METRICS_TOKEN = "metrics-token-for-tests"


@dataclass
class Api:
    base: str
    tenant: str
    secret: str
    url: str
    master: int

    def post(self, kind: str, data: dict[str, object]) -> int:
        body, headers = signed(self.secret, envelope(kind, data))
        return request(f"{self.base}/v1/tenants/{self.tenant}/events", body, headers)[0]


def start_api(
    url: str, tenant: str, secret: str, log: Path, workers: int = 2
) -> tuple[Api, subprocess.Popen[bytes]]:
    env = troth_env(
        url,
        TROTH_WEB_WORKERS=str(workers),
        TROTH_WEB_CONNECTIONS="8",
        TROTH_METRICS_TOKEN=METRICS_TOKEN,
    )
    port = free_port()
    process = start(["api", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process)
    return Api(base, tenant, secret, url, process.pid), process


@pytest.fixture
def migrated(isolated_postgres_url: str, tmp_path: Path) -> tuple[str, str, str]:
    env = troth_env(isolated_postgres_url)
    assert start(["migrate"], env, tmp_path / "migrate.log").wait(timeout=60) == 0
    tenant = unique_name()
    return isolated_postgres_url, tenant, create_tenant(env, tenant)["webhook_secret"]


@pytest.fixture
def api(migrated: tuple[str, str, str], tmp_path: Path) -> Iterator[Api]:
    served, process = start_api(*migrated, tmp_path / "api.log")
    yield served
    assert stop(process) == 0


def stored_history(url: str, tenant: str, promise_id: str) -> list[str]:
    ledger = open_ledger(Settings(database_url=url))
    try:
        return [entry.event for entry in ledger.promise(tenant, promise_id).history]
    finally:
        ledger.close()


def test_a_worker_killed_under_load_loses_no_accepted_event(api: Api) -> None:
    accepted: list[str] = []
    lock = threading.Lock()

    def send(number: int) -> None:
        promise_id = f"p{number}"
        try:
            status = api.post("promise.made", made(promise_id))
        except (OSError, HTTPException):
            # The killed worker's requests: dropped connections, or an answer cut off after
            # its status line; either way no answer the sender could rely on.
            return
        if status in (200, 202):
            with lock:
                accepted.append(promise_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(send, n) for n in range(300)]
        while len(accepted) < 50:
            time.sleep(0.01)
        victim = worker_pids(api.master)[0]
        os.kill(victim, signal.SIGKILL)
        for future in futures:
            future.result()
    # gunicorn replaces the worker; the API keeps answering.
    deadline = time.monotonic() + 30
    while victim in worker_pids(api.master) or len(worker_pids(api.master)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.post("promise.made", made("after-the-kill")) == 202
    assert len(accepted) > 50
    ledger = open_ledger(Settings(database_url=api.url))
    try:
        missing = [p for p in accepted if not ledger.promise(api.tenant, p).history]
    finally:
        ledger.close()
    assert missing == []


def test_two_api_processes_settling_one_promise_one_wins_the_other_gets_409(
    migrated: tuple[str, str, str], tmp_path: Path
) -> None:
    first, first_process = start_api(*migrated, tmp_path / "first.log", workers=1)
    second, second_process = start_api(*migrated, tmp_path / "second.log", workers=1)
    try:
        promises = [f"race-{n}" for n in range(20)]
        for promise_id in promises:
            assert first.post("promise.made", made(promise_id)) == 202
        outcomes: dict[str, list[tuple[str, int]]] = {}

        def race(promise_id: str) -> None:
            barrier = threading.Barrier(2)
            answers: list[tuple[str, int]] = []

            def settle(api: Api, kind: str) -> None:
                barrier.wait()
                answers.append((kind, api.post(kind, {"promise_id": promise_id})))

            threads = [
                threading.Thread(target=settle, args=(first, "promise.kept")),
                threading.Thread(target=settle, args=(second, "promise.broken")),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            outcomes[promise_id] = answers

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(race, promises))
    finally:
        assert stop(first_process) == 0
        assert stop(second_process) == 0
    url, tenant, _ = migrated
    for promise_id, answers in outcomes.items():
        assert sorted(status for _, status in answers) == [202, 409], answers
        winner = next(kind for kind, status in answers if status == 202)
        history = stored_history(url, tenant, promise_id)
        assert history == ["Made", "Kept" if winner == "promise.kept" else "Broken"]


def scrape(api: Api) -> dict[str, float]:
    status, _, body = request(
        api.base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200
    return {
        f"{s.name}{json.dumps(s.labels, sort_keys=True)}": s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_metrics_add_up_across_the_gunicorn_workers(api: Api) -> None:
    for number in range(40):
        assert api.post("promise.made", made(f"m{number}")) == 202
    # Whichever worker answers the scrape reports the requests all workers answered.
    for _ in range(4):
        samples = scrape(api)
        assert samples["troth_events_appended_total{}"] == 40
        route = '{"method": "POST", "route": "/v1/tenants/<tenant>/events", "status": "202"}'
        assert samples["troth_http_requests_total" + route] == 40
    assert request(api.base + "/metrics")[0] == 401


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(
    migrated: tuple[str, str, str], tmp_path: Path
) -> None:
    served, process = start_api(*migrated, tmp_path / "api.log", workers=1)
    lines = [
        json.dumps({"id": f"line-{n}", **envelope("promise.made", made(f"b{n}"))})
        for n in range(3000)
    ]
    body, headers = signed(served.secret, "\n".join(lines).encode())
    headers["content-type"] = "application/x-ndjson"
    answer: list[tuple[int, bytes]] = []

    def post_batch() -> None:
        status, _, payload = request(
            f"{served.base}/v1/tenants/{served.tenant}/events/batch", body, headers, timeout=60
        )
        answer.append((status, payload))

    poster = threading.Thread(target=post_batch)
    poster.start()
    time.sleep(0.3)  # the batch is being recorded
    assert stop(process) == 0
    poster.join()
    status, payload = answer[0]
    assert status == 200
    assert json.loads(payload)["summary"]["recorded"] == 3000
    # Every line the process wrote, gunicorn's own included, is one JSON object.
    logged = [json.loads(entry) for entry in (tmp_path / "api.log").read_text().splitlines()]
    loggers = {entry["logger"] for entry in logged}
    assert {"gunicorn.error", "troth.request"} <= loggers


def test_a_write_waiting_for_the_database_does_not_hold_up_the_workers_other_requests(
    migrated: tuple[str, str, str], tmp_path: Path
) -> None:
    # One worker, so the write and the read are served by the same process: its requests
    # must wait for PostgreSQL one at a time without stopping the others (a worker whose
    # psycopg blocked the whole process would answer nothing until the lock is released).
    served, process = start_api(*migrated, tmp_path / "api.log", workers=1)
    database = Settings(database_url=served.url).database
    try:
        with psycopg.connect(database.conninfo()) as blocker:
            blocker.execute(
                sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                    sql.Identifier(database.schema or "public", "ledger_events")
                )
            )
            with ThreadPoolExecutor(max_workers=1) as pool:
                write = pool.submit(served.post, "promise.made", made("held"))
                deadline = time.monotonic() + 20
                while not _waiting_for_a_lock(blocker):
                    assert time.monotonic() < deadline, "the write never reached the lock"
                    time.sleep(0.05)
                status, _, _ = request(served.base + "/v1/tenants/unknown/promises/x", timeout=10)
                assert status == 401  # answered while the write still waits
                assert not write.done()
                blocker.rollback()  # releases the table
                assert write.result(timeout=30) == 202
    finally:
        assert stop(process) == 0


def _waiting_for_a_lock(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
        (conn.info.backend_pid,),
    ).fetchone()
    return bool(row and row[0])
