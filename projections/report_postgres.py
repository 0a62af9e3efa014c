"""The PostgreSQL report view store: a connection pool, one transaction per batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Final, LiteralString
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError
from psycopg import Connection, IsolationLevel
from psycopg.sql import SQL, Composable, Composed, Identifier
from psycopg.types.json import Jsonb

from projections.pools import open_pool
from projections.report_rows import policy_from_values, policy_values
from projections.scoring import DecayedSums, OutcomeKind
from projections.streaks import StreakState
from projections.trend import WeekBucket
from projections.views import (
    REPORTS_VIEW,
    CurrentRows,
    OutcomeRow,
    PersonKey,
    PersonRow,
    PromiseKey,
    PromiseRow,
    RecentWindow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    TenantRow,
    ViewChanges,
    WeekRow,
    add_counts,
)

# Identity columns use the "C" collation so ORDER BY and keyset pages follow code points, as
# in SQLite and in memory, whatever the database's default collation.
_SUBJECT: Final = ("tenant", "kind", "person", "other")
_SUBJECT_COLUMNS: Final = (
    'tenant text COLLATE "C" NOT NULL, kind text COLLATE "C" NOT NULL, '
    'person text COLLATE "C" NOT NULL, other text COLLATE "C" NOT NULL'
)
_COUNT_COLUMNS: Final = (
    "kept integer NOT NULL, kept_late integer NOT NULL, broken integer NOT NULL, "
    "lapsed integer NOT NULL, released integer NOT NULL"
)
_SUMS_COLUMNS: Final = "t_ref timestamptz, k double precision NOT NULL, n double precision NOT NULL"


@dataclass(frozen=True)
class _Table:
    """A table's name, column definitions, primary key and secondary indexes (name: columns)."""

    name: str
    definition: LiteralString
    key: tuple[str, ...]
    indexes: tuple[tuple[str, LiteralString], ...] = ()

    def suffixed(self, suffix: str) -> _Table:
        """The same table under another name (a view built aside for a swap)."""
        return replace(self, name=self.name + suffix)

    @property
    def index_names(self) -> list[str]:
        return [f"{self.name}_pkey", *(f"{self.name}_{suffix}" for suffix, _ in self.indexes)]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.split()[0] for column in self.definition.split(", "))

    @property
    def types(self) -> list[str]:
        """The columns' types, as COPY's binary format needs them named."""
        return [
            "double precision" if rest.startswith("double precision") else rest.split()[0]
            for rest in (column.split(maxsplit=1)[1] for column in self.definition.split(", "))
        ]

    def create(self, schema: str) -> list[Composed]:
        table = Identifier(schema, self.name)
        return [
            SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
                table, SQL(self.definition), _names(self.key)
            ),
            *(
                SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    Identifier(f"{self.name}_{suffix}"), table, SQL(columns)
                )
                for suffix, columns in self.indexes
            ),
        ]

    def select(self, schema: str, where: Composable) -> Composed:
        return SQL("SELECT {} FROM {} WHERE {}").format(
            _names(self.columns), Identifier(schema, self.name), where
        )

    def upsert(self, schema: str) -> Composed:
        updates = SQL(", ").join(
            SQL("{0} = EXCLUDED.{0}").format(Identifier(c))
            for c in self.columns
            if c not in self.key
        )
        return SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
            Identifier(schema, self.name),
            _names(self.columns),
            SQL(", ").join([SQL("%s")] * len(self.columns)),
            _names(self.key),
            updates,
        )

    def staged_upsert(self, schema: str) -> tuple[Composed, Composed, Composed]:
        """Statements to upsert many rows through COPY: create the session's staging table (if
        missing; emptied at each commit), copy the rows into it, upsert them all at once."""
        staging = Identifier(f"{self.name}_staging")
        updates = SQL(", ").join(
            SQL("{0} = EXCLUDED.{0}").format(Identifier(c))
            for c in self.columns
            if c not in self.key
        )
        return (
            SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                staging, Identifier(schema, self.name)
            ),
            SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(staging, _names(self.columns)),
            # In key order, the rows go into the primary key's pages one after the other
            # instead of all over the index (the upserts took an eighth less time).
            SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {} "
                "ON CONFLICT ({}) DO UPDATE SET {}"
            ).format(
                Identifier(schema, self.name),
                _names(self.columns),
                _names(self.columns),
                staging,
                _names(self.key),
                _names(self.key),
                updates,
            ),
        )

    def delete(self, schema: str) -> Composed:
        where = SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in self.key)
        return SQL("DELETE FROM {} WHERE {}").format(Identifier(schema, self.name), where)

    def lookup(self, schema: str) -> Composed:
        """The rows among keys passed as one array per key column (one statement per batch)."""
        if len(self.key) == 1:
            return self.select(schema, SQL("{} = ANY(%s)").format(Identifier(self.key[0])))
        # ANY per column would match the cross product of the lists; unnest pairs them up.
        types = dict(column.split()[:2] for column in self.definition.split(", "))
        arrays = SQL(", ").join(SQL("%s::{}[]").format(SQL(types[c])) for c in self.key)
        return SQL("SELECT {} FROM {} AS t JOIN unnest({}) AS k ({}) USING ({})").format(
            SQL(", ").join(Identifier("t", c) for c in self.columns),
            Identifier(schema, self.name),
            arrays,
            _names(self.key),
            _names(self.key),
        )


