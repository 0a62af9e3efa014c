"""`troth migrate` from several processes at once creates the tables once, without errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.settings import Settings
from tests.clock import T0
from tests.stores import open_ledger, unique_name

TROTH = str(Path(sys.executable).parent / "troth")


def run_concurrently(url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "TROTH_DATABASE_URL": url}
    processes = [
        subprocess.Popen(
            [TROTH, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_concurrent_migrations_all_succeed(isolated_store_url: str) -> None:
    results = run_concurrently(isolated_store_url, 4)
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    ledger = open_ledger(Settings(database_url=isolated_store_url))
    ledger.register_tenant(unique_name(), at=T0)
    ledger.close()


def test_migrate_creates_the_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/troth.db"
    results = run_concurrently(url, 1)
    assert results[0].returncode == 0, results[0].stderr
    assert (tmp_path / "nested/dir/troth.db").exists()
    assert "migrated sqlite:///" in results[0].stdout
