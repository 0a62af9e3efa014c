from dataclasses import FrozenInstanceError, fields

import pytest

from projections.frozen import built
from projections.scoring import DecayedSums
from projections.streaks import StreakState
from projections.views import SubjectKey, SubjectRow


def test_a_built_row_equals_and_hashes_like_the_constructed_one() -> None:
    row = SubjectRow(SubjectKey("acme", "promiser", "ann"), made=2, kept=1, position=7)
    copy = built(SubjectRow, {f.name: getattr(row, f.name) for f in fields(SubjectRow)})
    assert copy == row
    assert hash(copy) == hash(row)
    assert repr(copy) == repr(row)


def test_a_built_row_is_still_frozen() -> None:
    sums = built(DecayedSums, {"t_ref": None, "k": 0.0, "n": 0.0})
    with pytest.raises(FrozenInstanceError):
        sums.k = 1.0  # type: ignore[misc]
    assert sums == DecayedSums()


def test_a_streak_fold_freezes_into_the_state_it_started_from() -> None:
    state = StreakState(kept_streak=3, longest_kept_streak=5, weeks_before=2)
    assert state.folding().state() == state
