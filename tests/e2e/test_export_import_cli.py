"""`troth export` on one deployment, `troth import` on another (SQLite to PostgreSQL): the
imported tenant's reports are exactly those of the original."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from service.bootstrap import bootstrap
from service.migration import migrate
from service.settings import Settings
from tests.clock import T0
from tests.histories import every_report, record_everything, subjects
from tests.reporting import assert_same

TROTH = str(Path(sys.executable).parent / "troth")


def troth(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TROTH_DATABASE_URL": url}
    return subprocess.run(
        [TROTH, *arguments], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_an_export_from_sqlite_imports_into_postgres_with_the_same_reports(
    tmp_path: Path, isolated_postgres_url: str
) -> None:
    sqlite = Settings(database_url=f"sqlite:///{tmp_path}/source.db")
    postgres = Settings(database_url=isolated_postgres_url)
    migrate(sqlite)
    source = bootstrap(sqlite)
    source.ledger.register_tenant("ours", at=T0 - timedelta(days=1))
    record_everything(source.ledger, "ours")
    exported = tmp_path / "ours.ndjson"

    done = troth(sqlite.database_url, "export", "--tenant", "ours", "--output", str(exported))
    assert "exported" in done.stderr
    lines = exported.read_text().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines}) == 40

    troth(postgres.database_url, "migrate")
    troth(postgres.database_url, "tenants", "create", "copy")
    imported = troth(postgres.database_url, "import", str(exported), "--tenant", "copy")
    assert f"imported {len(lines)} events into copy (0 were already there)" in imported.stderr
    again = troth(postgres.database_url, "import", str(exported), "--tenant", "copy")
    assert f"imported 0 events into copy ({len(lines)} were already there)" in again.stderr

    target = bootstrap(postgres)
    try:
        source.projector.catch_up()
        target.projector.catch_up()
        assert subjects(target.views, "copy") == subjects(source.views, "ours")
        expected = every_report(source.reader, source.views, "ours")
        actual = every_report(target.reader, target.views, "copy")
        assert actual.keys() == expected.keys()
        for name, report in expected.items():
            assert_same(actual[name], report, path=str(name))
    finally:
        target.close()
        source.close()


def test_an_import_stops_at_a_bad_line_and_says_which(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/troth.db"
    troth(url, "migrate")
    troth(url, "tenants", "create", "copy")
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"id": "a", "type": "promise.kept"}\n')
    env = {**os.environ, "TROTH_DATABASE_URL": url}
    failed = subprocess.run(
        [TROTH, "import", str(bad), "--tenant", "copy"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert "line 1: invalid envelope" in failed.stderr
    missing = subprocess.run(
        [TROTH, "export", "--tenant", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert "no tenant 'nobody'" in missing.stderr
