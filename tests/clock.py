"""The fixed business time tests start from (a Monday, 09:00 UTC)."""

from datetime import UTC, datetime

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