TRACKING: Final = _Table(
    "troth_tracking", 'view text COLLATE "C" NOT NULL, position bigint NOT NULL', ("view",)
)
PROMISES: Final = _Table(
    "troth_promises",
    'tenant text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, id uuid NOT NULL, '
    'promiser text COLLATE "C" NOT NULL, promisee text COLLATE "C", category text COLLATE "C", '
    'title text NOT NULL, status text COLLATE "C" NOT NULL, due_at timestamptz, '
    "made_at timestamptz NOT NULL, made_recorded_at timestamptz NOT NULL, outcome_kind text, "
    "outcome_at timestamptz, outcome_position bigint, outcome_recorded_at timestamptz, "
    "renegotiations integer NOT NULL, position bigint NOT NULL",
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
    'tenant text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, position bigint NOT NULL, '
    'promiser text COLLATE "C" NOT NULL, promisee text COLLATE "C", category text COLLATE "C", '
    "kind text NOT NULL, at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, "
    "replaced_at timestamptz",
    ("tenant", "key", "position"),
    (
        ("promiser", "tenant, promiser, at, position"),
        ("pair", "tenant, promiser, promisee, at, position"),
        ("category", "tenant, promiser, category, at, position"),
    ),
)
SUBJECTS: Final = _Table(
    "troth_subjects",
    f"{_SUBJECT_COLUMNS}, made integer NOT NULL, {_COUNT_COLUMNS}, "
    f"renegotiated integer NOT NULL, {_SUMS_COLUMNS}, streak jsonb NOT NULL, "
    "position bigint NOT NULL",
    _SUBJECT,
    (("person", "tenant, person"),),
)
WEEKS: Final = _Table(
    "troth_weeks",
    f"{_SUBJECT_COLUMNS}, week date NOT NULL, {_COUNT_COLUMNS}, {_SUMS_COLUMNS}",
    (*_SUBJECT, "week"),
)
PEOPLE: Final = _Table(
    "troth_people",
    'id uuid NOT NULL, tenant text COLLATE "C" NOT NULL, person text COLLATE "C" NOT NULL, '
    "timezone text NOT NULL",
    ("id",),
)
TENANTS: Final = _Table(
    "troth_tenant_views", "id uuid NOT NULL, name text NOT NULL, policy jsonb NOT NULL", ("id",)
)
TABLES: Final = (TRACKING, PROMISES, OUTCOMES, SUBJECTS, WEEKS, PEOPLE, TENANTS)

