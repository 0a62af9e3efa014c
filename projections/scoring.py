"""The consistency score: outcome credit and mass, decayed sums, and the score with its band."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from domain.policy import ScoringPolicy
from projections.frozen import built

BAND_Z = 1.2816
"""The standard normal quantile of 0.9: the band holds the central 80%."""


class OutcomeKind(StrEnum):
    """How a promise ended, as far as scoring is concerned."""

    KEPT = "kept"
    KEPT_LATE = "kept_late"
    BROKEN = "broken"
    LAPSED = "lapsed"
    RELEASED = "released"

    @property
    def is_breach(self) -> bool:
        """Broken or lapsed: the outcomes that end a streak."""
        return self in BREACHES

    @property
    def is_kept(self) -> bool:
        """Kept, on time or late."""
        return self in KEPT


# What `is_breach` and `is_kept` ask, for loops over many outcomes (a set lookup, no call).
BREACHES: Final = frozenset({OutcomeKind.BROKEN, OutcomeKind.LAPSED})
KEPT: Final = frozenset({OutcomeKind.KEPT, OutcomeKind.KEPT_LATE})


@dataclass(frozen=True)
class ScoredOutcome:
    """A promise's current outcome: its kind, outcome time, and recording order (tie-breaker)."""

    kind: OutcomeKind
    at: datetime
    order: int


def credit_and_mass(kind: OutcomeKind, policy: ScoringPolicy) -> tuple[float, float] | None:
    """The outcome's credit `c` and mass `m` from the specification's table; None if released."""
    if kind is OutcomeKind.KEPT:
        return 1.0, 1.0
    if kind is OutcomeKind.KEPT_LATE:
        return policy.late_credit, 1.0
    if kind.is_breach:
        return 0.0, policy.broken_weight
    return None


def _halvings(later: datetime, earlier: datetime, half_life: timedelta) -> float:
    return (later - earlier).total_seconds() / half_life.total_seconds()


@dataclass(frozen=True)
class DecayedSums:
    """The score's sums `K` and `N`, decayed to the reference instant `t_ref` (O(1) state)."""

    t_ref: datetime | None = None
    k: float = 0.0
    n: float = 0.0

    def add(self, at: datetime, credit: float, mass: float, half_life: timedelta) -> DecayedSums:
        """These sums with an outcome at `at` added, in any order relative to earlier adds."""
        return self._shifted(at, credit * mass, mass, half_life)

    def remove(self, at: datetime, credit: float, mass: float, half_life: timedelta) -> DecayedSums:
        """These sums with an earlier-added outcome taken out (a correction or a duplicate)."""
        return self._shifted(at, -credit * mass, -mass, half_life)

    def merge(self, other: DecayedSums, half_life: timedelta) -> DecayedSums:
        """The sums of both sets of outcomes, rebased to the later reference instant."""
        if other.t_ref is None:
            return self
        return self._shifted(other.t_ref, other.k, other.n, half_life)

    def at(self, when: datetime, half_life: timedelta) -> tuple[float, float]:
        """`(K, N)` decayed to `when`; raises ValueError before `t_ref` (recompute instead)."""
        if self.t_ref is None:
            return 0.0, 0.0
        if when < self.t_ref:
            msg = f"cannot read sums at {when.isoformat()}, before t_ref {self.t_ref.isoformat()}"
            raise ValueError(msg)
        factor = 0.5 ** _halvings(when, self.t_ref, half_life)
        return self.k * factor, self.n * factor

    def _shifted(self, at: datetime, dk: float, dn: float, half_life: timedelta) -> DecayedSums:
        running = RunningSums(self)
        running.shift(at, dk, dn, half_life.total_seconds())
        return running.frozen_sums()


class RunningSums:
    """`DecayedSums` changed in place (and the one place their arithmetic is written): the
    projector changes one subject's sums many times in a batch, and a frozen copy per change
    was a cost of its own.

    `shift` takes the change already weighed and the half-life in seconds: the projector adds
    one outcome to up to six sums (three subjects and their weeks) and works them out once.
    """

    __slots__ = ("k", "n", "t_ref")

    def __init__(self, sums: DecayedSums) -> None:
        self.set_sums(sums)

    def set_sums(self, sums: DecayedSums) -> None:
        """Start again from `sums`."""
        self.t_ref, self.k, self.n = sums.t_ref, sums.k, sums.n

    def shift(self, at: datetime, dk: float, dn: float, half_life_seconds: float) -> None:
        """Add `dk` and `dn` at `at`."""
        t_ref = self.t_ref
        if t_ref is None:
            self.t_ref, self.k, self.n = at, dk, dn
        elif at <= t_ref:
            d = 0.5 ** ((t_ref - at).total_seconds() / half_life_seconds)
            self.k += d * dk
            self.n += d * dn
        else:
            # The reference only moves forward, so every factor stays <= 1 and nothing
            # overflows.
            factor = 0.5 ** ((at - t_ref).total_seconds() / half_life_seconds)
            self.t_ref, self.k, self.n = at, self.k * factor + dk, self.n * factor + dn

    def frozen_sums(self) -> DecayedSums:
        """The sums as they stand."""
        return built(DecayedSums, {"t_ref": self.t_ref, "k": self.k, "n": self.n})


@dataclass(frozen=True)
class Score:
    """A consistency score (0..100) with its 80% band and the evidence `N` behind it."""

    value: float
    low: float
    high: float
    evidence: float


def score_from_sums(k: float, n: float, policy: ScoringPolicy) -> Score:
    """The score, band and evidence for decayed sums `K` and `N`."""
    # Removing outcomes from running sums can leave rounding residue just below zero.
    n = max(n, 0.0)
    k = min(max(k, 0.0), n)
    prior, mu0 = policy.prior_strength, policy.prior_mean
    a = prior * mu0 + k
    b = prior * (1 - mu0) + (n - k)
    mean = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return Score(
        value=100 * (prior * mu0 + k) / (prior + n),
        low=100 * min(max(mean - BAND_Z * sd, 0.0), 1.0),
        high=100 * min(max(mean + BAND_Z * sd, 0.0), 1.0),
        evidence=n,
    )


def score_at(outcomes: Iterable[ScoredOutcome], when: datetime, policy: ScoringPolicy) -> Score:
    """The score at `when` from scratch over the outcomes at or before it (the reference)."""
    credits: list[float] = []
    masses: list[float] = []
    for outcome in outcomes:
        weights = credit_and_mass(outcome.kind, policy)
        if weights is None or outcome.at > when:
            continue
        credit, mass = weights
        d = 0.5 ** _halvings(when, outcome.at, policy.half_life)
        credits.append(d * mass * credit)
        masses.append(d * mass)
    return score_from_sums(math.fsum(credits), math.fsum(masses), policy)
