"""A tenant's scoring policy: the parameters of the scoring specification."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final

from domain.errors import InvalidInputError


@dataclass(frozen=True)
class ScoringPolicy:
    """Parameters of the consistency score (defaults from the scoring specification v1)."""

    half_life: timedelta = timedelta(days=30)
    broken_weight: float = 2.0
    late_credit: float = 0.5
    grace: timedelta = timedelta(0)
    lapse_after: timedelta = timedelta(hours=24)
    prior_strength: float = 2.0
    prior_mean: float = 0.5

    def __post_init__(self) -> None:
        if self.half_life <= timedelta(0):
            raise InvalidInputError("half_life", "must be a positive duration")
        if not self.broken_weight > 0:
            raise InvalidInputError("broken_weight", "must be greater than 0")
        if not 0 <= self.late_credit <= 1:
            raise InvalidInputError("late_credit", "must be between 0 and 1")
        if self.grace < timedelta(0):
            raise InvalidInputError("grace", "must not be negative")
        if self.lapse_after < timedelta(0):
            raise InvalidInputError("lapse_after", "must not be negative")
        if not self.prior_strength > 0:
            raise InvalidInputError("prior_strength", "must be greater than 0")
        if not 0 < self.prior_mean < 1:
            raise InvalidInputError("prior_mean", "must be strictly between 0 and 1")

    def as_dict(self) -> dict[str, Any]:
        """The policy as plain values (durations stay `timedelta`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScoringPolicy:
        """Rebuild a policy from `as_dict()` output."""
        return cls(**values)


DEFAULT_REMINDERS: Final = (timedelta(hours=24), timedelta(hours=1))
"""Lead times of `reminder.due_soon` for a promise with a due time and no `reminders` of its own."""

DEFAULT_FOLLOW_UP_AFTER: Final = timedelta(hours=1)
"""How long after its due time an open promise gets a `promise.follow_up`."""
