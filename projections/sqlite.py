"""SQLite implementations: the Ledger's recorder with receipts (and, later, the views)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from domain.receipts import Receipt
from projections.receipt_rows import receipt_from_row, receipt_rows

RECEIPTS_TABLE = "troth_receipts"
RECEIPT_COLUMNS = "tenant, key, request_hash, status, answer, position, recorded_at"


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus receipts stored in the events' transaction."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {RECEIPTS_TABLE} ("
            "tenant TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, "
            "status INTEGER NOT NULL, answer TEXT NOT NULL, position INTEGER NOT NULL, "
            "recorded_at TEXT NOT NULL, PRIMARY KEY (tenant, key))",
            f"CREATE INDEX IF NOT EXISTS {RECEIPTS_TABLE}_recorded_at "
            f"ON {RECEIPTS_TABLE} (recorded_at)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs) or []
        receipts: Sequence[Receipt] = kwargs.get("receipts", ())
        if receipts:
            stored = [(s.originator_id, s.originator_version) for s in stored_events]
            c.executemany(
                f"INSERT INTO {RECEIPTS_TABLE} ({RECEIPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                receipt_rows(receipts, stored, ids),
            )
        return ids

    def select_receipts(self, tenant: str, keys: Sequence[str]) -> dict[str, Receipt]:
        """The stored receipts among `keys`."""
        if not keys:
            return {}
        found: dict[str, Receipt] = {}
        with self.datastore.transaction(commit=False) as c:
            # Chunks keep under SQLite's bound-parameter limit for 10,000-line batches.
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                c.execute(
                    f"SELECT {RECEIPT_COLUMNS} FROM {RECEIPTS_TABLE} "
                    f"WHERE tenant = ? AND key IN ({','.join('?' * len(chunk))})",
                    [tenant, *chunk],
                )
                for row in c.fetchall():
                    receipt = receipt_from_row(tuple(row))
                    found[receipt.key] = receipt
        return found

    def insert_receipts(self, receipts: Sequence[Receipt]) -> None:
        """Store receipts for answers that recorded no event."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
            newest = c.fetchone()[0] or 0
            c.executemany(
                f"INSERT INTO {RECEIPTS_TABLE} ({RECEIPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                receipt_rows(receipts, newest=newest),
            )

    def select_event_streams(self, originator_ids: Sequence[UUID]) -> Sequence[StoredEvent]:
        """The stored events of many aggregates, by originator then version."""
        found: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(originator_ids), 500):
                chunk = [oid.hex for oid in originator_ids[start : start + 500]]
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY originator_id, originator_version",
                    chunk,
                )
                found.extend(
                    StoredEvent(
                        originator_id=UUID(row[0]),
                        originator_version=row[1],
                        topic=row[2],
                        state=row[3],
                    )
                    for row in c.fetchall()
                )
        return found

    def purge_receipts(self, before: datetime) -> int:
        """Delete receipts recorded before `before`."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {RECEIPTS_TABLE} WHERE recorded_at < ?", (before.isoformat(),))
            return int(c.sqlite_cursor.rowcount)
