"""The rows the projector wrote lately, kept so that the next batches need not read them back.

The projector is the views' only writer: a second projector's write is refused (the tracking
position moved), and a rebuild swaps in views at another position. So the rows a batch read
and wrote are the stored rows for as long as the tracking position is the one that batch
wrote; the cache is kept at that position and cleared whenever the view is found elsewhere or
a write fails, fails to answer, or is refused. Subjects and weeks are kept as the batches'
working tallies (`report_batch`), with each subject's streak window; outcomes are not kept
(reports read them, the projector seldom does).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar
from uuid import UUID

from projections.views import PersonRow, PromiseRow, SubjectKey, TenantRow

if TYPE_CHECKING:
    from projections.report_batch import SubjectTally, WeekTally

K = TypeVar("K")
V = TypeVar("V")

MISSING: Final[Any] = object()
"""What `Recent.get` answers, if asked to, for a key it does not keep."""
# How many of each kind of row are kept: several batches' worth of promises and weeks (an
# outcome is reported within days of the promise), and every subject of a large tenant, for
# the streak windows. A 200,000-event catch-up peaked at 340 MB with these (180 MB before).
PROMISES: Final = 50_000
SUBJECTS: Final = 50_000
WEEKS: Final = 100_000
PEOPLE: Final = 50_000
TENANTS: Final = 50_000


class Recent(Generic[K, V]):
    """The `capacity` most recently kept entries; older ones are forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        # Whether every stored entry is kept (so one not kept is not stored): true from empty
        # views on, until an entry is forgotten.
        self.complete = False

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K, default: V | None = None) -> V | None:
        return self._entries.get(key, default)

    def split(self, keys: Iterable[K]) -> tuple[dict[K, V], list[K]]:
        """The kept entries among `keys`, and the keys not kept."""
        entries = self._entries
        kept: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            if key in entries:
                kept[key] = entries[key]
            else:
                missing.append(key)
        return kept, missing

    def keep(self, items: Iterable[tuple[K, V]]) -> list[K]:
        """Keep `items` as the most recent entries; returns the keys forgotten for them."""
        entries = self._entries
        count = 0
        for key, value in items:
            entries[key] = value
            entries.move_to_end(key)
            count += 1
        # Never below this batch's entries: a batch still being written must be found here,
        # as the rows stored are older.
        excess = len(entries) - max(self.capacity, count)
        forgotten = [entries.popitem(last=False)[0] for _ in range(excess)]
        if forgotten:
            self.complete = False
        return forgotten

    def clear(self) -> None:
        self._entries.clear()
        self.complete = False


class ReportCache:
    """Rows of the report views as of one tracking position (`position`; None: nothing kept).

    None as a subject or week value means that no such row is stored.
    """

    def __init__(self) -> None:
        self.position: int | None = None
        self.promises: Recent[UUID, PromiseRow] = Recent(PROMISES)
        self.subjects: Recent[SubjectKey, SubjectTally | None] = Recent(SUBJECTS)
        self.weeks: Recent[tuple[SubjectKey, date], WeekTally | None] = Recent(WEEKS)
        self.people: Recent[UUID, PersonRow] = Recent(PEOPLE)
        self.tenants: Recent[UUID, TenantRow] = Recent(TENANTS)
        # Subjects all of whose week rows are kept: new since the cache was last cleared, and
        # none of their weeks forgotten since. A week of theirs that is not kept is not stored.
        self.complete_weeks: set[SubjectKey] = set()

    def at(self, position: int) -> ReportCache:
        """This cache, emptied first unless it holds the rows as of `position`."""
        if self.position != position:
            self.clear()
            if position == 0:
                # No batch written yet: the views are empty, and so is this cache.
                for part in self._parts:
                    part.complete = True
        return self

    def clear(self) -> None:
        """Forget every row (the stored views may differ from them)."""
        self.position = None
        self.complete_weeks.clear()
        for part in self._parts:
            part.clear()

    @property
    def _parts(self) -> tuple[Recent[Any, Any], ...]:
        return (self.promises, self.subjects, self.weeks, self.people, self.tenants)
