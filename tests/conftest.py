"""Shared fixtures: fixed clocks, in-memory ledgers, and real SQLite / PostgreSQL stores."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from domain.application import Ledger, TenantCredentials
from service.migration import migrate
from service.settings import Database, Settings
from tests.clock import T0
from tests.stores import unique_name

DEFAULT_TEST_DATABASE_URL = "postgresql://root@127.0.0.1:5432/test"
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by directory, so `-m unit` and friends select by layer."""
    for item in items:
        layer = Path(str(item.fspath)).relative_to(TESTS).parts[0]
        if layer in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """A Ledger on the library's in-memory (POPO) persistence."""
    app = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    yield app
    app.close()


@pytest.fixture
def tenant(ledger: Ledger) -> TenantCredentials:
    """A registered tenant with its first credentials."""
    return ledger.register_tenant(unique_name(), at=T0)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL for this run, dropped afterwards.

    Without a server the tests using it skip with the reason, unless
    TROTH_REQUIRE_POSTGRES=1 (CI), where a missing server is a failure.
    """
    base = os.environ.get("TROTH_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    conninfo = Database.from_url(base).conninfo()
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL not reachable at {Database.from_url(base).redacted()}: {error}"
        if os.environ.get("TROTH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TROTH_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    schema = f"troth_test_{secrets.token_hex(4)}"
    with conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        separator = "&" if "?" in base else "?"
        try:
            yield f"{base}{separator}schema={schema}"
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Migrated settings for each real backend: a temp SQLite file, and PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/troth.db"
    else:
        url = request.getfixturevalue("postgres_url")
    settings = Settings(database_url=url)
    migrate(settings)
    return settings


@pytest.fixture
def isolated_postgres_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL schema no other test writes to, dropped afterwards."""
    base = Database.from_url(postgres_url)
    schema = f"troth_iso_{secrets.token_hex(4)}"
    url = f"postgresql://{base.user}@{base.host}:{base.port}/{base.dbname}?schema={schema}"
    try:
        yield url
    finally:
        with psycopg.connect(base.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgres"])
def isolated_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL no other test writes to (its own SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/troth.db"
    url: str = request.getfixturevalue("isolated_postgres_url")
    return url
