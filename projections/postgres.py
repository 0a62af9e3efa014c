"""PostgreSQL implementations: the Ledger's recorder with receipts (and, later, the views)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.receipts import Receipt
from projections.pools import recover_soon
from projections.receipt_rows import receipt_answer, receipt_from_row, receipt_rows

RECEIPT_COLUMNS = SQL("tenant, key, request_hash, status, answer, position, recorded_at")


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, plus receipts stored in the events' transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        recover_soon(datastore.pool)
        self.receipts_table = events_table_name.removesuffix("_events") + "_receipts"
        self.sql_create_statements.extend(
            [
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {schema}.{receipts} ("
                    "tenant text NOT NULL, key text NOT NULL, request_hash text NOT NULL, "
                    "status smallint NOT NULL, answer text NOT NULL, position bigint NOT NULL, "
                    "recorded_at timestamptz NOT NULL, PRIMARY KEY (tenant, key))"
                ),
                self._sql(
                    "CREATE INDEX IF NOT EXISTS {receipts_index} "
                    "ON {schema}.{receipts} (recorded_at)"
                ),
            ]
        )
        # The library sends events as an array of a composite type, which psycopg dumps as
        # escaped text in Python (a fifth of a large batch's time); one typed array per
        # column says the same with the plain array dumpers. Same rows, same order.
        self.insert_events_by_column_statement = self._sql(
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        )
        self.insert_receipts_statement = self._sql(
            "INSERT INTO {schema}.{receipts} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        # Receipts stored with events take the notification id of the last event they
        # answer for (or, answering for none, the newest id: the table lock makes that this
        # transaction's). Computed by the database, the rows need no ids back first, so
        # they go to the server with the events and one round trip syncs both.
        self.insert_receipts_with_events_statement = self._sql(
            "INSERT INTO {schema}.{receipts} ({columns}) "
            "SELECT r.tenant, r.key, r.request_hash, r.status, r.answer, "
            "COALESCE((SELECT e.notification_id FROM {schema}.{events} e "
            "WHERE e.originator_id = r.originator_id "
            "AND e.originator_version = r.originator_version), "
            "(SELECT MAX(notification_id) FROM {schema}.{events})), r.recorded_at "
            "FROM unnest(%b::text[], %b::text[], %b::text[], %b::smallint[], %b::text[], "
            "%b::{id_type}[], %b::bigint[], %b::timestamptz[]) "
            "AS r(tenant, key, request_hash, status, answer, originator_id, "
            "originator_version, recorded_at)"
        )

    def _sql(self, template: str) -> Composed:
        return SQL(template).format(
            schema=Identifier(self.datastore.schema),
            receipts=Identifier(self.receipts_table),
            receipts_index=Identifier(self.receipts_table + "_recorded_at"),
            events=Identifier(self.events_table_name),
            columns=RECEIPT_COLUMNS,
            id_type=SQL(self.datastore.originator_id_type),
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert (lock, notify, events, receipts) in one round trip."""
        # The library's transaction block in pipeline mode syncs before and after its
        # COMMIT, each sync a round trip with the table lock held, which every writer
        # waits for; BEGIN and COMMIT sent in the same pipeline sync once (a third less
        # time per transaction, measured).
        if not stored_events:
            return cast(Sequence[int] | None, super().insert_events(stored_events, **kwargs))
        with self.datastore.get_connection() as conn:
            curs = conn.cursor()
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    conn.execute("COMMIT")
            except psycopg.Error:
                # The server skipped the rest of the pipeline and left the transaction
                # aborted; nothing of it is stored. End it before the pool takes it back.
                conn.rollback()
                raise
            return [int(row["notification_id"]) for row in curs.fetchall()]

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # As the library's: lock (insert order = commit order), notify, insert.
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_by_column_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        if receipts:
            # Another cursor, so the events' ids stay readable from `curs`. Sent in the
            # events' pipeline before COMMIT: a reused receipt key fails the transaction,
            # which is then rolled back whole.
            last = [r.events[-1] if r.events else (None, None) for r in receipts]
            curs.connection.cursor().execute(
                self.insert_receipts_with_events_statement,
                (
                    [r.tenant for r in receipts],
                    [r.key for r in receipts],
                    [r.request_hash for r in receipts],
                    [r.status for r in receipts],
                    [receipt_answer(r) for r in receipts],
                    [oid for oid, _ in last],
                    [version for _, version in last],
                    [r.recorded_at for r in receipts],
                ),
                prepare=True,
            )

    def select_receipts(self, tenant: str, keys: Sequence[str]) -> dict[str, Receipt]:
        """The stored receipts among `keys`."""
        if not keys:
            return {}
        statement = self._sql(
            "SELECT {columns} FROM {schema}.{receipts} WHERE tenant = %s AND key = ANY(%s)"
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (tenant, list(keys)), prepare=True)
            rows = [tuple(row.values()) for row in curs.fetchall()]
        return {r.key: r for r in map(receipt_from_row, rows)}

    def insert_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Store receipts for answers that recorded no event."""
        newest_statement = self._sql("SELECT MAX(notification_id) AS newest FROM {schema}.{events}")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(newest_statement)
            row = curs.fetchone()
            newest = int(row["newest"] or 0) if row else 0
            curs.executemany(self.insert_receipts_statement, receipt_rows(receipts, newest=newest))

    def select_event_streams(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]:
        """The stored events of many aggregates, by originator then version."""
        statement = self._sql(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(originator_ids),))
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def purge_receipts(self, before: datetime) -> int:
        """Delete receipts recorded before `before`."""
        statement = self._sql("DELETE FROM {schema}.{receipts} WHERE recorded_at < %s")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(statement, (before,))
            return int(curs.rowcount)
