"""The due-work store in SQL, shared by SQLite and PostgreSQL (all its SQL lives here).

The statements are plain enough to run unchanged on both (`ON CONFLICT` upserts, fire
times as integer microseconds since the epoch); a backend supplies only its connection,
its transaction and its parameter style.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from eventsourcing.persistence import IntegrityError

from domain.person import QuietHours
from projections.due_plan import DueItem, DueKind, DuePerson, DuePromise
from projections.due_work import (
    DUE_WORK_VIEW,
    CommitmentKey,
    DueChanges,
    DueTenant,
    DueWorkStore,
)

T = TypeVar("T")
CHUNK: Final = 500
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

TABLES: Final = {
    "position": "view TEXT NOT NULL PRIMARY KEY, position BIGINT NOT NULL",
    "promises": (
        "id TEXT NOT NULL PRIMARY KEY, tenant TEXT NOT NULL, key TEXT NOT NULL, "
        "promiser TEXT NOT NULL, promisee TEXT, title TEXT NOT NULL, due_at TEXT, "
        "reminders TEXT NOT NULL, planned_from TEXT NOT NULL, status TEXT NOT NULL, "
        "outcome_at TEXT"
    ),
    "people": (
        "id TEXT NOT NULL PRIMARY KEY, tenant TEXT NOT NULL, person TEXT NOT NULL, "
        "timezone TEXT NOT NULL, quiet_start TEXT, quiet_end TEXT"
    ),
    "tenants": "id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, lapse_after DOUBLE PRECISION",
    "items": (
        "tenant TEXT NOT NULL, message_id TEXT NOT NULL, promise TEXT NOT NULL, "
        "kind TEXT NOT NULL, fire_at BIGINT NOT NULL, person TEXT NOT NULL, data TEXT NOT NULL, "
        "PRIMARY KEY (tenant, message_id)"
    ),
    "commitments": (
        "tenant TEXT NOT NULL, key TEXT NOT NULL, is_active BOOLEAN NOT NULL, "
        "PRIMARY KEY (tenant, key)"
    ),
}
INDEXES: Final = {
    "promises_open": "promises (tenant, promiser, status)",
    "items_fire_at": "items (fire_at)",
    "items_promise": "items (tenant, promise)",
}
PROMISE_COLUMNS: Final = (
    "id, tenant, key, promiser, promisee, title, due_at, reminders, planned_from, status, "
    "outcome_at"
)
ITEM_COLUMNS: Final = "tenant, message_id, promise, kind, fire_at, person, data"


class SQLDueWorkStore(DueWorkStore):
    """The due-work tables `troth_due_*`; subclasses provide connections and transactions."""

    prefix = "troth_due_"
    placeholder = "%s"

    @abstractmethod
    def _transaction(self, work: Callable[[Any], T]) -> T:
        """Run `work(cursor)` in one transaction (rolled back if it raises)."""

    def _name(self, table: str) -> str:
        return self.prefix + table

    def _sql(self, statement: str) -> str:
        for table in TABLES:
            statement = statement.replace("{" + table + "}", self._name(table))
        return statement.replace("%s", self.placeholder)

    def create_tables(self) -> None:
        def create(cursor: Any) -> None:
            for table, columns in TABLES.items():
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {self._name(table)} ({columns})")
            for name, columns in INDEXES.items():
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS troth_due_{name} ON {self.prefix}{columns}"
                )

        self._transaction(create)

    def drop_tables(self) -> None:
        def drop(cursor: Any) -> None:
            for table in TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {self._name(table)}")

        self._transaction(drop)

    def position(self) -> int:
        rows = self._select("SELECT position FROM {position} WHERE view = %s", [DUE_WORK_VIEW])
        return int(rows[0][0]) if rows else 0

    def write(self, changes: DueChanges, position: int, *, previous: int) -> None:
        def apply(cursor: Any) -> None:
            # Compare-and-set on the position row: a second writer of the same batch finds
            # the position moved, changes no row and raises, which rolls everything back.
            cursor.execute(
                self._sql("UPDATE {position} SET position = %s WHERE view = %s AND position = %s"),
                (position, DUE_WORK_VIEW, previous),
            )
            if cursor.rowcount == 0 and previous == 0:
                cursor.execute(
                    self._sql(
                        "INSERT INTO {position} (view, position) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (DUE_WORK_VIEW, position),
                )
            if cursor.rowcount == 0 or position <= previous:
                msg = f"due work is not at position {previous}"
                raise IntegrityError(msg)
            self._write_rows(cursor, changes)

        self._transaction(apply)

    def _write_rows(self, cursor: Any, changes: DueChanges) -> None:
        many: list[tuple[str, list[tuple[Any, ...]]]] = [
            (
                _upsert("promises", PROMISE_COLUMNS, "id"),
                [_promise_values(p) for p in changes.promises.values()],
            ),
            (
                _upsert("people", "id, tenant, person, timezone, quiet_start, quiet_end", "id"),
                [_person_values(p) for p in changes.people.values()],
            ),
            (
                _upsert("tenants", "id, name, lapse_after", "id"),
                [
                    (t.aggregate_id, t.name, t.lapse_after.total_seconds())
                    for t in changes.tenants.values()
                ],
            ),
            (
                _upsert("commitments", "tenant, key, is_active", "tenant, key"),
                [(t, k, a) for (t, k), a in changes.commitments.items()],
            ),
            (
                "DELETE FROM {items} WHERE tenant = %s AND promise = %s",
                list(changes.plans.keys()),
            ),
            (
                _upsert("items", ITEM_COLUMNS, "tenant, message_id"),
                [_item_values(i) for items in changes.plans.values() for i in items],
            ),
        ]
        for statement, rows in many:
            if rows:
                cursor.executemany(self._sql(statement), rows)

    def promises(self, ids: Iterable[str]) -> dict[str, DuePromise]:
        query = f"SELECT {PROMISE_COLUMNS} FROM {{promises}}"  # noqa: S608
        rows = self._select_in(query, "id", list(ids))
        return {r[0]: _promise_row(r) for r in rows}

    def open_promises(self, tenant: str, promiser: str | None = None) -> list[DuePromise]:
        query = (
            f"SELECT {PROMISE_COLUMNS} FROM {{promises}} "  # noqa: S608
            "WHERE tenant = %s AND status = 'open' AND due_at IS NOT NULL"
        )
        params: list[Any] = [tenant]
        if promiser is not None:
            query += " AND promiser = %s"
            params.append(promiser)
        return [_promise_row(r) for r in self._select(query, params)]

    def people(self, ids: Iterable[str]) -> dict[str, DuePerson]:
        rows = self._select_in(
            "SELECT id, tenant, person, timezone, quiet_start, quiet_end FROM {people}",
            "id",
            list(ids),
        )
        return {r[0]: _person_row(r) for r in rows}

    def tenants(self, ids: Iterable[str]) -> dict[str, DueTenant]:
        rows = self._select_in("SELECT id, name, lapse_after FROM {tenants}", "id", list(ids))
        return {r[0]: DueTenant(r[0], r[1], timedelta(seconds=float(r[2]))) for r in rows}

    def due(self, now: datetime, limit: int) -> list[DueItem]:
        rows = self._select(
            f"SELECT {ITEM_COLUMNS} FROM {{items}} WHERE fire_at <= %s "  # noqa: S608
            "ORDER BY fire_at, tenant, message_id LIMIT %s",
            [_micros(now), limit],
        )
        return [_item_row(r) for r in rows]

    def pending(self, tenant: str, promise: str) -> list[DueItem]:
        rows = self._select(
            f"SELECT {ITEM_COLUMNS} FROM {{items}} WHERE tenant = %s AND promise = %s "  # noqa: S608
            "ORDER BY fire_at, message_id",
            [tenant, promise],
        )
        return [_item_row(r) for r in rows]

    def done(self, items: Sequence[DueItem]) -> None:
        # Only the fired version: an item planned again for another time meanwhile stays.
        rows = [(i.tenant, i.message_id, _micros(i.fire_at)) for i in items]
        statement = self._sql(
            "DELETE FROM {items} WHERE tenant = %s AND message_id = %s AND fire_at = %s"
        )
        if rows:
            self._transaction(lambda cursor: cursor.executemany(statement, rows))

    def active_commitments(self) -> list[CommitmentKey]:
        rows = self._select(
            "SELECT tenant, key FROM {commitments} WHERE is_active ORDER BY tenant, key", []
        )
        return [(r[0], r[1]) for r in rows]

    def _select(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        sql = self._sql(statement)

        def fetch(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())

        return self._transaction(fetch)

    def _select_in(self, statement: str, column: str, keys: list[str]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows.extend(self._select(f"{statement} WHERE {column} IN ({marks})", chunk))
        return rows


def _upsert(table: str, columns: str, key: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
    return (
        f"INSERT INTO {{{table}}} ({columns}) VALUES ({', '.join(['%s'] * len(names))}) "  # noqa: S608
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _micros(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def _from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def _text(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _promise_values(p: DuePromise) -> tuple[Any, ...]:
    leads = json.dumps([lead.total_seconds() for lead in p.reminders])
    return (
        p.aggregate_id, p.tenant, p.key, p.promiser, p.promisee, p.title, _text(p.due_at),
        leads, _text(p.planned_from), p.status, _text(p.outcome_at),
    )  # fmt: skip


def _promise_row(r: Sequence[Any]) -> DuePromise:
    planned_from = _instant(r[8])
    assert planned_from is not None  # noqa: S101  (NOT NULL column)
    return DuePromise(
        aggregate_id=r[0], tenant=r[1], key=r[2], promiser=r[3], promisee=r[4], title=r[5],
        due_at=_instant(r[6]), reminders=tuple(timedelta(seconds=s) for s in json.loads(r[7])),
        planned_from=planned_from, status=r[9], outcome_at=_instant(r[10]),
    )  # fmt: skip


def _person_values(p: DuePerson) -> tuple[Any, ...]:
    quiet = p.quiet_hours
    return (
        p.aggregate_id, p.tenant, p.person, p.timezone,
        quiet.start if quiet else None, quiet.end if quiet else None,
    )  # fmt: skip


def _person_row(r: Sequence[Any]) -> DuePerson:
    quiet = QuietHours(r[4], r[5]) if r[4] is not None and r[5] is not None else None
    return DuePerson(r[0], r[1], r[2], r[3], quiet)


def _item_values(i: DueItem) -> tuple[Any, ...]:
    data = json.dumps(i.data, sort_keys=True)
    return (i.tenant, i.message_id, i.promise, i.kind.value, _micros(i.fire_at), i.person, data)


def _item_row(r: Sequence[Any]) -> DueItem:
    return DueItem(
        fire_at=_from_micros(r[4]), tenant=r[0], message_id=r[1], kind=DueKind(r[3]),
        promise=r[2], person=r[5], data=json.loads(r[6]),
    )  # fmt: skip
