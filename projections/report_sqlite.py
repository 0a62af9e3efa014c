"""The SQLite report view store: its own connection to the event store's file, in WAL mode."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from projections.report_rows import policy_from_values, policy_values
from projections.scoring import DecayedSums, OutcomeKind
from projections.streaks import StreakState
from projections.trend import WeekBucket
from projections.views import (
    REPORTS_VIEW,
    OutcomeRow,
    PersonKey,
    PersonRow,
    PromiseKey,
    PromiseRow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    TenantRow,
    ViewChanges,
    WeekRow,
)

BUSY_TIMEOUT: Final = 10.0
"""Seconds to wait for another connection's write lock (the event store's or a projector's)."""

CHUNK: Final = 500
"""Keys per lookup statement: well under SQLite's bound-parameter limit."""


_SUBJECT: Final = ("tenant", "kind", "person", "other")
_SUBJECT_COLUMNS: Final = (
    "tenant TEXT NOT NULL, kind TEXT NOT NULL, person TEXT NOT NULL, other TEXT NOT NULL"
)
_COUNT_COLUMNS: Final = (
    "kept INTEGER NOT NULL, kept_late INTEGER NOT NULL, broken INTEGER NOT NULL, "
    "lapsed INTEGER NOT NULL, released INTEGER NOT NULL"
)
_SUMS_COLUMNS: Final = "t_ref TEXT, k REAL NOT NULL, n REAL NOT NULL"


@dataclass(frozen=True)
class _Table:
    """A table's name, column definitions, primary key and secondary indexes (name: columns)."""

    name: str
    definition: str
    key: tuple[str, ...]
    indexes: tuple[tuple[str, str], ...] = ()

    def suffixed(self, suffix: str) -> _Table:
        """The same table under another name (a view built aside for a swap)."""
        return replace(self, name=self.name + suffix)

    @property
    def index_names(self) -> list[str]:
        return [f"{self.name}_{suffix}" for suffix, _ in self.indexes]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.split()[0] for column in self.definition.split(", "))

    @property
    def create(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.name} ({self.definition}, "
            f"PRIMARY KEY ({', '.join(self.key)})) WITHOUT ROWID",
            *(
                f"CREATE INDEX IF NOT EXISTS {self.name}_{suffix} ON {self.name} ({columns})"
                for suffix, columns in self.indexes
            ),
        ]

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"  # noqa: S608

    @property
    def upsert(self) -> str:
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.columns if c not in self.key)
        return (
            f"INSERT INTO {self.name} ({', '.join(self.columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(self.columns))}) "
            f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"
        )

    @property
    def delete(self) -> str:
        where = " AND ".join(f"{c} = ?" for c in self.key)
        return f"DELETE FROM {self.name} WHERE {where}"  # noqa: S608

    def lookup(self, count: int) -> str:
        # Joining a VALUES list searches the primary key once per key; a row-value IN scans.
        values = ", ".join([f"({', '.join('?' * len(self.key))})"] * count)
        joined = " AND ".join(f"t.{c} = k.{c}" for c in self.key)
        return (
            f"WITH k ({', '.join(self.key)}) AS (VALUES {values}) "  # noqa: S608
            f"SELECT {', '.join('t.' + c for c in self.columns)} "
            f"FROM k JOIN {self.name} AS t ON {joined}"
        )


