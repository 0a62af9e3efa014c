"""The projector's cache of recent rows: bounded, yet never without the last batch's rows."""

from __future__ import annotations

from projections.report_batch import SubjectTally
from projections.report_cache import Recent, ReportCache
from projections.views import SubjectKey, SubjectRow

ANN = SubjectKey("acme", "promiser", "ann")


def test_the_least_recently_kept_entries_are_forgotten_first() -> None:
    recent: Recent[int, str] = Recent(3)
    recent.keep([(1, "a"), (2, "b"), (3, "c")])
    forgotten = recent.keep([(1, "a2"), (4, "d")])

    assert forgotten == [2]
    assert recent.split([1, 2, 3, 4]) == ({1: "a2", 3: "c", 4: "d"}, [2])


def test_a_batch_larger_than_the_capacity_is_kept_whole() -> None:
    # The rows of the batch being written must all be found: the stored ones are older.
    recent: Recent[int, int] = Recent(2)
    recent.keep([(0, 0)])
    forgotten = recent.keep((i, i) for i in range(1, 6))

    assert forgotten == [0]
    assert len(recent) == 5


def test_empty_views_are_known_completely_until_a_row_is_forgotten() -> None:
    cache = ReportCache().at(0)
    assert cache.subjects.complete

    cache.subjects.capacity = 1
    cache.subjects.keep([(ANN, SubjectTally(SubjectRow(ANN)))])
    assert cache.subjects.complete
    cache.subjects.keep([(ANN._replace(person="ben"), None)])
    assert not cache.subjects.complete


def test_a_cache_asked_for_another_position_than_its_own_is_emptied() -> None:
    cache = ReportCache().at(0)
    ann = SubjectTally(SubjectRow(ANN))
    cache.subjects.keep([(ANN, ann)])
    cache.position = 7

    assert cache.at(7).subjects.split([ANN]) == ({ANN: ann}, [])
    assert cache.at(9).subjects.split([ANN]) == ({}, [ANN])
    assert not cache.subjects.complete
