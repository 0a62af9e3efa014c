"""Recurring commitments: schedules in local time across DST, occurrences as promises."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.application import Ledger
from domain.commitment import CommitmentTerms
from domain.errors import CommitmentConflictError, InvalidInputError
from domain.promise import PromiseStatus, PromiseTerms
from domain.schedule import Schedule

BERLIN = "Europe/Berlin"
TUESDAYS_AT_8 = "FREQ=WEEKLY;BYDAY=TU"
CREATED = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # a Monday, two weeks before DST starts


def talk(schedule: Schedule, key: str = "talk") -> CommitmentTerms:
    return CommitmentTerms(
        tenant="acme", key=key, promiser="alex", promisee="sam", title="Give the talk",
        schedule=schedule,
    )  # fmt: skip


def test_a_weekly_20_00_berlin_occurrence_stays_at_20_00_local_across_the_dst_change() -> None:
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    found = schedule.between(CREATED, CREATED + timedelta(days=21))
    assert [(o.local_date.isoformat(), o.due_at.hour) for o in found] == [
        ("2026-03-17", 19),  # CET, UTC+1
        ("2026-03-24", 19),
        ("2026-03-31", 18),  # CEST, UTC+2 (DST began on Sunday 29 March)
    ]


def test_a_cron_schedule_follows_local_time_the_same_way() -> None:
    schedule = Schedule("0 20 * * 2", BERLIN, date(2026, 3, 16))
    found = schedule.between(CREATED, CREATED + timedelta(days=21))
    assert [o.due_at.hour for o in found] == [19, 19, 18]


def test_a_local_time_skipped_by_the_spring_change_moves_forward_by_the_gap() -> None:
    schedule = Schedule("FREQ=DAILY", BERLIN, date(2026, 3, 28), "02:30")
    found = schedule.between(datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    on_the_day = next(o for o in found if o.local_date == date(2026, 3, 29))
    assert on_the_day.due_at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST


def test_a_local_time_repeated_by_the_autumn_change_means_the_first_one() -> None:
    schedule = Schedule("FREQ=DAILY", BERLIN, date(2026, 10, 24), "02:30")
    found = schedule.between(datetime(2026, 10, 23, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    on_the_day = next(o for o in found if o.local_date == date(2026, 10, 25))
    assert on_the_day.due_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST


@pytest.mark.parametrize(
    ("rule", "due_time", "field"),
    [
        ("FREQ=SOMETIMES", "20:00", "schedule"),
        ("61 * * * *", None, "schedule"),
        ("FREQ=HOURLY", "20:00", "schedule"),  # more than one occurrence a day
        ("0 0 30 2 *", None, "schedule"),  # never
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "20:00", "schedule"),
        ("FREQ=WEEKLY", None, "due_time"),
        ("0 20 * * 2", "20:00", "due_time"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(
    rule: str, due_time: str | None, field: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        Schedule(rule, BERLIN, date(2026, 3, 16), due_time)
    assert raised.value.field == field


def test_occurrences_become_promises_named_by_local_date_made_ahead_once(ledger: Ledger) -> None:
    ledger.register_tenant("acme", at=CREATED)
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    ledger.create_commitment(talk(schedule), at=CREATED)
    made = ledger.schedule_occurrences("acme", "talk", now=CREATED, horizon=timedelta(days=9))
    again = ledger.schedule_occurrences("acme", "talk", now=CREATED, horizon=timedelta(days=9))
    assert (made, again) == (2, 0)
    promise = ledger.promise("acme", "talk/2026-03-24")
    assert promise.terms.due_at == datetime(2026, 3, 24, 19, 0, tzinfo=UTC)
    assert promise.terms.made_at == CREATED
    assert promise.status is PromiseStatus.OPEN


def test_an_occurrence_whose_id_is_taken_by_another_promise_is_skipped(ledger: Ledger) -> None:
    ledger.register_tenant("acme", at=CREATED)
    taken = PromiseTerms(
        tenant="acme", key="talk/2026-03-17", promiser="alex", title="Something else",
        made_at=CREATED,
    )  # fmt: skip
    ledger.make_promise(taken)
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    ledger.create_commitment(talk(schedule), at=CREATED)
    made = ledger.schedule_occurrences("acme", "talk", now=CREATED, horizon=timedelta(days=9))
    assert made == 2
    assert ledger.promise("acme", "talk/2026-03-17").terms.title == "Something else"
    assert ledger.promise("acme", "talk/2026-03-24").terms.title == "Give the talk"


def test_pausing_releases_the_occurrences_made_ahead_and_stops_making_more(ledger: Ledger) -> None:
    ledger.register_tenant("acme", at=CREATED)
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    ledger.create_commitment(talk(schedule), at=CREATED)
    ledger.schedule_occurrences("acme", "talk", now=CREATED, horizon=timedelta(days=9))
    paused_at = datetime(2026, 3, 18, tzinfo=UTC)
    ledger.pause_commitment("acme", "talk", at=paused_at)
    assert ledger.promise("acme", "talk/2026-03-24").status is PromiseStatus.RELEASED
    later = paused_at + timedelta(days=10)
    assert ledger.schedule_occurrences("acme", "talk", now=later, horizon=timedelta(days=9)) == 0
    ledger.resume_commitment("acme", "talk", at=later)
    assert ledger.schedule_occurrences("acme", "talk", now=later, horizon=timedelta(days=9)) > 0
    assert ledger.commitment("acme", "talk").status == "active"


def test_an_ended_commitment_cannot_be_resumed(ledger: Ledger) -> None:
    ledger.register_tenant("acme", at=CREATED)
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    ledger.create_commitment(talk(schedule), at=CREATED)
    ledger.end_commitment("acme", "talk", at=CREATED + timedelta(days=1))
    with pytest.raises(CommitmentConflictError):
        ledger.resume_commitment("acme", "talk", at=CREATED + timedelta(days=2))


def test_the_same_commitment_again_is_already_recorded_and_other_content_conflicts(
    ledger: Ledger,
) -> None:
    ledger.register_tenant("acme", at=CREATED)
    schedule = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "20:00")
    assert ledger.create_commitment(talk(schedule), at=CREATED).is_new
    assert not ledger.create_commitment(talk(schedule), at=CREATED).is_new
    other = Schedule(TUESDAYS_AT_8, BERLIN, date(2026, 3, 16), "21:00")
    with pytest.raises(CommitmentConflictError):
        ledger.create_commitment(talk(other), at=CREATED)