_SUBJECT_FILTERS: Final = {
    "promiser": SQL("tenant = %s AND promiser = %s"),
    "pair": SQL("tenant = %s AND promiser = %s AND promisee = %s"),
    "category": SQL("tenant = %s AND promiser = %s AND category = %s"),
}
# A subject's own rows (subject and week rows), by its key's values.
_SUBJECT_KEY: Final = SQL("tenant = %s AND kind = %s AND person = %s AND other = %s")
# A subject's current outcomes per kind with outcome time in (%s, %s]: a report's recent tally.
_RECENT_COUNTS: Final = SQL(
    "SELECT kind, count(*) AS n FROM {outcomes} WHERE {where} AND replaced_at IS NULL "
    "AND at > %s AND at <= %s GROUP BY kind"
)
# A subject's outcome counts summed over its week rows after a week (see `RecentWindow`).
_RECENT_WEEKS: Final = SQL(
    "SELECT json_build_array(sum(kept), sum(kept_late), sum(broken), sum(lapsed), sum(released)) "
    "FROM {weeks} WHERE {key} AND week > %s"
)
# Where the person's, the tenant's and the JSON columns start in a current report's row.
_CURRENT_AT: Final = (
    len(SUBJECTS.columns),
    len(SUBJECTS.columns) + len(PEOPLE.columns),
    len(SUBJECTS.columns) + len(PEOPLE.columns) + len(TENANTS.columns),
)


