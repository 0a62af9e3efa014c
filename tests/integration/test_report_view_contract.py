"""The report view contract, run against every store: in memory, SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from psycopg import sql

from domain.policy import ScoringPolicy
from projections.report_popo import POPOReportViewStore
from projections.report_postgres import PostgresReportViewStore
from projections.report_sqlite import SQLiteReportViewStore
from projections.scoring import DecayedSums, OutcomeKind
from projections.streaks import StreakState
from projections.trend import WeekBucket
from projections.views import (
    INSTANT,
    OutcomeRow,
    PersonRow,
    PromiseRow,
    RecentWindow,
    ReportViewStore,
    SubjectKey,
    SubjectRow,
    TenantRow,
    ViewChanges,
    WeekRow,
)
from service.settings import Database
from tests.clock import T0

ACME = "acme"
OTHER = "globex"
ANN = SubjectKey(ACME, "promiser", "ann")
MONDAY = date(2026, 3, 2)
WEEK = timedelta(days=7)


def ident(*parts: str) -> UUID:
    return uuid5(NAMESPACE_URL, "/".join(parts))


ANN_ID = ident(ACME, "person", "ann")
ACME_ID = ident(ACME)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReportViewStore]:
    if request.param == "memory":
        yield from _opened(POPOReportViewStore())
    elif request.param == "sqlite":
        yield from _opened(SQLiteReportViewStore(str(tmp_path / "troth.db")))
    else:
        conninfo = Database.from_url(request.getfixturevalue("postgres_url")).conninfo()
        schema = f"troth_views_{secrets.token_hex(4)}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield from _opened(PostgresReportViewStore(conninfo, schema=schema))
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _opened(store: ReportViewStore) -> Iterator[ReportViewStore]:
    store.create_tables()
    try:
        yield store
    finally:
        store.close()


def promise(key: str, *, tenant: str = ACME, promiser: str = "ann", **fields: Any) -> PromiseRow:
    row = PromiseRow(
        aggregate_id=ident(tenant, key),
        tenant=tenant,
        key=key,
        promiser=promiser,
        promisee=None,
        category=None,
        title=f"promise {key}",
        status="open",
        due_at=None,
        made_at=T0,
        made_recorded_at=T0,
        outcome_kind=None,
        outcome_at=None,
        renegotiations=0,
        position=1,
    )
    return replace(row, **fields)


def outcome(key: str, position: int, at: datetime, **fields: Any) -> OutcomeRow:
    row = OutcomeRow(ACME, key, "ann", None, None, OutcomeKind.KEPT, at, position, at)
    return replace(row, **fields)


def week(key: SubjectKey, monday: date, kept: int = 1) -> WeekRow:
    return WeekRow(key, monday, WeekBucket(kept=kept, sums=DecayedSums(T0, float(kept), 1.0)))


def person(timezone: str = "UTC", name: str = "ann") -> PersonRow:
    return PersonRow(ident(ACME, "person", name), ACME, name, timezone)


def tenant_row(policy: ScoringPolicy | None = None) -> TenantRow:
    return TenantRow(ACME_ID, "Acme", policy or ScoringPolicy())


def changes_of(*rows: PromiseRow | OutcomeRow | SubjectRow | WeekRow) -> ViewChanges:
    changes = ViewChanges()
    for row in rows:
        if isinstance(row, PromiseRow):
            changes.promises[(row.tenant, row.key)] = row
        elif isinstance(row, OutcomeRow):
            changes.outcomes[(row.tenant, row.key, row.position)] = row
        elif isinstance(row, SubjectRow):
            changes.subjects[row.key] = row
        else:
            changes.weeks[(row.key, row.week)] = row
    return changes


def test_every_row_type_reads_back_equal_to_what_was_written(store: ReportViewStore) -> None:
    due = T0 + timedelta(days=1, microseconds=123456)
    full = promise(
        "p-1",
        promisee="bob",
        category="chores",
        title="Take out the bins ✓",
        status="kept",
        due_at=due,
        made_recorded_at=T0 + timedelta(microseconds=1),
        outcome_kind=OutcomeKind.KEPT_LATE,
        outcome_at=due + timedelta(hours=1),
        outcome_position=2**40,
        outcome_recorded_at=due + timedelta(hours=2),
        renegotiations=2,
        position=2**40,
    )
    bare = promise("p-2")
    current = outcome("p-1", 2**40, due, promisee="bob", category="chores")
    replaced = replace(current, position=7, kind=OutcomeKind.BROKEN, replaced_at=due)
    streak = StreakState(
        last_at=due,
        last_order=2**40,
        kept_streak=3,
        run_first_at=T0,
        longest_kept_streak=5,
        longest_first_at=T0 - WEEK,
        longest_last_at=T0 - timedelta(days=2),
        last_breach_at=T0 - timedelta(days=1),
        week=MONDAY,
        week_has_kept=True,
        weeks_before=2,
        longest_weeks_before=4,
    )
    sums = DecayedSums(due, 0.1 + 0.2, 1 / 3)
    subject = SubjectRow(ANN, 1, 2, 3, 4, 5, 6, 7, sums=sums, streak=streak, position=9)
    empty = SubjectRow(SubjectKey(ACME, "category", "ann", "chores"))
    bucket = WeekBucket(1, 2, 3, 4, 5, DecayedSums(T0, 1e-300, 12345.678901234567))
    weekly = WeekRow(SubjectKey(ACME, "pair", "ann", "bob"), MONDAY, bucket)
    policy = ScoringPolicy(
        half_life=timedelta(days=14, microseconds=1),
        broken_weight=2.5,
        late_credit=0.1 + 0.2,
        grace=timedelta(minutes=90),
        lapse_after=timedelta(hours=36, seconds=1),
        prior_strength=3.0,
        prior_mean=1 / 3,
    )
    changes = changes_of(full, bare, current, replaced, subject, empty, weekly)
    changes.people[ANN_ID] = person("Europe/Berlin")
    changes.tenants[ACME_ID] = tenant_row(policy)

    store.write(changes, 1)

    assert store.promises([(ACME, "p-1"), (ACME, "p-2")]) == changes.promises
    assert store.subject_outcomes(ANN, current_only=False) == [replaced, current]
    assert store.subjects([ANN, empty.key]) == {ANN: subject, empty.key: empty}
    assert store.weeks([(weekly.key, MONDAY)]) == {(weekly.key, MONDAY): weekly}
    assert store.people([ANN_ID]) == {ANN_ID: person("Europe/Berlin")}
    assert store.tenants([ACME_ID]) == {ACME_ID: tenant_row(policy)}
    assert store.promises_by_id([full.aggregate_id, ident("nothing")]) == {full.aggregate_id: full}
    read = store.promises([(ACME, "p-1")])[(ACME, "p-1")]
    assert read.outcome_kind is OutcomeKind.KEPT_LATE
    instants = [read.due_at, read.made_at, read.outcome_at, store.subjects([ANN])[ANN].sums.t_ref]
    assert all(at is not None and at.utcoffset() == timedelta(0) for at in instants)


def test_an_instant_written_with_any_offset_reads_back_as_the_same_instant(
    store: ReportViewStore,
) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    row = promise("p-1", due_at=datetime(2026, 3, 2, 14, 30, 0, 1, tzinfo=india))
    store.write(changes_of(row), 1)
    due = store.promises([(ACME, "p-1")])[(ACME, "p-1")].due_at
    assert due == datetime(2026, 3, 2, 9, 0, 0, 1, tzinfo=UTC)


def test_lookups_return_only_the_stored_keys(store: ReportViewStore) -> None:
    store.write(changes_of(promise("p-1"), SubjectRow(ANN), week(ANN, MONDAY)), 1)
    assert set(store.promises([(ACME, "p-1"), (ACME, "p-9"), (OTHER, "p-1")])) == {(ACME, "p-1")}
    assert set(store.subjects([ANN, ANN._replace(person="ben")])) == {ANN}
    assert set(store.weeks([(ANN, MONDAY), (ANN, MONDAY + WEEK)])) == {(ANN, MONDAY)}
    assert store.people([ANN_ID]) == {}
    assert store.tenants([ACME_ID]) == {}
    assert store.promises_by_id([]) == {}
    assert store.people([]) == {}
    assert store.promises([]) == {}
    assert store.subjects([]) == {}
    assert store.weeks([]) == {}


def test_a_write_replaces_rows_with_the_same_identity(store: ReportViewStore) -> None:
    first = outcome("p-1", 5, T0)
    store.write(changes_of(promise("p-1"), first, SubjectRow(ANN, made=1), week(ANN, MONDAY)), 1)
    store.write(ViewChanges(people={ANN_ID: person()}, tenants={ACME_ID: tenant_row()}), 2)

    kept = promise("p-1", status="kept", outcome_kind=OutcomeKind.KEPT, outcome_at=T0)
    corrected = replace(first, replaced_at=T0 + timedelta(hours=1))
    later = ScoringPolicy(half_life=timedelta(days=7))
    changes = changes_of(kept, corrected, SubjectRow(ANN, made=2), week(ANN, MONDAY, kept=3))
    changes.people[ANN_ID] = person("Asia/Tokyo")
    changes.tenants[ACME_ID] = tenant_row(later)
    store.write(changes, 3)

    assert store.list_promises(ACME) == [kept]
    assert store.subject_outcomes(ANN, current_only=False) == [corrected]
    assert store.subjects([ANN])[ANN].made == 2
    assert store.subject_weeks(ANN, MONDAY, MONDAY) == [week(ANN, MONDAY, kept=3)]
    assert store.people([ANN_ID]) == {ANN_ID: person("Asia/Tokyo")}
    assert store.tenants([ACME_ID]) == {ACME_ID: tenant_row(later)}


def test_the_position_is_zero_before_any_write_then_the_last_written(
    store: ReportViewStore,
) -> None:
    assert store.position() == 0
    store.write(changes_of(promise("p-1")), 3)
    store.write(ViewChanges(), 10)
    assert store.position() == 10


def test_positions_are_tracked_per_view(store: ReportViewStore) -> None:
    store.write(ViewChanges(), 7)
    store.write(ViewChanges(), 2, view="digests")
    assert (store.position(), store.position("digests"), store.position("other")) == (7, 2, 0)


@pytest.mark.parametrize("stale", [5, 4, 0])
def test_a_write_with_an_old_position_writes_nothing(store: ReportViewStore, stale: int) -> None:
    original = promise("p-1")
    store.write(changes_of(original, SubjectRow(ANN), week(ANN, MONDAY)), 5)
    changes = changes_of(
        promise("p-1", status="kept"),
        promise("p-2"),
        outcome("p-1", 6, T0),
        SubjectRow(ANN, made=1),
        week(ANN, MONDAY + WEEK),
    )
    changes.deleted_weeks.add((ANN, MONDAY))
    changes.people[ANN_ID] = person()
    changes.tenants[ACME_ID] = tenant_row()

    with pytest.raises(IntegrityError):
        store.write(changes, stale)

    assert store.position() == 5
    assert store.list_promises(ACME) == [original]
    assert store.subject_outcomes(ANN, current_only=False) == []
    assert store.subjects([ANN]) == {ANN: SubjectRow(ANN)}
    assert store.subject_weeks(ANN, MONDAY, MONDAY + WEEK) == [week(ANN, MONDAY)]
    assert store.people([ANN_ID]) == {}
    assert store.tenants([ACME_ID]) == {}


def test_a_first_write_needs_a_position_above_zero(store: ReportViewStore) -> None:
    with pytest.raises(IntegrityError):
        store.write(changes_of(promise("p-1")), 0)
    assert store.position() == 0
    assert store.list_promises(ACME) == []


def test_of_concurrent_writers_of_one_position_exactly_one_succeeds(
    store: ReportViewStore,
) -> None:
    outcomes: list[str] = []

    def attempt(number: int) -> None:
        try:
            store.write(changes_of(promise(f"p-{number}")), 1)
            outcomes.append("written")
        except IntegrityError:
            outcomes.append("rejected")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["rejected"] * 5 + ["written"]
    assert len(store.list_promises(ACME)) == 1


def _subject_fixture() -> ViewChanges:
    at = T0
    rows: list[PromiseRow | OutcomeRow] = []
    for key, promiser, promisee, category, tenant in [
        ("p-1", "ann", "bob", "chores", ACME),
        ("p-2", "ann", "bob", None, ACME),
        ("p-3", "ann", "cat", "chores", ACME),
        ("p-4", "ann", None, None, ACME),
        ("p-5", "ben", "bob", "chores", ACME),
        ("p-6", "ann", "bob", "chores", OTHER),
    ]:
        at += timedelta(hours=1)
        ids = {"promisee": promisee, "category": category}
        rows.append(promise(key, tenant=tenant, promiser=promiser, due_at=at, **ids))
        rows.append(outcome(key, int(key[-1]), at, tenant=tenant, promiser=promiser, **ids))
    return changes_of(*rows)


@pytest.mark.parametrize(
    ("kind", "other", "expected"),
    [
        ("promiser", "", ["p-1", "p-2", "p-3", "p-4"]),
        ("pair", "bob", ["p-1", "p-2"]),
        ("category", "chores", ["p-1", "p-3"]),
    ],
)
def test_a_subject_has_the_promises_and_outcomes_of_its_promiser_pair_or_category(
    store: ReportViewStore, kind: str, other: str, expected: list[str]
) -> None:
    store.write(_subject_fixture(), 1)
    key = SubjectKey(ACME, kind, "ann", other)
    assert [p.key for p in store.subject_promises(key)] == expected
    assert [o.key for o in store.subject_outcomes(key)] == expected


def test_current_only_leaves_out_replaced_outcomes_and_all_come_by_time_then_position(
    store: ReportViewStore,
) -> None:
    hour = timedelta(hours=1)
    first_p1 = outcome("p-1", 10, T0 + 2 * hour, replaced_at=T0 + 3 * hour)
    second_p1 = outcome("p-1", 12, T0 + hour, kind=OutcomeKind.BROKEN)
    p2 = outcome("p-2", 11, T0 + hour)
    p3 = outcome("p-3", 9, T0, kind=OutcomeKind.RELEASED)
    store.write(changes_of(second_p1, first_p1, p3, p2), 1)
    assert store.subject_outcomes(ANN) == [p3, p2, second_p1]
    assert store.subject_outcomes(ANN, current_only=False) == [p3, p2, second_p1, first_p1]
    assert store.subject_outcomes(ANN, since=T0) == [p2, second_p1]  # strictly after
    assert store.subject_outcomes(ANN, since=T0 + hour) == []
    assert store.subject_outcomes(ANN, current_only=False, since=T0 + hour) == [first_p1]


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_the_reads_of_one_report_see_one_snapshot_while_the_projector_writes(
    store: ReportViewStore,
) -> None:
    first, second = outcome("p-1", 1, T0), outcome("p-2", 2, T0)
    store.write(changes_of(first), 1)
    writer = threading.Thread(target=lambda: store.write(changes_of(second), 2, previous=1))
    with store.reading():
        before = store.subject_outcomes(ANN)
        writer.start()
        writer.join()
        during = store.position(), store.subject_outcomes(ANN)
    assert before == [first]
    assert during == (1, [first])
    assert (store.position(), store.subject_outcomes(ANN)) == (2, [first, second])


def test_recent_outcome_counts_take_current_outcomes_in_the_window_of_the_subject_only(
    store: ReportViewStore,
) -> None:
    hour = timedelta(hours=1)
    store.write(
        changes_of(
            outcome("p-1", 1, T0),  # at the window's open end: outside
            outcome("p-2", 2, T0 + hour),
            outcome("p-3", 3, T0 + hour, kind=OutcomeKind.BROKEN, promisee="bob"),
            outcome("p-4", 4, T0 + 2 * hour, replaced_at=T0 + 3 * hour),  # corrected
            outcome("p-4", 5, T0 + 2 * hour, kind=OutcomeKind.BROKEN),
            outcome("p-5", 6, T0 + 3 * hour, kind=OutcomeKind.LAPSED),  # at the closed end
            outcome("p-6", 7, T0 + 4 * hour),  # after the window
            outcome("p-7", 8, T0 + hour, promiser="bo"),  # someone else
        ),
        1,
    )
    window = (T0, T0 + 3 * hour)
    assert store.subject_outcome_counts(ANN, *window) == {
        OutcomeKind.KEPT: 1,
        OutcomeKind.BROKEN: 2,
        OutcomeKind.LAPSED: 1,
    }
    pair = SubjectKey(ACME, "pair", "ann", "bob")
    assert store.subject_outcome_counts(pair, *window) == {OutcomeKind.BROKEN: 1}
    assert store.subject_outcome_counts(ANN, T0 + 4 * hour, T0 + 5 * hour) == {}


def test_a_split_recent_tally_counts_outcomes_before_the_split_and_week_rows_after_it(
    store: ReportViewStore,
) -> None:
    hour = timedelta(hours=1)
    split = datetime(2026, 3, 9, tzinfo=UTC)  # when the week after MONDAY begins, in UTC
    store.write(
        changes_of(
            outcome("p-1", 1, T0),  # at the window's open end: outside
            outcome("p-2", 2, T0 + hour),
            outcome("p-3", 3, split - INSTANT, kind=OutcomeKind.BROKEN),  # the week's last instant
            outcome("p-4", 4, split),  # counted in its week's row, not one by one
            week(ANN, MONDAY - WEEK, kept=5),  # before the window
            week(ANN, MONDAY, kept=7),  # the split's week: its outcomes are counted one by one
            WeekRow(ANN, MONDAY + WEEK, WeekBucket(kept=1, broken=2)),
            WeekRow(ANN, MONDAY + 2 * WEEK, WeekBucket(lapsed=1, released=1)),
        ),
        1,
    )
    window = RecentWindow(T0, split + 3 * WEEK, (MONDAY, split))
    expected = {
        OutcomeKind.KEPT: 1 + 1,
        OutcomeKind.BROKEN: 1 + 2,
        OutcomeKind.LAPSED: 1,
        OutcomeKind.RELEASED: 1,
    }

    assert store.recent_counts(ANN, window) == expected
    rows = store.current_rows(
        ANN, person=ANN_ID, tenant=ACME_ID, weeks=(MONDAY, MONDAY), recent=window
    )
    assert rows.recent == expected
    unsplit = RecentWindow(T0, split + 3 * WEEK)
    assert store.recent_counts(ANN, unsplit) == {OutcomeKind.KEPT: 2, OutcomeKind.BROKEN: 1}


@pytest.mark.parametrize(
    ("kind", "other", "still_open"),
    [
        ("promiser", "", ["p-1", "p-2", "p-3", "p-4", "p-7", "p-9"]),
        ("pair", "bob", ["p-1", "p-2", "p-7", "p-9"]),
        ("category", "chores", ["p-1", "p-3", "p-7", "p-9"]),
    ],
)
def test_current_rows_are_what_a_current_report_reads_of_the_subject_and_nothing_else(
    store: ReportViewStore, kind: str, other: str, still_open: list[str]
) -> None:
    key = SubjectKey(ACME, kind, "ann", other)
    hour = timedelta(hours=1)
    changes = _subject_fixture()
    for number, status in ((7, "open"), (8, "kept"), (9, "open")):
        row = promise(f"p-{number}", status=status, promisee="bob", category="chores")
        changes.promises[(ACME, row.key)] = replace(row, due_at=T0 + number * hour)
    changes.promises[(ACME, "p-10")] = promise("p-10", promiser="ben", promisee="bob")
    subject = SubjectRow(key, 3, 2, sums=DecayedSums(T0, 1.5, 2.0), position=4)
    changes.subjects[key] = subject
    ben = SubjectKey(ACME, "promiser", "ben")
    changes.subjects[ben] = SubjectRow(ben, 9)
    for n, monday in enumerate((MONDAY - WEEK, MONDAY, MONDAY + WEEK, MONDAY + 2 * WEEK)):
        # Every field different, so a column read into the wrong one shows.
        bucket = WeekBucket(
            n, n + 1, n + 2, n + 3, n + 4, DecayedSums(T0 + n * hour, n + 0.5, 7.25)
        )
        changes.weeks[(key, monday)] = WeekRow(key, monday, bucket)
    changes.people[ANN_ID] = person("Europe/Berlin")
    changes.people[ident(ACME, "person", "ben")] = person("Asia/Tokyo", "ben")
    changes.tenants[ACME_ID] = tenant_row(ScoringPolicy(broken_weight=3.0))
    store.write(changes, 1)

    rows = store.current_rows(
        key,
        person=ANN_ID,
        tenant=ACME_ID,
        weeks=(MONDAY, MONDAY + WEEK),
        recent=RecentWindow(T0 + hour, T0 + 4 * hour),
    )

    assert rows.subject == subject
    assert rows.person == person("Europe/Berlin")
    assert rows.tenant == tenant_row(ScoringPolicy(broken_weight=3.0))
    assert rows.open_promises == store.subject_promises(key, status="open")
    assert [p.key for p in rows.open_promises] == still_open
    assert [r.week for r in rows.weeks] == [MONDAY, MONDAY + WEEK]
    assert rows.weeks == [changes.weeks[(key, MONDAY)], changes.weeks[(key, MONDAY + WEEK)]]
    assert rows.recent == store.subject_outcome_counts(key, T0 + hour, T0 + 4 * hour)
    assert rows.recent == {OutcomeKind.KEPT: len(store.subject_outcomes(key, since=T0 + hour))}


def test_current_rows_of_an_unknown_subject_are_empty(store: ReportViewStore) -> None:
    store.write(_subject_fixture(), 1)
    rows = store.current_rows(
        SubjectKey(ACME, "pair", "ann", "nobody"),
        person=ident(ACME, "person", "nobody"),
        tenant=ident("nowhere"),
        weeks=(MONDAY, MONDAY + WEEK),
        recent=RecentWindow(T0, T0 + WEEK),
    )
    assert (rows.subject, rows.person, rows.tenant) == (None, None, None)
    assert (rows.open_promises, rows.weeks, rows.recent) == ([], [], {})


def test_subject_promises_filter_by_status_and_come_by_due_time_undated_last(
    store: ReportViewStore,
) -> None:
    day = timedelta(days=1)
    rows = [
        promise("p-a", due_at=T0 + 2 * day),
        promise("p-b"),
        promise("p-c", due_at=T0 + day, status="kept"),
        promise("p-d", due_at=T0 + day),
        promise("p-e", status="kept"),
        promise("p-f", promiser="ben", due_at=T0),
    ]
    store.write(changes_of(*rows), 1)
    assert [p.key for p in store.subject_promises(ANN)] == ["p-c", "p-d", "p-a", "p-b", "p-e"]
    assert [p.key for p in store.subject_promises(ANN, status="kept")] == ["p-c", "p-e"]
    assert store.subject_promises(ANN, status="broken") == []


def _pages(fetch: Callable[[str | None, int], list[str]], limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = fetch(after, limit)
        if not page:
            return pages
        pages.append(page)
        after = page[-1]


def test_list_promises_pages_through_every_promise_once_in_key_order(
    store: ReportViewStore,
) -> None:
    keys = [f"k{n:02d}" for n in range(20)] + ["B-1", "a-1", "Z", "é", "k1"]
    statuses = ["open", "kept", "broken"]
    rows = [
        promise(key, promiser=["ann", "ben"][n % 2], status=statuses[n % 3])
        for n, key in enumerate(keys)
    ]
    store.write(changes_of(*rows, promise("k00", tenant=OTHER)), 1)

    def listed(limit: int, **filters: str) -> list[list[str]]:
        def fetch(after: str | None, limit: int) -> list[str]:
            return [p.key for p in store.list_promises(ACME, after=after, limit=limit, **filters)]

        return _pages(fetch, limit)

    pages = listed(7)
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [key for page in pages for key in page] == sorted(keys)
    for filters in ({"promiser": "ann", "status": "open"}, {"status": "kept"}, {"promiser": "ben"}):
        wanted = sorted(r.key for r in rows if all(getattr(r, f) == v for f, v in filters.items()))
        assert [key for page in listed(3, **filters) for key in page] == wanted


def test_list_people_pages_through_promiser_subjects_in_person_order(
    store: ReportViewStore,
) -> None:
    people = [f"person-{n:02d}" for n in range(12)] + ["Zoe", "ann"]
    rows = [SubjectRow(SubjectKey(ACME, "promiser", p), made=n) for n, p in enumerate(people)]
    others = [
        SubjectRow(SubjectKey(ACME, "pair", "ann", "bob")),
        SubjectRow(SubjectKey(ACME, "category", "aaron", "chores")),
        SubjectRow(SubjectKey(OTHER, "promiser", "abe")),
    ]
    store.write(changes_of(*rows, *others), 1)
    seen: list[SubjectRow] = []

    def fetch(after: str | None, limit: int) -> list[str]:
        page = store.list_people(ACME, after=after, limit=limit)
        seen.extend(page)
        return [row.key.person for row in page]

    assert [len(page) for page in _pages(fetch, 5)] == [5, 5, 4]
    assert seen == sorted(rows, key=lambda row: row.key.person)


def test_subject_weeks_are_those_in_the_range_in_week_order(store: ReportViewStore) -> None:
    mondays = [MONDAY + n * WEEK for n in range(6)]
    ben = ANN._replace(person="ben")
    store.write(
        changes_of(*(week(ANN, m, n + 1) for n, m in reversed(list(enumerate(mondays))))), 1
    )
    store.write(changes_of(week(ben, mondays[2])), 2)
    found = store.subject_weeks(ANN, mondays[1], mondays[3])
    assert found == [week(ANN, m, n + 2) for n, m in enumerate(mondays[1:4])]
    assert store.subject_weeks(ANN, mondays[5] + WEEK, mondays[5] + 3 * WEEK) == []


def test_deleted_weeks_are_removed(store: ReportViewStore) -> None:
    mondays = [MONDAY + n * WEEK for n in range(3)]
    store.write(changes_of(*(week(ANN, m) for m in mondays)), 1)
    store.write(ViewChanges(deleted_weeks={(ANN, mondays[1]), (ANN, MONDAY - WEEK)}), 2)
    assert store.subject_weeks(ANN, mondays[0], mondays[2]) == [
        week(ANN, mondays[0]),
        week(ANN, mondays[2]),
    ]
    assert set(store.weeks([(ANN, m) for m in mondays])) == {(ANN, mondays[0]), (ANN, mondays[2])}


def test_tenant_subjects_lists_a_tenants_subjects_in_order(store: ReportViewStore) -> None:
    keys = [
        SubjectKey(ACME, "promiser", "ben"),
        SubjectKey(ACME, "pair", "ann", "bob"),
        SubjectKey(ACME, "category", "ann", "chores"),
        SubjectKey(ACME, "pair", "ben", "ann"),
        SubjectKey(ACME, "pair", "ann", "Bea"),
        ANN,
    ]
    store.write(
        changes_of(*(SubjectRow(k) for k in [*keys, SubjectKey(OTHER, "promiser", "ann")])), 1
    )
    assert store.tenant_subjects(ACME) == sorted(keys)
    assert store.tenant_subjects(ACME, "ann") == sorted(k for k in keys if k.person == "ann")
    assert store.tenant_subjects(ACME, "nobody") == []


def test_creating_the_tables_twice_is_harmless(store: ReportViewStore) -> None:
    store.write(changes_of(promise("p-1")), 1)
    store.create_tables()
    assert store.position() == 1
    assert store.list_promises(ACME) == [promise("p-1")]


def test_dropping_and_creating_the_tables_gives_an_empty_store_at_position_zero(
    store: ReportViewStore,
) -> None:
    changes = changes_of(promise("p-1"), outcome("p-1", 1, T0), SubjectRow(ANN), week(ANN, MONDAY))
    changes.people[ANN_ID] = person()
    changes.tenants[ACME_ID] = tenant_row()
    store.write(changes, 4)
    store.drop_tables()
    store.drop_tables()
    store.create_tables()
    assert store.position() == 0
    assert store.list_promises(ACME) == []
    assert store.subject_outcomes(ANN, current_only=False) == []
    assert store.tenant_subjects(ACME) == []
    assert store.weeks([(ANN, MONDAY)]) == {}
    assert store.people([ANN_ID]) == {}
    assert store.tenants([ACME_ID]) == {}
    store.write(changes, 1)
    assert store.position() == 1


def test_a_batch_of_three_thousand_rows_is_written_in_one_call(store: ReportViewStore) -> None:
    people = [f"person-{n:03d}" for n in range(250)]
    promises = [promise(f"p-{n:04d}", promiser=people[n % 250], position=n) for n in range(1000)]
    outcomes = [outcome(p.key, p.position, T0, promiser=p.promiser) for p in promises]
    subjects = [SubjectRow(SubjectKey(ACME, "promiser", p), made=4) for p in people]
    weeks = [week(s.key, MONDAY + n * WEEK) for s in subjects for n in range(3)]
    changes = changes_of(*promises, *outcomes, *subjects, *weeks)
    rows = [person("Europe/Paris", name) for name in people]
    changes.people.update({row.aggregate_id: row for row in rows})

    store.write(changes, 1000)

    assert store.promises(changes.promises) == changes.promises
    assert store.subjects(changes.subjects) == changes.subjects
    assert store.weeks(changes.weeks) == changes.weeks
    assert store.people(changes.people) == changes.people
    by_id = {p.aggregate_id: p for p in promises}
    assert store.promises_by_id(by_id) == by_id
    ann = SubjectKey(ACME, "promiser", people[7])
    assert store.subject_outcomes(ann) == [o for o in outcomes if o.promiser == people[7]]


def test_a_write_computed_from_a_moved_position_writes_nothing(store: ReportViewStore) -> None:
    # Projector A read the views at position 0 and computed events 1..10; meanwhile B wrote
    # events 1..5. A's batch would count events 1..5 twice, so it must be refused.
    store.write(changes_of(promise("p-1")), 5, previous=0)
    with pytest.raises(IntegrityError):
        store.write(changes_of(promise("p-1", status="kept")), 10, previous=0)
    with pytest.raises(IntegrityError):
        store.write(changes_of(promise("p-1", status="kept")), 10, previous=3)
    assert store.position() == 5
    assert store.list_promises(ACME) == [promise("p-1")]
    store.write(changes_of(promise("p-1", status="kept")), 10, previous=5)
    assert store.position() == 10


def test_a_first_write_with_a_previous_position_needs_the_view_at_that_position(
    store: ReportViewStore,
) -> None:
    with pytest.raises(IntegrityError):
        store.write(changes_of(promise("p-1")), 5, previous=2)
    assert store.position() == 0
    store.write(changes_of(promise("p-1")), 5, previous=0)
    assert store.position() == 5


def test_views_rebuilt_aside_replace_the_served_ones_in_one_swap(store: ReportViewStore) -> None:
    changes = changes_of(promise("old"), SubjectRow(ANN, made=1), week(ANN, MONDAY))
    changes.people[ANN_ID] = person()
    changes.tenants[ACME_ID] = tenant_row()
    store.write(changes, 3)
    for generation in range(2):  # twice: the second rebuild must find its names free again
        aside = store.aside("__rebuild")
        try:
            aside.drop_tables()
            aside.create_tables()
            assert aside.position() == 0
            served = store.list_promises(ACME)[0]
            # The aside tables start empty: no lookup may reach the served tables.
            assert aside.promises([(ACME, served.key)]) == {}
            assert aside.promises_by_id([served.aggregate_id]) == {}
            assert aside.subjects([ANN]) == {}
            assert aside.weeks([(ANN, MONDAY)]) == {}
            assert aside.people([ANN_ID]) == {}
            assert aside.tenants([ACME_ID]) == {}
            assert aside.list_promises(ACME) == []
            assert aside.tenant_subjects(ACME) == []
            new = promise(f"new-{generation}")
            aside.write(changes_of(new, SubjectRow(ANN, made=7 + generation)), 40 + generation)
            aside.write(ViewChanges(people={ANN_ID: person("Asia/Tokyo")}), 50 + generation)

            assert store.list_promises(ACME)[0].key != new.key  # still serving the old views

            store.swap_in(aside)
        finally:
            aside.close()

        assert store.position() == 50 + generation
        assert store.list_promises(ACME) == [new]
        assert store.subjects([ANN])[ANN].made == 7 + generation
        assert store.weeks([(ANN, MONDAY)]) == {}
        assert store.people([ANN_ID]) == {ANN_ID: person("Asia/Tokyo")}
        store.write(changes_of(promise("after")), 60 + generation, previous=50 + generation)
        assert [p.key for p in store.list_promises(ACME)] == ["after", new.key]


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_views_rebuilt_aside_are_served_with_planner_statistics(
    store: ReportViewStore, postgres_url: str
) -> None:
    # Without statistics, a report's reads of a large view pick the wrong index.
    assert isinstance(store, PostgresReportViewStore)
    aside = store.aside("__rebuild")
    try:
        aside.drop_tables()
        aside.create_tables()
        aside.write(changes_of(promise("p-1"), SubjectRow(ANN, made=1), week(ANN, MONDAY)), 9)
        store.swap_in(aside)
    finally:
        aside.close()
    with psycopg.connect(Database.from_url(postgres_url).conninfo()) as conn:
        never_analyzed = conn.execute(
            "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
            "WHERE nspname = %s AND relkind = 'r' AND reltuples < 0",
            [store.schema],
        ).fetchall()
    assert never_analyzed == []
