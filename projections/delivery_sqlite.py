"""The SQLite deliveries view (also the in-memory one, on `:memory:`): one connection, one lock."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from projections.deliveries import (
    AttemptOutcome,
    AttemptRecord,
    AttemptRow,
    Claim,
    DeliveryChanges,
    DeliveryRow,
    DeliveryState,
    DeliveryStore,
    SubscriptionRow,
    SubscriptionState,
)

BUSY_TIMEOUT: Final = 10.0
T = TypeVar("T")

SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS troth_delivery_tracking ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS troth_subscriptions ("
    "id TEXT PRIMARY KEY, tenant TEXT NOT NULL, subscription_id TEXT NOT NULL, "
    "url TEXT NOT NULL, types TEXT NOT NULL, description TEXT, state TEXT NOT NULL, "
    "created_at TEXT NOT NULL, disabled_reason TEXT, failing_since TEXT)",
    "CREATE INDEX IF NOT EXISTS troth_subscriptions_tenant "
    "ON troth_subscriptions (tenant, created_at)",
    "CREATE TABLE IF NOT EXISTS troth_messages ("
    "tenant TEXT NOT NULL, message_id TEXT NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL, "
    "body TEXT NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (tenant, message_id))",
    "CREATE TABLE IF NOT EXISTS troth_deliveries ("
    "subscription TEXT NOT NULL, message_id TEXT NOT NULL, tenant TEXT NOT NULL, "
    "state TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL, "
    "message_at TEXT NOT NULL, last_attempt_at TEXT, last_status INTEGER, "
    "PRIMARY KEY (subscription, message_id))",
    "CREATE INDEX IF NOT EXISTS troth_deliveries_due ON troth_deliveries (state, next_attempt_at)",
    "CREATE TABLE IF NOT EXISTS troth_delivery_attempts ("
    "sequence INTEGER PRIMARY KEY AUTOINCREMENT, subscription TEXT NOT NULL, "
    "message_id TEXT NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL, status INTEGER, "
    "latency_ms INTEGER NOT NULL, response_excerpt TEXT NOT NULL, error TEXT)",
    "CREATE INDEX IF NOT EXISTS troth_delivery_attempts_subscription "
    "ON troth_delivery_attempts (subscription, sequence)",
)
SUBSCRIPTION_COLUMNS: Final = (
    "id, tenant, subscription_id, url, types, description, state, created_at, "
    "disabled_reason, failing_since"
)
CLAIM_COLUMNS: Final = (
    "d.subscription, d.message_id, d.tenant, d.state, d.attempts, d.next_attempt_at, "
    "d.message_at, d.last_attempt_at, d.last_status, s.subscription_id, s.url, m.type, m.body, "
    "s.failing_since"
)
DUE: Final = (
    "FROM troth_deliveries AS d "
    "JOIN troth_subscriptions AS s ON s.id = d.subscription "
    "JOIN troth_messages AS m ON m.tenant = d.tenant AND m.message_id = d.message_id "
    "WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND s.state = 'active'"
)


def _text(value: datetime) -> str:
    # Fixed width, so text order is time order.
    return value.isoformat(timespec="microseconds")


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SQLiteDeliveryStore(DeliveryStore):
    """The deliveries view in SQLite tables beside the event store."""

    def __init__(self, path: str) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")

    def create_tables(self) -> None:
        self._transaction(lambda conn: [conn.execute(s) for s in SCHEMA])

    def position(self) -> int:
        with self._lock:
            return self._position()

    def write(self, changes: DeliveryChanges, position: int, *, previous: int) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            stored = self._position()
            if stored != previous or position <= stored:
                msg = f"deliveries view is at {stored}, not {previous}"
                raise IntegrityError(msg)
            conn.executemany(
                f"INSERT INTO troth_subscriptions ({SUBSCRIPTION_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                [
                    (
                        str(r.id),
                        r.tenant,
                        r.subscription_id,
                        r.url,
                        json.dumps(list(r.types)),
                        r.description,
                        r.state.value,
                        _text(r.created_at),
                        r.disabled_reason,
                        None,
                    )
                    for r in changes.subscriptions.values()
                ],
            )
            for row_id, change in changes.states.items():
                if change.state is SubscriptionState.ACTIVE:
                    conn.execute(
                        "UPDATE troth_subscriptions SET state = ?, disabled_reason = NULL, "
                        "failing_since = NULL WHERE id = ?",
                        (change.state.value, str(row_id)),
                    )
                else:
                    conn.execute(
                        "UPDATE troth_subscriptions SET state = ?, disabled_reason = ? "
                        "WHERE id = ? AND state != 'deleted'",
                        (change.state.value, change.reason, str(row_id)),
                    )
            conn.executemany(
                "INSERT INTO troth_messages (tenant, message_id, type, at, body, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (m.tenant, m.message_id, m.type, _text(m.at), m.body, _text(m.recorded_at))
                    for m in changes.messages
                ],
            )
            conn.executemany(
                "INSERT INTO troth_deliveries (subscription, message_id, tenant, state, "
                "attempts, next_attempt_at, message_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    (
                        str(d.subscription),
                        d.message_id,
                        d.tenant,
                        d.state.value,
                        d.attempts,
                        _text(d.next_attempt_at),
                        _text(d.message_at),
                    )
                    for d in changes.deliveries
                ],
            )
            conn.execute(
                "INSERT INTO troth_delivery_tracking (id, position) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET position = excluded.position",
                (position,),
            )

        self._transaction(apply)

    def subscriptions(self, tenant: str) -> list[SubscriptionRow]:
        rows = self._query(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM troth_subscriptions "  # noqa: S608
            "WHERE tenant = ? AND state != 'deleted' ORDER BY created_at, subscription_id",
            (tenant,),
        )
        return [_subscription(row) for row in rows]

    def claim(self, now: datetime, *, lease_until: datetime, limit: int) -> list[Claim]:
        def take(conn: sqlite3.Connection) -> list[Claim]:
            rows = conn.execute(
                f"SELECT {CLAIM_COLUMNS} {DUE} ORDER BY d.next_attempt_at LIMIT ?",
                (_text(now), limit),
            ).fetchall()
            conn.executemany(
                "UPDATE troth_deliveries SET next_attempt_at = ? "
                "WHERE subscription = ? AND message_id = ?",
                [(_text(lease_until), row[0], row[1]) for row in rows],
            )
            return [_claim(row) for row in rows]

        return self._transaction(take)

    def record(self, records: Sequence[AttemptRecord]) -> None:
        self._transaction(lambda conn: _record(conn, records))

    def attempts(
        self, subscription: UUID, *, before: int | None = None, limit: int = 50
    ) -> list[AttemptRow]:
        rows = self._query(
            "SELECT a.subscription, a.message_id, a.at, a.outcome, a.status, a.latency_ms, "
            "a.response_excerpt, a.error, COALESCE(m.type, ''), a.sequence "
            "FROM troth_delivery_attempts AS a "
            "JOIN troth_deliveries AS d "
            "ON d.subscription = a.subscription AND d.message_id = a.message_id "
            "LEFT JOIN troth_messages AS m ON m.tenant = d.tenant AND m.message_id = a.message_id "
            "WHERE a.subscription = ? AND a.sequence < ? ORDER BY a.sequence DESC LIMIT ?",
            (str(subscription), before if before is not None else 2**62, limit),
        )
        return [_attempt(row) for row in rows]

    def redeliver(self, subscription: UUID, message_id: str, *, now: datetime) -> bool:
        def apply(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE troth_deliveries SET state = 'pending', attempts = 0, "
                "next_attempt_at = ? WHERE subscription = ? AND message_id = ?",
                (_text(now), str(subscription), message_id),
            ).rowcount

        return self._transaction(apply) > 0

    def redeliver_failed(self, subscription: UUID, *, since: datetime, now: datetime) -> int:
        def apply(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE troth_deliveries SET state = 'pending', attempts = 0, "
                "next_attempt_at = ? WHERE subscription = ? AND state = 'failed' "
                "AND message_at >= ?",
                (_text(now), str(subscription), _text(since)),
            ).rowcount

        return self._transaction(apply)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _position(self) -> int:
        row = self._conn.execute(
            "SELECT position FROM troth_delivery_tracking WHERE id = 1"
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            # IMMEDIATE takes the write lock first: what is read inside cannot go stale.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            return result

    def _query(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._conn.execute(statement, params).fetchall()


def _record(conn: sqlite3.Connection, records: Sequence[AttemptRecord]) -> None:
    """Each attempt, its delivery's new state and its subscription's, a statement per kind."""
    conn.executemany(
        "INSERT INTO troth_delivery_attempts (subscription, message_id, at, outcome, "
        "status, latency_ms, response_excerpt, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                str(a.subscription),
                a.message_id,
                _text(a.at),
                a.outcome.value,
                a.status,
                a.latency_ms,
                a.response_excerpt,
                a.error,
            )
            for a in (r.attempt for r in records)
        ],
    )
    conn.executemany(
        "UPDATE troth_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
        "last_attempt_at = ?, last_status = ? WHERE subscription = ? AND message_id = ?",
        [
            (
                r.state.value,
                r.attempts,
                _text(r.next_attempt_at),
                _text(r.attempt.at),
                r.attempt.status,
                str(r.attempt.subscription),
                r.attempt.message_id,
            )
            for r in records
        ],
    )
    conn.executemany(
        "UPDATE troth_subscriptions SET failing_since = ? WHERE id = ?",
        [
            (
                None if r.failing_since is None else _text(r.failing_since),
                str(r.attempt.subscription),
            )
            for r in records
        ],
    )
    conn.executemany(
        "UPDATE troth_subscriptions SET state = 'disabled', disabled_reason = ? "
        "WHERE id = ? AND state = 'active'",
        [
            (r.disable_reason, str(r.attempt.subscription))
            for r in records
            if r.disable_reason is not None
        ],
    )


def _subscription(row: Sequence[Any]) -> SubscriptionRow:
    return SubscriptionRow(
        id=UUID(row[0]),
        tenant=row[1],
        subscription_id=row[2],
        url=row[3],
        types=tuple(json.loads(row[4])),
        description=row[5],
        state=SubscriptionState(row[6]),
        created_at=_instant(row[7]),
        disabled_reason=row[8],
        failing_since=_time(row[9]),
    )


def _claim(row: Sequence[Any]) -> Claim:
    return Claim(
        delivery=DeliveryRow(
            subscription=UUID(row[0]),
            message_id=row[1],
            tenant=row[2],
            state=DeliveryState(row[3]),
            attempts=row[4],
            next_attempt_at=_instant(row[5]),
            message_at=_instant(row[6]),
            last_attempt_at=_time(row[7]),
            last_status=row[8],
        ),
        tenant=row[2],
        subscription_id=row[9],
        url=row[10],
        message_type=row[11],
        body=row[12],
        failing_since=_time(row[13]),
    )


def _attempt(row: Sequence[Any]) -> AttemptRow:
    return AttemptRow(
        subscription=UUID(row[0]),
        message_id=row[1],
        at=_instant(row[2]),
        outcome=AttemptOutcome(row[3]),
        status=row[4],
        latency_ms=row[5],
        response_excerpt=row[6],
        error=row[7],
        message_type=row[8],
        sequence=row[9],
    )
