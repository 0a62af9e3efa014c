"""`troth projections status|rebuild` and the `troth projector` process on a SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from domain.promise import PromiseTerms
from projections.views import SubjectKey
from service.bootstrap import bootstrap
from service.cli import cli
from service.settings import Settings
from tests.clock import T0

TROTH = str(Path(sys.executable).parent / "troth")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/troth.db"
    result = CliRunner().invoke(cli, ["migrate"], env={"TROTH_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    components = bootstrap(Settings(database_url=url))
    try:
        components.ledger.register_tenant("acme", at=T0)
        for i in range(5):
            terms = PromiseTerms("acme", f"p{i}", "ann", f"promise {i}", made_at=T0)
            components.ledger.make_promise(terms)
            components.ledger.keep_promise("acme", f"p{i}", at=T0 + timedelta(hours=1))
    finally:
        components.close()
    return url


def status(url: str) -> tuple[int, int, int]:
    result = CliRunner().invoke(cli, ["projections", "status"], env={"TROTH_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    found = re.search(r"position (\d+) of (\d+) \(lag (\d+)\)", result.output)
    assert found is not None, result.output
    position, head, lag = map(int, found.groups())
    return position, head, lag


def kept(url: str) -> int | None:
    components = bootstrap(Settings(database_url=url))
    try:
        key = SubjectKey("acme", "promiser", "ann")
        report = components.reader.report(key, now=T0 + timedelta(days=1))
        return None if report is None else report.counts.kept
    finally:
        components.close()


def test_status_shows_the_lag_and_rebuild_replays_the_whole_log(database_url: str) -> None:
    position, head, lag = status(database_url)
    assert (position, lag) == (0, head)
    assert head > 10

    result = CliRunner().invoke(
        cli, ["projections", "rebuild", "--yes"], env={"TROTH_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    assert f"rebuilt the reports views from {head} events" in result.output
    assert status(database_url) == (head, head, 0)
    assert kept(database_url) == 5

    # Rebuilding again gives the same views, not doubled counts.
    again = CliRunner().invoke(
        cli, ["projections", "rebuild", "--yes"], env={"TROTH_DATABASE_URL": database_url}
    )
    assert again.exit_code == 0, again.output
    assert kept(database_url) == 5


def test_rebuild_asks_before_dropping_the_views(database_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["projections", "rebuild"], input="n\n", env={"TROTH_DATABASE_URL": database_url}
    )
    assert result.exit_code != 0
    assert "Aborted" in result.output


def test_the_projector_process_follows_the_log_and_stops_cleanly(database_url: str) -> None:
    env = {**os.environ, "TROTH_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [TROTH, "projector"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while status(database_url)[2] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status(database_url)[2] == 0
        assert kept(database_url) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert process.stdout is not None
        output = process.stdout.read()
        process.stdout.close()
    assert code == 0, output
    assert "Troth projector stopped" in output


def test_reports_keep_answering_while_the_views_are_rebuilt(database_url: str) -> None:
    status_before = CliRunner().invoke(
        cli, ["projections", "rebuild", "--yes"], env={"TROTH_DATABASE_URL": database_url}
    )
    assert status_before.exit_code == 0, status_before.output
    serving = bootstrap(Settings(database_url=database_url))
    answers: list[int | None] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        key = SubjectKey("acme", "promiser", "ann")
        while not stop.is_set():
            try:
                report = serving.reader.report(key, now=T0 + timedelta(days=1))
                answers.append(None if report is None else report.counts.kept)
            except BaseException as error:
                failures.append(error)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            result = CliRunner().invoke(
                cli,
                ["projections", "rebuild", "--yes", "--view", "reports"],
                env={"TROTH_DATABASE_URL": database_url},
            )
            assert result.exit_code == 0, result.output
    finally:
        stop.set()
        reader.join(10)
        serving.close()
    assert failures == []
    assert answers
    assert set(answers) == {5}


def test_a_store_that_is_not_there_gets_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "TROTH_DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/troth.db"}
    result = subprocess.run(
        [TROTH, "projections", "status"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot be used" in result.stderr
    assert "troth migrate" in result.stderr
