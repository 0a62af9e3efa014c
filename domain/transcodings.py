"""How domain values that JSON lacks are stored in events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import Transcoding

from domain.policy import ScoringPolicy


class TimedeltaAsSeconds(Transcoding):
    """Durations as float seconds (exact for whole microseconds up to ~285 years)."""

    type = timedelta
    name = "timedelta_s"

    def encode(self, obj: timedelta) -> float:
        return obj.total_seconds()

    def decode(self, data: float) -> timedelta:
        return timedelta(seconds=data)


class ScoringPolicyAsDict(Transcoding):
    """A scoring policy as a dict of its parameters."""

    type = ScoringPolicy
    name = "scoring_policy"

    def encode(self, obj: ScoringPolicy) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> ScoringPolicy:
        return ScoringPolicy.from_dict(data)


TRANSCODINGS: tuple[Transcoding, ...] = (TimedeltaAsSeconds(), ScoringPolicyAsDict())
