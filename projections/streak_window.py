"""A streak's recent history in memory, so an outcome reported late needs no replay from the
first outcome on.

The streak fold only takes outcomes in time order, so an outcome earlier than the last one
folded (a lapse noticed a day late, a correction) means folding the subject's history again.
A window keeps a checkpoint, the state after the subject's outcomes up to some instant, and
the outcomes after it in order: folding the checkpoint on with them gives exactly the state a
replay of the whole history gives, at the cost of the recent outcomes only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from projections.scoring import ScoredOutcome
from projections.streaks import StreakFold, StreakState

HORIZON: Final = timedelta(days=7)
"""How far before the last outcome a replay moves the checkpoint: later reports than this
(rare) replay the whole history instead."""
MOST_RECENT: Final = 128
"""The most outcomes a window holds after its checkpoint, whatever their times."""


def _order(outcome: ScoredOutcome) -> tuple[datetime, int]:
    return outcome.at, outcome.order


def _at(outcome: ScoredOutcome) -> datetime:
    return outcome.at


class StreakWindow:
    """A checkpoint of a streak and, in (time, recording order), every current outcome after it.

    The invariant: folding `checkpoint` on with `recent` gives the streak of all the subject's
    current outcomes. An outcome at or before the checkpoint cannot be added or taken out;
    `add` and `remove` then return False and the window must be dropped.
    """

    __slots__ = ("checkpoint", "recent")

    def __init__(self, checkpoint: StreakState, recent: list[ScoredOutcome]) -> None:
        self.checkpoint = checkpoint
        self.recent = recent

    @classmethod
    def of(cls, outcomes: Sequence[ScoredOutcome], tz: str) -> tuple[StreakWindow, StreakState]:
        """A window over all of a subject's current outcomes (sorted), and their streak."""
        window = cls(StreakState(), list(outcomes))
        return window, window.replay(tz)

    def _is_before_checkpoint(self, outcome: ScoredOutcome) -> bool:
        last_at = self.checkpoint.last_at
        return last_at is not None and _order(outcome) <= (last_at, self.checkpoint.last_order)

    def add(self, outcome: ScoredOutcome) -> bool:
        """Take in a new current outcome; False if it is at or before the checkpoint."""
        if self._is_before_checkpoint(outcome):
            return False
        recent = self.recent
        if not recent or _order(outcome) > _order(recent[-1]):
            recent.append(outcome)
        else:
            bisect.insort(recent, outcome, key=_order)
        return True

    def append(self, outcome: ScoredOutcome) -> None:
        """Take in a new current outcome after every other (the caller knows it is)."""
        self.recent.append(outcome)

    def remove(self, outcome: ScoredOutcome) -> bool:
        """Take out an outcome that is no longer current; False if the checkpoint holds it."""
        if self._is_before_checkpoint(outcome):
            return False
        recent = self.recent
        i = bisect.bisect_left(recent, _order(outcome), key=_order)
        if i == len(recent) or _order(recent[i]) != _order(outcome):
            return False  # never added: the window is not the subject's history
        del recent[i]
        return True

    def replay(self, tz: str) -> StreakState:
        """The streak of all the outcomes; moves the checkpoint up to `HORIZON` before the last."""
        recent = self.recent
        if not recent:
            return self.checkpoint
        horizon = recent[-1].at - HORIZON
        done = max(bisect.bisect_left(recent, horizon, key=_at), len(recent) - MOST_RECENT)
        fold = self._checkpoint_after(done, tz)
        for outcome in recent:
            fold.add(outcome, tz)
        return fold.state()

    @property
    def is_long(self) -> bool:
        """Whether more than `MOST_RECENT` outcomes wait after the checkpoint (see `trim`)."""
        return len(self.recent) > MOST_RECENT

    def trim(self, tz: str) -> None:
        """Fold the oldest outcomes into the checkpoint, keeping half of `MOST_RECENT`."""
        recent = self.recent
        if len(recent) <= MOST_RECENT:
            return
        self._checkpoint_after(len(recent) - MOST_RECENT // 2, tz)

    def _checkpoint_after(self, done: int, tz: str) -> StreakFold:
        """Fold the first `done` recent outcomes into the checkpoint; the fold, to go on with."""
        fold = self.checkpoint.folding()
        for outcome in self.recent[:done]:
            fold.add(outcome, tz)
        self.checkpoint = fold.state()
        del self.recent[:done]
        return fold
