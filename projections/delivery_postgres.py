"""The PostgreSQL deliveries view: claims use FOR UPDATE SKIP LOCKED, so workers never share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, LiteralString
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from psycopg.sql import SQL, Composed, Identifier

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
from projections.pools import open_pool

SCHEMA: Final[tuple[LiteralString, ...]] = (
    "CREATE TABLE IF NOT EXISTS {schema}.troth_delivery_tracking ("
    "id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {schema}.troth_subscriptions ("
    'id uuid PRIMARY KEY, tenant text COLLATE "C" NOT NULL, subscription_id text NOT NULL, '
    "url text NOT NULL, types text[] NOT NULL, description text, state text NOT NULL, "
    "created_at timestamptz NOT NULL, disabled_reason text, failing_since timestamptz)",
    "CREATE INDEX IF NOT EXISTS troth_subscriptions_tenant "
    "ON {schema}.troth_subscriptions (tenant, created_at)",
    "CREATE TABLE IF NOT EXISTS {schema}.troth_messages ("
    'tenant text COLLATE "C" NOT NULL, message_id text COLLATE "C" NOT NULL, '
    "type text NOT NULL, at timestamptz NOT NULL, body text NOT NULL, "
    "recorded_at timestamptz NOT NULL, PRIMARY KEY (tenant, message_id))",
    "CREATE TABLE IF NOT EXISTS {schema}.troth_deliveries ("
    'subscription uuid NOT NULL, message_id text COLLATE "C" NOT NULL, '
    'tenant text COLLATE "C" NOT NULL, state text NOT NULL, attempts integer NOT NULL, '
    "next_attempt_at timestamptz NOT NULL, message_at timestamptz NOT NULL, "
    "last_attempt_at timestamptz, last_status integer, PRIMARY KEY (subscription, message_id))",
    "CREATE INDEX IF NOT EXISTS troth_deliveries_due "
    "ON {schema}.troth_deliveries (next_attempt_at) WHERE state = 'pending'",
    "CREATE TABLE IF NOT EXISTS {schema}.troth_delivery_attempts ("
    "sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription uuid NOT NULL, "
    "message_id text NOT NULL, at timestamptz NOT NULL, outcome text NOT NULL, "
    "status integer, latency_ms integer NOT NULL, response_excerpt text NOT NULL, error text)",
    "CREATE INDEX IF NOT EXISTS troth_delivery_attempts_subscription "
    "ON {schema}.troth_delivery_attempts (subscription, sequence)",
)
SUBSCRIPTION_COLUMNS: Final = (
    "id, tenant, subscription_id, url, types, description, state, created_at, "
    "disabled_reason, failing_since"
)


class PostgresDeliveryStore(DeliveryStore):
    """The deliveries view in PostgreSQL tables (a small pool of its own)."""

    def __init__(
        self, conninfo: str, schema: str = "public", pool_size: int = 5, connect_timeout: float = 5
    ) -> None:
        self._schema = schema
        self._pool = open_pool(
            conninfo,
            name="troth-deliveries",
            size=pool_size,
            connect_timeout=connect_timeout,
            options="-c TimeZone=UTC",
        )

    def _sql(self, template: LiteralString) -> Composed:
        return SQL(template).format(schema=Identifier(self._schema))

    def create_tables(self) -> None:
        with self._pool.connection() as conn:
            for statement in SCHEMA:
                conn.execute(self._sql(statement))

    def position(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                self._sql("SELECT position FROM {schema}.troth_delivery_tracking WHERE id = 1")
            ).fetchone()
        return 0 if row is None else int(row[0])

    def write(self, changes: DeliveryChanges, position: int, *, previous: int) -> None:
        with self._pool.connection() as conn, conn.transaction():
            # The row lock serialises projectors; the compare keeps a stale batch out.
            row = conn.execute(
                self._sql(
                    "SELECT position FROM {schema}.troth_delivery_tracking WHERE id = 1 FOR UPDATE"
                )
            ).fetchone()
            stored = 0 if row is None else int(row[0])
            if stored != previous or position <= stored:
                msg = f"deliveries view is at {stored}, not {previous}"
                raise IntegrityError(msg)
            with conn.cursor() as cur:
                cur.executemany(
                    self._sql(
                        "INSERT INTO {schema}.troth_subscriptions (" + SUBSCRIPTION_COLUMNS + ") "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL) "
                        "ON CONFLICT (id) DO NOTHING"
                    ),
                    [
                        (
                            r.id,
                            r.tenant,
                            r.subscription_id,
                            r.url,
                            list(r.types),
                            r.description,
                            r.state.value,
                            r.created_at,
                            r.disabled_reason,
                        )
                        for r in changes.subscriptions.values()
                    ],
                )
                for row_id, change in changes.states.items():
                    if change.state is SubscriptionState.ACTIVE:
                        cur.execute(
                            self._sql(
                                "UPDATE {schema}.troth_subscriptions SET state = %s, "
                                "disabled_reason = NULL, failing_since = NULL WHERE id = %s"
                            ),
                            (change.state.value, row_id),
                        )
                    else:
                        cur.execute(
                            self._sql(
                                "UPDATE {schema}.troth_subscriptions SET state = %s, "
                                "disabled_reason = %s WHERE id = %s AND state != 'deleted'"
                            ),
                            (change.state.value, change.reason, row_id),
                        )
                cur.executemany(
                    self._sql(
                        "INSERT INTO {schema}.troth_messages "
                        "(tenant, message_id, type, at, body, recorded_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ),
                    [
                        (m.tenant, m.message_id, m.type, m.at, m.body, m.recorded_at)
                        for m in changes.messages
                    ],
                )
                cur.executemany(
                    self._sql(
                        "INSERT INTO {schema}.troth_deliveries (subscription, message_id, tenant, "
                        "state, attempts, next_attempt_at, message_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ),
                    [
                        (
                            d.subscription,
                            d.message_id,
                            d.tenant,
                            d.state.value,
                            d.attempts,
                            d.next_attempt_at,
                            d.message_at,
                        )
                        for d in changes.deliveries
                    ],
                )
                cur.execute(
                    self._sql(
                        "INSERT INTO {schema}.troth_delivery_tracking (id, position) "
                        "VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position"
                    ),
                    (position,),
                )

    def subscriptions(self, tenant: str) -> list[SubscriptionRow]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT " + SUBSCRIPTION_COLUMNS + " FROM {schema}.troth_subscriptions "  # noqa: S608
                    "WHERE tenant = %s AND state != 'deleted' ORDER BY created_at, subscription_id"
                ),
                (tenant,),
            ).fetchall()
        return [_subscription(row) for row in rows]

    def claim(self, now: datetime, *, lease_until: datetime, limit: int) -> list[Claim]:
        # SKIP LOCKED lets concurrent workers take disjoint rows; moving next_attempt_at to the
        # lease end in the same transaction hides the rows once the locks are released.
        statement = self._sql(
            "WITH due AS ("
            "SELECT d.subscription, d.message_id FROM {schema}.troth_deliveries AS d "
            "JOIN {schema}.troth_subscriptions AS s ON s.id = d.subscription "
            "WHERE d.state = 'pending' AND d.next_attempt_at <= %s AND s.state = 'active' "
            "ORDER BY d.next_attempt_at LIMIT %s FOR UPDATE OF d SKIP LOCKED), "
            "taken AS ("
            "UPDATE {schema}.troth_deliveries AS d SET next_attempt_at = %s FROM due "
            "WHERE d.subscription = due.subscription AND d.message_id = due.message_id "
            "RETURNING d.subscription, d.message_id, d.tenant, d.state, d.attempts, "
            "d.message_at, d.last_attempt_at, d.last_status) "
            "SELECT t.subscription, t.message_id, t.tenant, t.state, t.attempts, t.message_at, "
            "t.last_attempt_at, t.last_status, s.subscription_id, s.url, m.type, m.body, "
            "s.failing_since FROM taken AS t "
            "JOIN {schema}.troth_subscriptions AS s ON s.id = t.subscription "
            "JOIN {schema}.troth_messages AS m "
            "ON m.tenant = t.tenant AND m.message_id = t.message_id"
        )
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(statement, (now, limit, lease_until)).fetchall()
        return [_claim(row, now) for row in rows]

    def record(self, records: Sequence[AttemptRecord]) -> None:
        # One statement per kind of change, for the whole batch: psycopg's executemany sends
        # each in one pipeline, instead of a round trip per attempt and statement.
        attempts = [r.attempt for r in records]
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO {schema}.troth_delivery_attempts (subscription, message_id, "
                    "at, outcome, status, latency_ms, response_excerpt, error) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [
                    (
                        a.subscription,
                        a.message_id,
                        a.at,
                        a.outcome.value,
                        a.status,
                        a.latency_ms,
                        a.response_excerpt,
                        a.error,
                    )
                    for a in attempts
                ],
            )
            cur.executemany(
                self._sql(
                    "UPDATE {schema}.troth_deliveries SET state = %s, attempts = %s, "
                    "next_attempt_at = %s, last_attempt_at = %s, last_status = %s "
                    "WHERE subscription = %s AND message_id = %s"
                ),
                [
                    (
                        r.state.value,
                        r.attempts,
                        r.next_attempt_at,
                        r.attempt.at,
                        r.attempt.status,
                        r.attempt.subscription,
                        r.attempt.message_id,
                    )
                    for r in records
                ],
            )
            cur.executemany(
                self._sql(
                    "UPDATE {schema}.troth_subscriptions SET failing_since = %s WHERE id = %s"
                ),
                [(r.failing_since, r.attempt.subscription) for r in records],
            )
            cur.executemany(
                self._sql(
                    "UPDATE {schema}.troth_subscriptions SET state = 'disabled', "
                    "disabled_reason = %s WHERE id = %s AND state = 'active'"
                ),
                [
                    (r.disable_reason, r.attempt.subscription)
                    for r in records
                    if r.disable_reason is not None
                ],
            )

    def attempts(
        self, subscription: UUID, *, before: int | None = None, limit: int = 50
    ) -> list[AttemptRow]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                self._sql(
                    "SELECT a.subscription, a.message_id, a.at, a.outcome, a.status, "
                    "a.latency_ms, a.response_excerpt, a.error, COALESCE(m.type, ''), a.sequence "
                    "FROM {schema}.troth_delivery_attempts AS a "
                    "JOIN {schema}.troth_deliveries AS d "
                    "ON d.subscription = a.subscription AND d.message_id = a.message_id "
                    "LEFT JOIN {schema}.troth_messages AS m "
                    "ON m.tenant = d.tenant AND m.message_id = a.message_id "
                    "WHERE a.subscription = %s AND a.sequence < %s "
                    "ORDER BY a.sequence DESC LIMIT %s"
                ),
                (subscription, before if before is not None else 2**62, limit),
            ).fetchall()
        return [_attempt(row) for row in rows]

    def redeliver(self, subscription: UUID, message_id: str, *, now: datetime) -> bool:
        with self._pool.connection() as conn:
            cursor = conn.execute(
                self._sql(
                    "UPDATE {schema}.troth_deliveries SET state = 'pending', attempts = 0, "
                    "next_attempt_at = %s WHERE subscription = %s AND message_id = %s"
                ),
                (now, subscription, message_id),
            )
            return cursor.rowcount > 0

    def redeliver_failed(self, subscription: UUID, *, since: datetime, now: datetime) -> int:
        with self._pool.connection() as conn:
            cursor = conn.execute(
                self._sql(
                    "UPDATE {schema}.troth_deliveries SET state = 'pending', attempts = 0, "
                    "next_attempt_at = %s WHERE subscription = %s AND state = 'failed' "
                    "AND message_at >= %s"
                ),
                (now, subscription, since),
            )
            return int(cursor.rowcount)

    def close(self) -> None:
        self._pool.close()


def _subscription(row: Sequence[Any]) -> SubscriptionRow:
    return SubscriptionRow(
        id=row[0],
        tenant=row[1],
        subscription_id=row[2],
        url=row[3],
        types=tuple(row[4]),
        description=row[5],
        state=SubscriptionState(row[6]),
        created_at=row[7],
        disabled_reason=row[8],
        failing_since=row[9],
    )


def _claim(row: Sequence[Any], now: datetime) -> Claim:
    return Claim(
        delivery=DeliveryRow(
            subscription=row[0],
            message_id=row[1],
            tenant=row[2],
            state=DeliveryState(row[3]),
            attempts=row[4],
            next_attempt_at=now,
            message_at=row[5],
            last_attempt_at=row[6],
            last_status=row[7],
        ),
        tenant=row[2],
        subscription_id=row[8],
        url=row[9],
        message_type=row[10],
        body=row[11],
        failing_since=row[12],
    )


def _attempt(row: Sequence[Any]) -> AttemptRow:
    return AttemptRow(
        subscription=row[0],
        message_id=row[1],
        at=row[2],
        outcome=AttemptOutcome(row[3]),
        status=row[4],
        latency_ms=row[5],
        response_excerpt=row[6],
        error=row[7],
        message_type=row[8],
        sequence=row[9],
    )
