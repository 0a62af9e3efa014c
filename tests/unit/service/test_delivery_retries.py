"""The retry schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, plus jitter."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.delivery.retries import DELAYS, MAX_ATTEMPTS, next_attempt_at, retry_after
from tests.clock import T0


def test_ten_attempts_span_about_75_hours_without_jitter() -> None:
    now, attempts = T0, 1
    while (later := next_attempt_at(attempts, now, 0.0)) is not None:
        now, attempts = later, attempts + 1
    assert attempts == MAX_ATTEMPTS == 10
    assert now - T0 == timedelta(hours=75, minutes=35, seconds=5)
    assert next_attempt_at(1, T0, 0.0) == T0 + timedelta(seconds=5)
    assert next_attempt_at(9, T0, 0.0) == T0 + timedelta(hours=24)


@given(st.integers(1, MAX_ATTEMPTS - 1), st.floats(0, 1, exclude_max=True))
def test_jitter_adds_at_most_ten_percent(attempts: int, jitter: float) -> None:
    delay = DELAYS[attempts - 1]
    at = next_attempt_at(attempts, T0, jitter)
    assert at is not None
    assert delay <= at - T0 <= delay * 1.1


def test_retry_after_takes_seconds_or_an_http_date_clamped_to_one_second_and_a_day() -> None:
    assert retry_after("120", T0) == timedelta(seconds=120)
    assert retry_after("0", T0) == timedelta(seconds=1)
    assert retry_after("999999999999", T0) == timedelta(hours=24)
    assert retry_after("Mon, 02 Mar 2026 09:10:00 GMT", T0) == timedelta(minutes=10)
    assert retry_after("Mon, 02 Mar 2026 08:00:00 GMT", T0) == timedelta(seconds=1)
    assert retry_after("soon", T0) is None
    assert retry_after(None, T0) is None
