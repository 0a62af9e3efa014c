"""PostgreSQL implementations: the Ledger's recorder with receipts (and, later, the views)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from domain.receipts import Receipt
from projections.receipt_rows import receipt_from_row, receipt_rows

RECEIPT_COLUMNS = SQL("tenant, key, request_hash, status, answer, position, recorded_at")


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, plus receipts stored in the events' transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
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
        self.insert_receipts_statement = self._sql(
            "INSERT INTO {schema}.{receipts} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )

    def _sql(self, template: str) -> Composed:
        return SQL(template).format(
            schema=Identifier(self.datastore.schema),
            receipts=Identifier(self.receipts_table),
            receipts_index=Identifier(self.receipts_table + "_recorded_at"),
            events=Identifier(self.events_table_name),
            columns=RECEIPT_COLUMNS,
        )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or []
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        if receipts:
            stored = [(s.originator_id, s.originator_version) for s in stored_events]
            # A nested pipeline block syncs on exit, so a reused receipt key raises here,
            # inside the events' transaction, and the library rolls all of it back.
            with curs.connection.pipeline():
                curs.executemany(
                    self.insert_receipts_statement, receipt_rows(receipts, stored, ids)
                )
        return ids

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