class PostgresReportViewStore(ReportViewStore):
    """The report views in PostgreSQL tables in `schema`, written one batch per transaction."""

    def __init__(
        self,
        conninfo: str,
        schema: str = "public",
        pool_size: int = 5,
        connect_timeout: float = 5,
        *,
        suffix: str = "",
        statement_timeout_ms: int = 0,
    ) -> None:
        self._schema = schema
        self._options = (conninfo, schema, pool_size, connect_timeout)
        self._suffix = suffix
        self._tables = {t.name: t.suffixed(suffix) for t in TABLES}
        self._statements: dict[tuple[Any, ...], bytes] = {}
        self._held = threading.local()  # the connection of this thread's `reading()`, if any
        # Sessions in UTC, so every timestamptz reads back with the UTC time zone. Autocommit,
        # so a single read costs one round trip instead of three (BEGIN, SELECT, COMMIT);
        # every multi-statement use opens an explicit transaction.
        self._pool = open_pool(
            conninfo,
            name="troth-report-views",
            size=pool_size,
            connect_timeout=connect_timeout,
            options=f"-c TimeZone=UTC -c statement_timeout={statement_timeout_ms}",
            autocommit=True,
            # Waiting for a free connection is bounded like connecting.
            wait_timeout=connect_timeout,
        )

    @property
    def schema(self) -> str:
        """The schema the view tables are in."""
        return self._schema

    def _t(self, table: _Table) -> _Table:
        return self._tables[table.name]

    @property
    def _all(self) -> list[_Table]:
        return list(self._tables.values())

    def aside(self, suffix: str) -> PostgresReportViewStore:
        conninfo, schema, _, timeout = self._options
        return PostgresReportViewStore(conninfo, schema, 2, timeout, suffix=suffix)

    def swap_in(self, aside: ReportViewStore) -> None:
        if not isinstance(aside, PostgresReportViewStore) or aside._suffix == self._suffix:
            msg = "swap_in takes a store built aside by this store's aside()"
            raise TypeError(msg)
        schema = self._schema
        statements: list[Composed] = []
        for table in TABLES:
            mine, theirs = self._t(table), aside._t(table)
            statements.append(SQL("DROP TABLE IF EXISTS {}").format(Identifier(schema, mine.name)))
            statements.append(
                SQL("ALTER TABLE {} RENAME TO {}").format(
                    Identifier(schema, theirs.name), Identifier(mine.name)
                )
            )
            # Index (and primary key) names must be free for the next rebuild's tables.
            for old, new in zip(theirs.index_names, mine.index_names, strict=True):
                statements.append(
                    SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                        Identifier(schema, old), Identifier(new)
                    )
                )
        aside.analyze()
        # DDL is transactional in PostgreSQL: readers see the old tables or the new ones.
        with self._pool.connection() as conn, conn.transaction():
            for statement in statements:
                conn.execute(statement)

    def analyze(self) -> None:
        """Gather the view tables' planner statistics. Tables filled in one go (a rebuild, a
        bulk load) have none until autovacuum gets to them, and without them a report's reads
        pick the wrong index (4 ms instead of 0.1)."""
        with self._pool.connection() as conn:
            for table in self._all:
                conn.execute(SQL("ANALYZE {}").format(Identifier(self._schema, table.name)))

    def create_tables(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            for table in self._all:
                for statement in table.create(self._schema):
                    conn.execute(statement)

    def drop_tables(self) -> None:
        tables = SQL(", ").join(Identifier(self._schema, t.name) for t in self._all)
        with self._pool.connection() as conn:
            conn.execute(SQL("DROP TABLE IF EXISTS {}").format(tables))

    def position(self, view: str = REPORTS_VIEW) -> int:
        rows = self._query(self._t(TRACKING).select(self._schema, SQL("view = %s")), [view])
        return int(rows[0][1]) if rows else 0

    def write(
        self,
        changes: ViewChanges,
        position: int,
        view: str = REPORTS_VIEW,
        *,
        previous: int | None = None,
    ) -> None:
        schema, table = self._schema, Identifier(self._schema, self._t(TRACKING).name)
        advance = SQL(
            "UPDATE {} SET position = %s WHERE view = %s AND position < %s "
            "AND (%s::bigint IS NULL OR position = %s::bigint)"
        )
        start = SQL("INSERT INTO {} (view, position) VALUES (%s, %s) ON CONFLICT DO NOTHING")
        upserts: list[tuple[_Table, Iterable[Sequence[Any]]]] = [
            (PROMISES, map(_promise_values, changes.promises.values())),
            (OUTCOMES, map(_outcome_values, changes.outcomes.values())),
            (SUBJECTS, map(_subject_values, changes.subjects.values())),
            (WEEKS, map(_week_values, changes.weeks.values())),
            (PEOPLE, map(_person_values, changes.people.values())),
            (TENANTS, map(_tenant_values, changes.tenants.values())),
        ]
        deleted_weeks = [(*_key_values(k), w) for k, w in changes.deleted_weeks]
        if position <= 0:
            msg = f"view {view!r} cannot be set to position {position}: positions start at 1"
            raise IntegrityError(msg)
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # The guarded update takes the tracking row's lock: a concurrent writer of the same
            # view waits here, then finds the position moved and changes no row. Raising inside
            # the transaction rolls it back, so a rejected batch writes nothing.
            cursor.execute(advance.format(table), (position, view, position, previous, previous))
            if cursor.rowcount == 0 and previous in (None, 0):
                cursor.execute(start.format(table), (view, position))
            if cursor.rowcount == 0:
                msg = f"view {view!r} is already at or past position {position}"
                raise IntegrityError(msg)
            for base, rows in upserts:
                values = list(rows)
                if not values:
                    continue
                # One COPY and one INSERT per table: a batch writes thousands of rows, and
                # row-by-row statements (even pipelined) made the write half the batch's time.
                create, copy, upsert = self._t(base).staged_upsert(schema)
                cursor.execute(create)
                with cursor.copy(copy) as staged:
                    # Binary: numbers, instants and ids are sent as they are in memory, not
                    # formatted as text and escaped (the larger part of a write's own time).
                    staged.set_types(base.types)
                    for value in values:
                        staged.write_row(value)
                cursor.execute(upsert)
            if deleted_weeks:
                cursor.executemany(self._t(WEEKS).delete(schema), deleted_weeks)

    def promises(self, keys: Iterable[PromiseKey]) -> dict[PromiseKey, PromiseRow]:
        rows = map(_promise_row, self._lookup(PROMISES, list(keys)))
        return {(r.tenant, r.key): r for r in rows}

    def promises_by_id(self, ids: Iterable[UUID]) -> dict[UUID, PromiseRow]:
        wanted = list(ids)
        if not wanted:
            return {}
        statement = self._t(PROMISES).select(self._schema, SQL("id = ANY(%s)"))
        return {r.aggregate_id: r for r in map(_promise_row, self._query(statement, [wanted]))}

    def subjects(self, keys: Iterable[SubjectKey]) -> dict[SubjectKey, SubjectRow]:
        rows = map(_subject_row, self._lookup(SUBJECTS, [_key_values(k) for k in keys]))
        return {r.key: r for r in rows}

    def weeks(
        self, keys: Iterable[tuple[SubjectKey, date]]
    ) -> dict[tuple[SubjectKey, date], WeekRow]:
        wanted = [(*_key_values(k), w) for k, w in keys]
        return {(r.key, r.week): r for r in map(_week_row, self._lookup(WEEKS, wanted))}

    def people(self, ids: Iterable[UUID]) -> dict[UUID, PersonRow]:
        rows = map(_person_row, self._lookup(PEOPLE, [(i,) for i in ids]))
        return {r.aggregate_id: r for r in rows}

    def tenants(self, ids: Iterable[UUID]) -> dict[UUID, TenantRow]:
        rows = map(_tenant_row, self._lookup(TENANTS, [(i,) for i in ids]))
        return {r.aggregate_id: r for r in rows}

    def promiser_outcomes(self, promisers: Iterable[PersonKey]) -> list[OutcomeRow]:
        wanted = list(promisers)
        if not wanted:
            return []
        table = self._t(OUTCOMES)
        statement = SQL(
            "SELECT {} FROM {} AS t JOIN unnest(%s::text[], %s::text[]) AS k (tenant, promiser) "
            "USING (tenant, promiser) WHERE t.replaced_at IS NULL"
        ).format(
            SQL(", ").join(Identifier("t", c) for c in table.columns),
            Identifier(self._schema, table.name),
        )
        tenants, people = [list(column) for column in zip(*wanted, strict=True)]
        return list(map(_outcome_row, self._query(statement, [tenants, people])))

    def subject_outcomes(
        self, key: SubjectKey, *, current_only: bool = True, since: datetime | None = None
    ) -> list[OutcomeRow]:
        where, params = _subject_filter(key)
        if current_only:
            where = SQL("{} AND replaced_at IS NULL").format(where)
        if since is not None:
            where, params = SQL("{} AND at > %s").format(where), [*params, since]
        statement = SQL("{} ORDER BY at, position").format(
            self._t(OUTCOMES).select(self._schema, where)
        )
        return list(map(_outcome_row, self._query(statement, params)))

    def subject_outcome_counts(
        self, key: SubjectKey, since: datetime, until: datetime
    ) -> dict[OutcomeKind, int]:
        where, params = _subject_filter(key)
        statement = self._compiled(
            ("outcome_counts", key.kind),
            lambda: _RECENT_COUNTS.format(
                outcomes=Identifier(self._schema, self._t(OUTCOMES).name), where=where
            ),
        )
        return _counts(self._query(statement, [*params, since, until]))

    def subject_promises(self, key: SubjectKey, *, status: str | None = None) -> list[PromiseRow]:
        where, params = _subject_filter(key)
        if status is not None:
            where, params = SQL("{} AND status = %s").format(where), [*params, status]
        statement = self._compiled(
            ("promises", key.kind, status is not None),
            lambda: SQL("{} ORDER BY due_at NULLS LAST, key").format(
                self._t(PROMISES).select(self._schema, where)
            ),
        )
        return list(map(_promise_row, self._query(statement, params)))

    def subject_weeks(self, key: SubjectKey, first: date, last: date) -> list[WeekRow]:
        where = SQL("{} AND week BETWEEN %s AND %s").format(_SUBJECT_KEY)
        statement = self._compiled(
            ("weeks",),
            lambda: SQL("{} ORDER BY week").format(self._t(WEEKS).select(self._schema, where)),
        )
        return list(map(_week_row, self._query(statement, [*_key_values(key), first, last])))

    def current_rows(
        self,
        key: SubjectKey,
        *,
        person: UUID,
        tenant: UUID,
        weeks: tuple[date, date],
        recent: RecentWindow,
    ) -> CurrentRows:
        if getattr(self._held, "conn", None) is not None:
            return super().current_rows(
                key, person=person, tenant=tenant, weeks=weeks, recent=recent
            )
        where, params = _subject_filter(key)
        statement = self._compiled(("current", key.kind), lambda: self._current_statement(where))
        arguments = [
            *params,
            *_key_values(key),
            *weeks,
            *params,
            recent.since,
            recent.rows_until,
            *_key_values(key),
            recent.weeks_after,  # None: `week > NULL` matches no week row
            *_key_values(key),
            person,
            tenant,
        ]
        # One statement is one snapshot and one round trip, with no transaction around it:
        # as six pipelined reads in a REPEATABLE READ transaction, a report cost three
        # times as much CPU in psycopg alone (a report's largest cost).
        with self._pool.connection() as conn:
            row = conn.execute(statement, arguments).fetchone()
        if row is None:  # the statement always returns its one row
            msg = "the current report statement returned no row"
            raise RuntimeError(msg)
        subject, person_at, tenant_at = _CURRENT_AT
        promises, week_rows, counts, week_counts = row[tenant_at:]
        tally = _counts(counts or ())
        add_counts(tally, week_counts)
        return CurrentRows(
            subject=None if row[0] is None else _subject_row(row[:subject]),
            person=None if row[subject] is None else _person_row(row[subject:person_at]),
            tenant=None if row[person_at] is None else _tenant_row(row[person_at:tenant_at]),
            open_promises=[_promise_row(_promise_from_json(r)) for r in promises or ()],
            weeks=[_week_row(_week_from_json(r)) for r in week_rows or ()],
            recent=tally,
        )

    def _current_statement(self, where: Composable) -> Composed:
        """The one statement a current report reads (see `current_rows`): the subject,
        person and tenant rows side by side, and the open promises, the weeks and the recent
        counts as JSON arrays of rows (one value each, so they fit in the same row), then
        the counts of the recent weeks' rows."""

        def rows(table: _Table) -> Composed:
            return SQL("json_build_array({})").format(_names(table.columns))

        def qualified(alias: str, table: _Table) -> Composed:
            return SQL(", ").join(Identifier(alias, c) for c in table.columns)

        def name(table: _Table) -> Identifier:
            return Identifier(self._schema, self._t(table).name)

        return SQL(
            "SELECT {subject}, {person}, {tenant}, "
            "(SELECT json_agg({promise} ORDER BY due_at NULLS LAST, key) FROM {promises} "
            "WHERE {where} AND status = 'open'), "
            "(SELECT json_agg({week} ORDER BY week) FROM {weeks} "
            "WHERE {key} AND week BETWEEN %s AND %s), "
            "(SELECT json_agg(json_build_array(kind, n)) FROM ({counts}) AS counts), "
            "({week_counts}) "
            "FROM (VALUES (1)) AS one "
            "LEFT JOIN {subjects} AS s ON s.tenant = %s AND s.kind = %s AND s.person = %s "
            "AND s.other = %s "
            "LEFT JOIN {people} AS p ON p.id = %s "
            "LEFT JOIN {tenants} AS t ON t.id = %s"
        ).format(
            subject=qualified("s", SUBJECTS),
            person=qualified("p", PEOPLE),
            tenant=qualified("t", TENANTS),
            promise=rows(PROMISES),
            promises=name(PROMISES),
            week=rows(WEEKS),
            weeks=name(WEEKS),
            counts=_RECENT_COUNTS.format(outcomes=name(OUTCOMES), where=where),
            week_counts=_RECENT_WEEKS.format(weeks=name(WEEKS), key=_SUBJECT_KEY),
            subjects=name(SUBJECTS),
            people=name(PEOPLE),
            tenants=name(TENANTS),
            where=where,
            key=_SUBJECT_KEY,
        )

    def _compiled(self, name: tuple[Any, ...], build: Callable[[], Composed]) -> bytes:
        """A statement's text, composed once per store: composing it each time cost a
        report as much as one of its reads."""
        statement = self._statements.get(name)
        if statement is None:
            statement = self._statements[name] = build().as_bytes(None)
        return statement

    def tenant_subjects(self, tenant: str, person: str | None = None) -> list[SubjectKey]:
        where, params = SQL("tenant = %s"), [tenant]
        if person is not None:
            where, params = SQL("tenant = %s AND person = %s"), [tenant, person]
        statement = SQL("SELECT {} FROM {} WHERE {} ORDER BY kind, person, other").format(
            _names(_SUBJECT), Identifier(self._schema, self._t(SUBJECTS).name), where
        )
        return [SubjectKey(*row) for row in self._query(statement, params)]

    def list_promises(
        self,
        tenant: str,
        *,
        promiser: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[PromiseRow]:
        where, params = [SQL("tenant = %s")], [tenant]
        for clause, value in (
            (SQL("promiser = %s"), promiser),
            (SQL("status = %s"), status),
            (SQL("key > %s"), after),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        select = self._t(PROMISES).select(self._schema, SQL(" AND ").join(where))
        statement = SQL("{} ORDER BY key LIMIT %s").format(select)
        return list(map(_promise_row, self._query(statement, [*params, max(limit, 0)])))

    def list_people(
        self, tenant: str, *, after: str | None = None, limit: int = 50
    ) -> list[SubjectRow]:
        where, params = SQL("tenant = %s AND kind = 'promiser'"), [tenant]
        if after is not None:
            where, params = (
                SQL("tenant = %s AND kind = 'promiser' AND person > %s"),
                [tenant, after],
            )
        statement = SQL("{} ORDER BY person LIMIT %s").format(
            self._t(SUBJECTS).select(self._schema, where)
        )
        return list(map(_subject_row, self._query(statement, [*params, max(limit, 0)])))

    @contextmanager
    def reading(self) -> Iterator[None]:
        if getattr(self._held, "conn", None) is not None:
            yield
            return
        # One connection and one read-only REPEATABLE READ transaction for all the reads of a
        # report: a batch the projector commits meanwhile shows entirely or not at all, and
        # the pool's liveness check, BEGIN and COMMIT are paid once instead of once per read.
        with self._pool.connection() as conn:
            conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
            self._held.conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._held.conn = None
                # A broken connection refuses the reset; the pool discards it anyway.
                with suppress(psycopg.Error):
                    conn.isolation_level, conn.read_only = None, None

    def close(self) -> None:
        self._pool.close()

    def _query(self, statement: Composed | bytes, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        held: Connection[tuple[Any, ...]] | None = getattr(self._held, "conn", None)
        if held is not None:
            return held.execute(statement, params).fetchall()
        with self._pool.connection() as conn:
            return conn.execute(statement, params).fetchall()

    def _lookup(self, table: _Table, keys: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if not keys:
            return []
        columns = [list(column) for column in zip(*keys, strict=True)]
        # Callers name the base table; this store may be aside.
        statement = self._compiled(
            ("lookup", table.name), lambda: self._t(table).lookup(self._schema)
        )
        return self._query(statement, columns)


def _counts(rows: Iterable[tuple[Any, ...]]) -> dict[OutcomeKind, int]:
    return {OutcomeKind(kind): count for kind, count in rows}


def _names(columns: Iterable[str]) -> Composed:
    return SQL(", ").join(map(Identifier, columns))


def _subject_filter(key: SubjectKey) -> tuple[Composable, list[Any]]:
    where = _SUBJECT_FILTERS.get(key.kind)
    if where is None:
        msg = f"unknown subject kind {key.kind!r}"
        raise ValueError(msg)
    params = [key.tenant, key.person] + ([key.other] if key.kind != "promiser" else [])
    return where, params


def _key_values(key: SubjectKey) -> tuple[str, str, str, str]:
    return (key.tenant, key.kind, key.person, key.other)


def _promise_values(p: PromiseRow) -> tuple[Any, ...]:
    return (
        p.tenant, p.key, p.aggregate_id, p.promiser, p.promisee, p.category, p.title, p.status,
        p.due_at, p.made_at, p.made_recorded_at,
        None if p.outcome_kind is None else p.outcome_kind.value, p.outcome_at,
        p.outcome_position, p.outcome_recorded_at, p.renegotiations, p.position,
    )  # fmt: skip


def _promise_row(r: Sequence[Any]) -> PromiseRow:
    return PromiseRow(
        aggregate_id=r[2], tenant=r[0], key=r[1], promiser=r[3], promisee=r[4], category=r[5],
        title=r[6], status=r[7], due_at=r[8], made_at=r[9], made_recorded_at=r[10],
        outcome_kind=None if r[11] is None else OutcomeKind(r[11]), outcome_at=r[12],
        outcome_position=r[13], outcome_recorded_at=r[14], renegotiations=r[15],
        position=r[16],
    )  # fmt: skip


def _promise_from_json(r: Sequence[Any]) -> list[Any]:
    """A promise row read as a JSON array, with its id and instants as the columns give."""
    values = list(r)
    values[2] = UUID(values[2])
    for at in (8, 9, 10, 12, 14):
        values[at] = _instant(values[at])
    return values


def _week_from_json(r: Sequence[Any]) -> list[Any]:
    """A week row read as a JSON array, with its date and instant as the columns give."""
    values = list(r)
    values[4] = date.fromisoformat(values[4])
    values[10] = _instant(values[10])
    return values


def _instant(value: str | None) -> datetime | None:
    # The sessions run in UTC, so JSON gives every instant with its +00:00 offset.
    return None if value is None else datetime.fromisoformat(value)


def _outcome_values(o: OutcomeRow) -> tuple[Any, ...]:
    return (
        o.tenant, o.key, o.position, o.promiser, o.promisee, o.category, o.kind.value, o.at,
        o.recorded_at, o.replaced_at,
    )  # fmt: skip


def _outcome_row(r: Sequence[Any]) -> OutcomeRow:
    return OutcomeRow(
        tenant=r[0], key=r[1], position=r[2], promiser=r[3], promisee=r[4], category=r[5],
        kind=OutcomeKind(r[6]), at=r[7], recorded_at=r[8], replaced_at=r[9],
    )  # fmt: skip


def _subject_values(s: SubjectRow) -> tuple[Any, ...]:
    counts = (s.made, s.kept, s.kept_late, s.broken, s.lapsed, s.released, s.renegotiated)
    sums = (s.sums.t_ref, s.sums.k, s.sums.n)
    # Already JSON text: `dumps=str` sends it as it is.
    streak = Jsonb(s.streak.to_json(), dumps=str)
    return (*_key_values(s.key), *counts, *sums, streak, s.position)


def _subject_row(r: Sequence[Any]) -> SubjectRow:
    return SubjectRow(
        SubjectKey(*r[0:4]), made=r[4], kept=r[5], kept_late=r[6], broken=r[7], lapsed=r[8],
        released=r[9], renegotiated=r[10], sums=DecayedSums(*r[11:14]),
        streak=StreakState.from_dict(r[14]), position=r[15],
    )  # fmt: skip


def _week_values(w: WeekRow) -> tuple[Any, ...]:
    b = w.bucket
    counts = (b.kept, b.kept_late, b.broken, b.lapsed, b.released)
    return (*_key_values(w.key), w.week, *counts, b.sums.t_ref, b.sums.k, b.sums.n)


def _week_row(r: Sequence[Any]) -> WeekRow:
    bucket = WeekBucket(
        kept=r[5], kept_late=r[6], broken=r[7], lapsed=r[8], released=r[9],
        sums=DecayedSums(*r[10:13]),
    )  # fmt: skip
    return WeekRow(SubjectKey(*r[0:4]), r[4], bucket)


def _person_values(p: PersonRow) -> tuple[Any, ...]:
    return (p.aggregate_id, p.tenant, p.person, p.timezone)


def _person_row(r: Sequence[Any]) -> PersonRow:
    return PersonRow(r[0], r[1], r[2], r[3])


def _tenant_values(t: TenantRow) -> tuple[Any, ...]:
    return (t.aggregate_id, t.name, Jsonb(policy_values(t.policy)))


def _tenant_row(r: Sequence[Any]) -> TenantRow:
    return TenantRow(r[0], r[1], policy_from_values(r[2]))
