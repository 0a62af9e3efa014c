"""When to try a webhook again: the Standard Webhooks schedule, jitter and Retry-After."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

DELAYS: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS: Final = len(DELAYS) + 1  # the first attempt, then one per delay
JITTER: Final = 0.10
RETRY_AFTER_MIN: Final = timedelta(seconds=1)
RETRY_AFTER_MAX: Final = timedelta(hours=24)


def next_attempt_at(attempts: int, now: datetime, jitter: float) -> datetime | None:
    """After `attempts` failed attempts (the last at `now`), when to try again; None when the
    schedule is spent. `jitter` in [0, 1) adds up to 10% to the delay."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = DELAYS[attempts - 1]
    return now + delay * (1 + JITTER * min(max(jitter, 0.0), 1.0))


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` header (seconds or an HTTP date) as a delay clamped to 1 s .. 24 h."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=min(int(value), int(RETRY_AFTER_MAX.total_seconds())))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(delay, RETRY_AFTER_MIN), RETRY_AFTER_MAX)
