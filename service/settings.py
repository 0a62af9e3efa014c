"""Configuration: the one place that reads the process environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from projections.projector import BATCH_SIZE

DEFAULT_DATABASE_URL: Final = "sqlite:///./var/troth.db"


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Database:
    """Where the event store and views live, parsed from `TROTH_DATABASE_URL`."""

    kind: str  # "sqlite", "postgres" or "memory"
    path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Parse `sqlite:///path`, `postgresql://user:pass@host:port/db?schema=s` or `memory:`."""
        parts = urlsplit(url)
        if parts.scheme == "memory":
            return cls(kind="memory")
        if parts.scheme == "sqlite":
            path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
            if not path:
                raise SettingsError("TROTH_DATABASE_URL: sqlite URL needs a file path")
            return cls(kind="sqlite", path=path)
        if parts.scheme in ("postgresql", "postgres"):
            dbname = unquote(parts.path.lstrip("/"))
            if not parts.hostname or not dbname:
                raise SettingsError("TROTH_DATABASE_URL: postgresql URL needs a host and database")
            schema = parse_qs(parts.query).get("schema", [""])[0]
            try:
                port = parts.port or 5432
            except ValueError:
                raise SettingsError("TROTH_DATABASE_URL: invalid port") from None
            return cls(
                kind="postgres",
                host=parts.hostname,
                port=port,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                dbname=dbname,
                schema=schema,
            )
        raise SettingsError(
            "TROTH_DATABASE_URL must start with sqlite:///, postgresql:// or memory:"
        )

    def conninfo(self) -> str:
        """A libpq connection string (PostgreSQL only)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user or None,
            password=self.password or None,
            dbname=self.dbname,
        )

    def redacted(self) -> str:
        """A description safe to log: never the password."""
        if self.kind == "postgres":
            schema = f"?schema={self.schema}" if self.schema else ""
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{schema}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        return "memory:"


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a Troth process (see the README's table)."""

    database_url: str = DEFAULT_DATABASE_URL
    encryption_key: str | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 5
    db_connect_timeout: int = 5
    rate_limit: str = "100/second"
    web_workers: int = 2
    web_connections: int = 100
    read_wait_ms: int = 2000
    scheduler_tick_ms: int = 1000
    occurrence_interval_s: int = 60
    commitment_horizon_days: int = 2
    allow_private_targets: bool = False
    delivery_threads: int = 8
    share_key: str | None = None
    db_statement_timeout_ms: int = 10_000
    ready_max_lag: int = 10_000
    metrics_token: str | None = None
    metrics_port: int = 0
    metrics_dir: str | None = None
    log_format: str = "json"
    projector_batch_size: int = BATCH_SIZE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read `TROTH_*` variables; unset ones keep their defaults."""
        return cls(
            database_url=env.get("TROTH_DATABASE_URL", DEFAULT_DATABASE_URL),
            encryption_key=env.get("TROTH_ENCRYPTION_KEY") or None,
            admin_token=env.get("TROTH_ADMIN_TOKEN") or None,
            host=env.get("TROTH_HOST", "127.0.0.1"),
            port=_int(env, "TROTH_PORT", 8000),
            db_pool_size=_int(env, "TROTH_DB_POOL_SIZE", 5),
            db_connect_timeout=_int(env, "TROTH_DB_CONNECT_TIMEOUT", 5),
            rate_limit=env.get("TROTH_RATE_LIMIT", "100/second"),
            web_workers=_int(env, "TROTH_WEB_WORKERS", 2),
            web_connections=_int(env, "TROTH_WEB_CONNECTIONS", 100),
            read_wait_ms=_int(env, "TROTH_READ_WAIT_MS", 2000),
            scheduler_tick_ms=_int(env, "TROTH_SCHEDULER_TICK_MS", 1000),
            occurrence_interval_s=_int(env, "TROTH_OCCURRENCE_INTERVAL_S", 60),
            commitment_horizon_days=_int(env, "TROTH_COMMITMENT_HORIZON_DAYS", 2),
            allow_private_targets=_flag(env, "TROTH_ALLOW_PRIVATE_TARGETS"),
            delivery_threads=_int(env, "TROTH_DELIVERY_THREADS", 8),
            share_key=env.get("TROTH_SHARE_KEY") or None,
            db_statement_timeout_ms=_int(env, "TROTH_DB_STATEMENT_TIMEOUT_MS", 10_000),
            ready_max_lag=_int(env, "TROTH_READY_MAX_LAG", 10_000),
            metrics_token=env.get("TROTH_METRICS_TOKEN") or None,
            metrics_port=_int(env, "TROTH_METRICS_PORT", 0),
            # prometheus-client's own variable: gunicorn workers share counters through it.
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            log_format=_choice(env, "TROTH_LOG_FORMAT", ("json", "text"), "json"),
            projector_batch_size=_positive(env, "TROTH_PROJECTOR_BATCH_SIZE", BATCH_SIZE),
        )

    @property
    def database(self) -> Database:
        """The parsed database URL."""
        return Database.from_url(self.database_url)

    def eventsourcing_env(self, app_name: str, *, create_tables: bool = False) -> dict[str, str]:
        """The eventsourcing library's environment for an application, every key explicit.

        Keys carry the application's name as prefix because the library merges
        `os.environ` underneath and prefers prefixed keys: stray variables in the process
        environment (say `PERSISTENCE_MODULE`) can then never redirect the store.
        """
        db = self.database
        env = {"CREATE_TABLE": "y" if create_tables else "n"}
        if db.kind == "memory":
            env["PERSISTENCE_MODULE"] = "projections.popo:POPOLedgerFactory"
        elif db.kind == "sqlite":
            env["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
            env["APPLICATION_RECORDER_TOPIC"] = "projections.sqlite:SQLiteLedgerRecorder"
            env["SQLITE_DBNAME"] = db.path
            env["SQLITE_LOCK_TIMEOUT"] = "10"
        else:
            env.update(
                PERSISTENCE_MODULE="eventsourcing.postgres",
                APPLICATION_RECORDER_TOPIC="projections.postgres:PostgresLedgerRecorder",
                POSTGRES_DBNAME=db.dbname,
                POSTGRES_HOST=db.host,
                POSTGRES_PORT=str(db.port),
                POSTGRES_USER=db.user,
                POSTGRES_PASSWORD=db.password,
                POSTGRES_SCHEMA=db.schema or "public",
                POSTGRES_POOL_SIZE=str(self.db_pool_size),
                POSTGRES_CONNECT_TIMEOUT=str(self.db_connect_timeout),
                POSTGRES_LOCK_TIMEOUT=str(max(1, self.db_statement_timeout_ms // 1000)),
                POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT=str(
                    max(1, self.db_statement_timeout_ms // 1000)
                ),
            )
        if self.encryption_key:
            env.update(
                CIPHER_TOPIC="eventsourcing.cryptography:AESCipher",
                CIPHER_KEY=self.encryption_key,
                COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor",
            )
        else:
            env.update(CIPHER_TOPIC="", CIPHER_KEY="", COMPRESSOR_TOPIC="")
        prefix = app_name.upper() + "_"
        return {prefix + key: value for key, value in env.items()}

    def sqlite_directory(self) -> Path | None:
        """The folder the SQLite file lives in (created by `troth migrate`)."""
        db = self.database
        return Path(db.path).parent if db.kind == "sqlite" else None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, not {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, not {raw!r}")


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw
