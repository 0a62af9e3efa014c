"""How report rows that are not plain columns are encoded: a scoring policy as JSON values."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from typing import Any, Final

from domain.policy import ScoringPolicy

_DURATIONS: Final = frozenset(
    f.name for f in fields(ScoringPolicy) if isinstance(f.default, timedelta)
)


def policy_values(policy: ScoringPolicy) -> dict[str, Any]:
    """The policy as JSON-ready values (durations in seconds)."""
    return {
        name: value.total_seconds() if isinstance(value, timedelta) else value
        for name, value in policy.as_dict().items()
    }


def policy_from_values(values: dict[str, Any]) -> ScoringPolicy:
    """The policy `policy_values` encoded."""
    return ScoringPolicy.from_dict(
        {k: timedelta(seconds=v) if k in _DURATIONS else v for k, v in values.items()}
    )