TRACKING: Final = _Table(
    "troth_tracking", "view TEXT NOT NULL, position INTEGER NOT NULL", ("view",)
)
PROMISES: Final = _Table(
    "troth_promises",
    "tenant TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, promiser TEXT NOT NULL, "
    "promisee TEXT, category TEXT, title TEXT NOT NULL, status TEXT NOT NULL, due_at TEXT, "
    "made_at TEXT NOT NULL, made_recorded_at TEXT NOT NULL, outcome_kind TEXT, outcome_at TEXT, "
    "outcome_position INTEGER, outcome_recorded_at TEXT, renegotiations INTEGER NOT NULL, "
    "position INTEGER NOT NULL",
    ("tenant", "key"),
    (
        ("id", "id"),
        ("promiser", "tenant, promiser, status, key"),
        ("pair", "tenant, promiser, promisee"),
        ("category", "tenant, promiser, category"),
    ),
)
OUTCOMES: Final = _Table(
    "troth_outcomes",
    "tenant TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL, promiser TEXT NOT NULL, "
    "promisee TEXT, category TEXT, kind TEXT NOT NULL, at TEXT NOT NULL, "
    "recorded_at TEXT NOT NULL, replaced_at TEXT",
    ("tenant", "key", "position"),
    (
        ("promiser", "tenant, promiser, at, position"),
        ("pair", "tenant, promiser, promisee, at, position"),
        ("category", "tenant, promiser, category, at, position"),
    ),
)
SUBJECTS: Final = _Table(
    "troth_subjects",
    f"{_SUBJECT_COLUMNS}, made INTEGER NOT NULL, {_COUNT_COLUMNS}, "
    f"renegotiated INTEGER NOT NULL, {_SUMS_COLUMNS}, streak TEXT NOT NULL, "
    "position INTEGER NOT NULL",
    _SUBJECT,
    (("person", "tenant, person"),),
)
WEEKS: Final = _Table(
    "troth_weeks",
    f"{_SUBJECT_COLUMNS}, week TEXT NOT NULL, {_COUNT_COLUMNS}, {_SUMS_COLUMNS}",
    (*_SUBJECT, "week"),
)
PEOPLE: Final = _Table(
    "troth_people",
    "id TEXT NOT NULL, tenant TEXT NOT NULL, person TEXT NOT NULL, timezone TEXT NOT NULL",
    ("id",),
)
TENANTS: Final = _Table(
    "troth_tenant_views", "id TEXT NOT NULL, name TEXT NOT NULL, policy TEXT NOT NULL", ("id",)
)
TABLES: Final = (TRACKING, PROMISES, OUTCOMES, SUBJECTS, WEEKS, PEOPLE, TENANTS)

_SUBJECT_FILTERS: Final = {
    "promiser": "tenant = ? AND promiser = ?",
    "pair": "tenant = ? AND promiser = ? AND promisee = ?",
    "category": "tenant = ? AND promiser = ? AND category = ?",
}


class SQLiteReportViewStore(ReportViewStore):
    """The report views in SQLite tables beside the event store (one connection, one lock)."""

    def __init__(self, path: str, *, suffix: str = "") -> None:
        self._path = path
        self._suffix = suffix
        self._tables = {t.name: t.suffixed(suffix) for t in TABLES}
        self._lock = threading.RLock()
        # Autocommit mode: every transaction below is an explicit BEGIN ... COMMIT.
        self._conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")

    def _t(self, table: _Table) -> _Table:
        return self._tables[table.name]

    @property
    def _all(self) -> list[_Table]:
        return list(self._tables.values())

    def aside(self, suffix: str) -> SQLiteReportViewStore:
        return SQLiteReportViewStore(self._path, suffix=suffix)

    def swap_in(self, aside: ReportViewStore) -> None:
        if not isinstance(aside, SQLiteReportViewStore) or aside._suffix == self._suffix:
            msg = "swap_in takes a store built aside by this store's aside()"
            raise TypeError(msg)
        statements: list[str] = []
        for table in TABLES:
            mine, theirs = self._t(table), aside._t(table)
            statements.append(f"DROP TABLE IF EXISTS {mine.name}")
            statements.extend(f"DROP INDEX IF EXISTS {name}" for name in theirs.index_names)
            statements.append(f"ALTER TABLE {theirs.name} RENAME TO {mine.name}")
            # Index names are global in SQLite and survive a rename: rebuild them by our names.
            statements.extend(mine.create[1:])
        with self._lock:
            self._transaction(lambda conn: [conn.execute(s) for s in statements])

    def create_tables(self) -> None:
        with self._lock:
            self._transaction(lambda conn: [conn.execute(s) for t in self._all for s in t.create])

    def drop_tables(self) -> None:
        statements = [f"DROP TABLE IF EXISTS {t.name}" for t in self._all]
        with self._lock:
            self._transaction(lambda conn: [conn.execute(s) for s in statements])

    def position(self, view: str = REPORTS_VIEW) -> int:
        with self._lock:
            return self._position(view)

    def write(
        self,
        changes: ViewChanges,
        position: int,
        view: str = REPORTS_VIEW,
        *,
        previous: int | None = None,
    ) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            stored = self._position(view)
            if position <= stored or previous not in (None, stored):
                msg = f"view {view!r} is at position {stored}, not before {position}"
                raise IntegrityError(msg)
            conn.executemany(
                self._t(PROMISES).upsert, map(_promise_values, changes.promises.values())
            )
            conn.executemany(
                self._t(OUTCOMES).upsert, map(_outcome_values, changes.outcomes.values())
            )
            conn.executemany(
                self._t(SUBJECTS).upsert, map(_subject_values, changes.subjects.values())
            )
            conn.executemany(self._t(WEEKS).upsert, map(_week_values, changes.weeks.values()))
            conn.executemany(
                self._t(WEEKS).delete,
                ((*_key_values(k), w.isoformat()) for k, w in changes.deleted_weeks),
            )
            conn.executemany(self._t(PEOPLE).upsert, map(_person_values, changes.people.values()))
            conn.executemany(self._t(TENANTS).upsert, map(_tenant_values, changes.tenants.values()))
            conn.execute(self._t(TRACKING).upsert, (view, position))

        with self._lock:
            self._transaction(apply)

    def promises(self, keys: Iterable[PromiseKey]) -> dict[PromiseKey, PromiseRow]:
        rows = map(_promise_row, self._lookup(PROMISES, list(keys)))
        return {(r.tenant, r.key): r for r in rows}

    def promises_by_id(self, ids: Iterable[UUID]) -> dict[UUID, PromiseRow]:
        found = self._query_in(PROMISES, "id", [str(i) for i in ids])
        return {r.aggregate_id: r for r in map(_promise_row, found)}

    def subjects(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, SubjectRow]:
        rows = map(_subject_row, self._lookup(SUBJECTS, [_key_values(k) for k in keys]))
        return {r.key: r for r in rows}

    def weeks(
        self, keys: Iterable[tuple[SubjectKey, date]]
    ) -> dict[tuple[SubjectKey, date], WeekRow]:
        wanted = [(*_key_values(k), w.isoformat()) for k, w in keys]
        return {(r.key, r.week): r for r in map(_week_row, self._lookup(WEEKS, wanted))}

    def people(self, ids: Iterable[UUID]) -> dict[UUID, PersonRow]:
        rows = map(_person_row, self._lookup(PEOPLE, [(str(i),) for i in ids]))
        return {r.aggregate_id: r for r in rows}

    def tenants(self, ids: Iterable[UUID]) -> dict[UUID, TenantRow]:
        rows = map(_tenant_row, self._lookup(TENANTS, [(str(i),) for i in ids]))
        return {r.aggregate_id: r for r in rows}

    def promiser_outcomes(self, promisers: Iterable[PersonKey]) -> list[OutcomeRow]:
        wanted = list(promisers)
        table = self._t(OUTCOMES)
        rows: list[Any] = []
        with self._lock:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                statement = _current_outcomes_of(table, len(chunk))
                params = [value for key in chunk for value in key]
                rows.extend(self._conn.execute(statement, params).fetchall())
        return list(map(_outcome_row, rows))

    def subject_outcomes(
        self, key: SubjectKey, *, current_only: bool = True, since: datetime | None = None
    ) -> list[OutcomeRow]:
        where, params = _subject_filter(key)
        if current_only:
            where += " AND replaced_at IS NULL"
        if since is not None:
            where, params = f"{where} AND at > ?", [*params, _text(since)]
        rows = self._query(
            f"{self._t(OUTCOMES).select} WHERE {where} ORDER BY at, position", params
        )
        return list(map(_outcome_row, rows))

    def subject_outcome_counts(
        self, key: SubjectKey, since: datetime, until: datetime
    ) -> dict[OutcomeKind, int]:
        where, params = _subject_filter(key)
        # Only our table name and fixed filters are formatted in; values are parameters.
        rows = self._query(
            f"SELECT kind, count(*) FROM {self._t(OUTCOMES).name} WHERE {where} "  # noqa: S608
            "AND replaced_at IS NULL AND at > ? AND at <= ? GROUP BY kind",
            [*params, _text(since), _text(until)],
        )
        return {OutcomeKind(kind): count for kind, count in rows}

    def subject_promises(self, key: SubjectKey, *, status: str | None = None) -> list[PromiseRow]:
        where, params = _subject_filter(key)
        if status is not None:
            where, params = f"{where} AND status = ?", [*params, status]
        order = "ORDER BY due_at IS NULL, due_at, key"
        return list(
            map(
                _promise_row,
                self._query(f"{self._t(PROMISES).select} WHERE {where} {order}", params),
            )
        )

    def subject_weeks(self, key: SubjectKey, first: date, last: date) -> list[WeekRow]:
        rows = self._query(
            f"{self._t(WEEKS).select} WHERE tenant = ? AND kind = ? AND person = ? AND other = ? "
            "AND week BETWEEN ? AND ? ORDER BY week",
            [*_key_values(key), first.isoformat(), last.isoformat()],
        )
        return list(map(_week_row, rows))

    def tenant_subjects(self, tenant: str, person: str | None = None) -> list[SubjectKey]:
        where, params = "tenant = ?", [tenant]
        if person is not None:
            where, params = f"{where} AND person = ?", [tenant, person]
        rows = self._query(
            f"SELECT {', '.join(_SUBJECT)} FROM {self._t(SUBJECTS).name} "  # noqa: S608
            f"WHERE {where} ORDER BY kind, person, other",
            params,
        )
        return [SubjectKey(*row) for row in rows]

    def list_promises(
        self,
        tenant: str,
        *,
        promiser: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[PromiseRow]:
        where, params = ["tenant = ?"], [tenant]
        for column, value in (
            ("promiser = ?", promiser),
            ("status = ?", status),
            ("key > ?", after),
        ):
            if value is not None:
                where.append(column)
                params.append(value)
        rows = self._query(
            f"{self._t(PROMISES).select} WHERE {' AND '.join(where)} ORDER BY key LIMIT ?",
            [*params, max(limit, 0)],
        )
        return list(map(_promise_row, rows))

    def list_people(
        self, tenant: str, *, after: str | None = None, limit: int = 50
    ) -> list[SubjectRow]:
        where, params = "tenant = ? AND kind = 'promiser'", [tenant]
        if after is not None:
            where, params = f"{where} AND person > ?", [tenant, after]
        rows = self._query(
            f"{self._t(SUBJECTS).select} WHERE {where} ORDER BY person LIMIT ?",
            [*params, max(limit, 0)],
        )
        return list(map(_subject_row, rows))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _position(self, view: str) -> int:
        row = self._conn.execute(f"{self._t(TRACKING).select} WHERE view = ?", (view,)).fetchone()
        return 0 if row is None else int(row[1])

    def _transaction(self, body: Callable[[sqlite3.Connection], object]) -> None:
        # IMMEDIATE takes the write lock first, so the position read inside cannot go stale.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            body(self._conn)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _query(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._conn.execute(statement, params).fetchall()

    def _query_in(self, table: _Table, column: str, values: Sequence[Any]) -> list[Any]:
        table = self._t(table)
        rows: list[Any] = []
        with self._lock:
            for start in range(0, len(values), CHUNK):
                chunk = values[start : start + CHUNK]
                marks = ", ".join("?" * len(chunk))
                statement = f"{table.select} WHERE {column} IN ({marks})"
                rows.extend(self._conn.execute(statement, chunk).fetchall())
        return rows

    def _lookup(self, table: _Table, keys: Sequence[Sequence[Any]]) -> list[Any]:
        table = self._t(table)  # callers name the base table; this store may be aside
        rows: list[Any] = []
        with self._lock:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                params = [value for key in chunk for value in key]
                rows.extend(self._conn.execute(table.lookup(len(chunk)), params).fetchall())
        return rows


def _current_outcomes_of(outcomes: _Table, count: int) -> str:
    """The current outcomes of `count` (tenant, promiser) pairs, passed as parameters."""
    values = ", ".join(["(?, ?)"] * count)
    return (
        f"WITH k (tenant, promiser) AS (VALUES {values}) "  # noqa: S608
        f"SELECT {', '.join('t.' + c for c in outcomes.columns)} FROM k "
        f"JOIN {outcomes.name} AS t ON t.tenant = k.tenant AND t.promiser = k.promiser "
        "WHERE t.replaced_at IS NULL"
    )


def _subject_filter(key: SubjectKey) -> tuple[str, list[Any]]:
    where = _SUBJECT_FILTERS.get(key.kind)
    if where is None:
        msg = f"unknown subject kind {key.kind!r}"
        raise ValueError(msg)
    params = [key.tenant, key.person] + ([key.other] if key.kind != "promiser" else [])
    return where, params


def _key_values(key: SubjectKey) -> tuple[str, str, str, str]:
    return (key.tenant, key.kind, key.person, key.other)


def _text(at: datetime) -> str:
    # Fixed-width UTC text sorts in time order, so ORDER BY and BETWEEN work on it.
    if at.tzinfo is None:
        msg = f"naive datetime {at.isoformat()} cannot be stored as an instant"
        raise ValueError(msg)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _text_or_none(at: datetime | None) -> str | None:
    return None if at is None else _text(at)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _instant_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _sums_values(sums: DecayedSums) -> tuple[str | None, float, float]:
    return (_text_or_none(sums.t_ref), sums.k, sums.n)


def _sums(t_ref: str | None, k: float, n: float) -> DecayedSums:
    return DecayedSums(_instant_or_none(t_ref), k, n)


def _promise_values(p: PromiseRow) -> tuple[Any, ...]:
    return (
        p.tenant, p.key, str(p.aggregate_id), p.promiser, p.promisee, p.category, p.title,
        p.status, _text_or_none(p.due_at), _text(p.made_at), _text(p.made_recorded_at),
        None if p.outcome_kind is None else p.outcome_kind.value, _text_or_none(p.outcome_at),
        p.outcome_position, _text_or_none(p.outcome_recorded_at), p.renegotiations, p.position,
    )  # fmt: skip


def _promise_row(r: Sequence[Any]) -> PromiseRow:
    return PromiseRow(
        aggregate_id=UUID(r[2]), tenant=r[0], key=r[1], promiser=r[3], promisee=r[4],
        category=r[5], title=r[6], status=r[7], due_at=_instant_or_none(r[8]),
        made_at=_instant(r[9]), made_recorded_at=_instant(r[10]),
        outcome_kind=None if r[11] is None else OutcomeKind(r[11]),
        outcome_at=_instant_or_none(r[12]), outcome_position=r[13],
        outcome_recorded_at=_instant_or_none(r[14]), renegotiations=r[15], position=r[16],
    )  # fmt: skip


def _outcome_values(o: OutcomeRow) -> tuple[Any, ...]:
    return (
        o.tenant, o.key, o.position, o.promiser, o.promisee, o.category, o.kind.value,
        _text(o.at), _text(o.recorded_at), _text_or_none(o.replaced_at),
    )  # fmt: skip


def _outcome_row(r: Sequence[Any]) -> OutcomeRow:
    return OutcomeRow(
        tenant=r[0], key=r[1], position=r[2], promiser=r[3], promisee=r[4], category=r[5],
        kind=OutcomeKind(r[6]), at=_instant(r[7]), recorded_at=_instant(r[8]),
        replaced_at=_instant_or_none(r[9]),
    )  # fmt: skip


def _subject_values(s: SubjectRow) -> tuple[Any, ...]:
    counts = (s.made, s.kept, s.kept_late, s.broken, s.lapsed, s.released, s.renegotiated)
    streak = s.streak.to_json()
    return (*_key_values(s.key), *counts, *_sums_values(s.sums), streak, s.position)


def _subject_row(r: Sequence[Any]) -> SubjectRow:
    return SubjectRow(
        SubjectKey(*r[0:4]), made=r[4], kept=r[5], kept_late=r[6], broken=r[7], lapsed=r[8],
        released=r[9], renegotiated=r[10], sums=_sums(*r[11:14]),
        streak=StreakState.from_dict(json.loads(r[14])), position=r[15],
    )  # fmt: skip


def _week_values(w: WeekRow) -> tuple[Any, ...]:
    b = w.bucket
    counts = (b.kept, b.kept_late, b.broken, b.lapsed, b.released)
    return (*_key_values(w.key), w.week.isoformat(), *counts, *_sums_values(b.sums))


def _week_row(r: Sequence[Any]) -> WeekRow:
    bucket = WeekBucket(
        kept=r[5], kept_late=r[6], broken=r[7], lapsed=r[8], released=r[9], sums=_sums(*r[10:13])
    )
    return WeekRow(SubjectKey(*r[0:4]), date.fromisoformat(r[4]), bucket)


def _person_values(p: PersonRow) -> tuple[Any, ...]:
    return (str(p.aggregate_id), p.tenant, p.person, p.timezone)


def _person_row(r: Sequence[Any]) -> PersonRow:
    return PersonRow(UUID(r[0]), r[1], r[2], r[3])


def _tenant_values(t: TenantRow) -> tuple[Any, ...]:
    policy = json.dumps(policy_values(t.policy), separators=(",", ":"), sort_keys=True)
    return (str(t.aggregate_id), t.name, policy)


def _tenant_row(r: Sequence[Any]) -> TenantRow:
    return TenantRow(UUID(r[0]), r[1], policy_from_values(json.loads(r[2])))
