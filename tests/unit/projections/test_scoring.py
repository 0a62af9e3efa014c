"""The consistency score of the scoring specification, by hand and against running sums."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.policy import ScoringPolicy
from projections.scoring import (
    DecayedSums,
    OutcomeKind,
    Score,
    ScoredOutcome,
    credit_and_mass,
    score_at,
    score_from_sums,
)
from tests.clock import T0

POLICY = ScoringPolicy()
HALF_LIFE = POLICY.half_life
DAY = timedelta(days=1)


def outcome(kind: OutcomeKind, days_ago: float = 0, order: int = 0) -> ScoredOutcome:
    return ScoredOutcome(kind, T0 - days_ago * DAY, order)


def score(*outcomes: ScoredOutcome, policy: ScoringPolicy = POLICY) -> Score:
    return score_at(outcomes, T0, policy)


def test_credit_and_mass_follow_the_specification_table() -> None:
    policy = ScoringPolicy(late_credit=0.25, broken_weight=3.0)
    assert credit_and_mass(OutcomeKind.KEPT, policy) == (1.0, 1.0)
    assert credit_and_mass(OutcomeKind.KEPT_LATE, policy) == (0.25, 1.0)
    assert credit_and_mass(OutcomeKind.BROKEN, policy) == (0.0, 3.0)
    assert credit_and_mass(OutcomeKind.LAPSED, policy) == (0.0, 3.0)
    assert credit_and_mass(OutcomeKind.RELEASED, policy) is None


def test_breaches_and_keeps_are_told_apart() -> None:
    assert [k for k in OutcomeKind if k.is_breach] == [OutcomeKind.BROKEN, OutcomeKind.LAPSED]
    assert [k for k in OutcomeKind if k.is_kept] == [OutcomeKind.KEPT, OutcomeKind.KEPT_LATE]


def test_with_no_evidence_the_score_is_50() -> None:
    # K = N = 0: 100 * (2 * 0.5 + 0) / (2 + 0) = 50.
    assert (score().value, score().evidence) == (50.0, 0.0)


def test_the_band_with_no_evidence_is_the_priors() -> None:
    # a = b = 1: mean = 0.5, sd = sqrt(1 / (4 * 3)) = 0.288675;
    # band = 0.5 -/+ 1.2816 * 0.288675 = 0.130034 .. 0.869966.
    result = score()
    assert result.low == pytest.approx(13.0034, abs=1e-4)
    assert result.high == pytest.approx(86.9966, abs=1e-4)


def test_one_kept_promise_now_scores_two_thirds() -> None:
    # K = 1, N = 1: 100 * (1 + 1) / (2 + 1) = 66.67.
    result = score(outcome(OutcomeKind.KEPT))
    assert result.value == pytest.approx(200 / 3)
    assert result.evidence == 1.0


def test_a_broken_promise_weighs_twice_a_kept_one() -> None:
    # One broken: K = 0, N = 2: 100 * 1 / 4 = 25; with one kept too: K = 1, N = 3: 100 * 2 / 5.
    assert score(outcome(OutcomeKind.BROKEN)).value == pytest.approx(25.0)
    both = score(outcome(OutcomeKind.KEPT, order=1), outcome(OutcomeKind.BROKEN, order=2))
    assert both.value == pytest.approx(40.0)
    assert both.evidence == pytest.approx(3.0)


def test_a_breach_thirty_days_ago_weighs_as_much_as_a_kept_promise_now() -> None:
    # K = 1, N = 1 + 2 * 0.5 = 2: 100 * (2 * 0.5 + 1) / (2 + 2) = 50.
    result = score(outcome(OutcomeKind.KEPT), outcome(OutcomeKind.BROKEN, days_ago=30))
    assert result.value == pytest.approx(50.0)
    assert result.evidence == pytest.approx(2.0)


def test_a_lapsed_promise_counts_as_a_broken_one() -> None:
    # K = 0, N = 2: 100 * 1 / 4 = 25.
    assert score(outcome(OutcomeKind.LAPSED)).value == pytest.approx(25.0)


def test_a_late_keep_earns_the_late_credit() -> None:
    # K = 0.5, N = 1: 100 * (1 + 0.5) / (2 + 1) = 50; with late_credit 0.8: 100 * 1.8 / 3 = 60.
    assert score(outcome(OutcomeKind.KEPT_LATE)).value == pytest.approx(50.0)
    generous = ScoringPolicy(late_credit=0.8)
    assert score(outcome(OutcomeKind.KEPT_LATE), policy=generous).value == pytest.approx(60.0)


def test_a_released_promise_contributes_nothing() -> None:
    released = score(outcome(OutcomeKind.RELEASED))
    assert released == score()
    with_kept = score(outcome(OutcomeKind.KEPT), outcome(OutcomeKind.RELEASED, order=1))
    assert with_kept == score(outcome(OutcomeKind.KEPT))


def test_without_new_evidence_the_score_drifts_back_to_50() -> None:
    # One kept, 30 days ago: K = N = 0.5: 100 * 1.5 / 2.5 = 60; 60 days: 100 * 1.25 / 2.25.
    kept = outcome(OutcomeKind.KEPT)
    assert score_at([kept], T0, POLICY).value == pytest.approx(200 / 3)
    assert score_at([kept], T0 + 30 * DAY, POLICY).value == pytest.approx(60.0)
    assert score_at([kept], T0 + 60 * DAY, POLICY).value == pytest.approx(500 / 9)
    assert score_at([kept], T0 + 3000 * DAY, POLICY).value == pytest.approx(50.0)
    broken = outcome(OutcomeKind.BROKEN)
    # K = 0, N = 2 * 0.5 = 1: 100 * 1 / 3.
    assert score_at([broken], T0 + 30 * DAY, POLICY).value == pytest.approx(100 / 3)


def test_the_half_life_comes_from_the_policy() -> None:
    # Half-life 10 days, one kept 20 days ago: K = N = 0.25: 100 * 1.25 / 2.25.
    fast = ScoringPolicy(half_life=timedelta(days=10))
    result = score(outcome(OutcomeKind.KEPT, days_ago=20), policy=fast)
    assert result.value == pytest.approx(500 / 9)


def test_the_prior_comes_from_the_policy() -> None:
    # P = 4, mu0 = 0.25, one kept now: 100 * (4 * 0.25 + 1) / (4 + 1) = 40.
    sceptical = ScoringPolicy(prior_strength=4.0, prior_mean=0.25)
    assert score(policy=sceptical).value == pytest.approx(25.0)
    assert score(outcome(OutcomeKind.KEPT), policy=sceptical).value == pytest.approx(40.0)


def test_outcomes_after_the_evaluation_instant_are_ignored() -> None:
    future = ScoredOutcome(OutcomeKind.BROKEN, T0 + timedelta(seconds=1), 0)
    assert score(future) == score()


def test_the_band_of_one_kept_promise() -> None:
    # a = 1 + 1 = 2, b = 1: mean = 2/3, sd = sqrt(2 / (9 * 4)) = 0.235702;
    # band = 0.666667 -/+ 1.2816 * 0.235702 = 0.364591 .. 0.968743.
    result = score(outcome(OutcomeKind.KEPT))
    assert result.low == pytest.approx(36.4591, abs=1e-4)
    assert result.high == pytest.approx(96.8743, abs=1e-4)


def test_the_band_is_clamped_to_100() -> None:
    # Ten kept now: a = 11, b = 1: mean = 11/12 = 0.916667, sd = sqrt(11 / (144 * 13)) = 0.076656;
    # mean + 1.2816 * sd = 1.0149 -> 1; mean - 1.2816 * sd = 0.818425.
    result = score(*(outcome(OutcomeKind.KEPT, order=i) for i in range(10)))
    assert result.value == pytest.approx(100 * 11 / 12)
    assert result.high == 100.0
    assert result.low == pytest.approx(81.8425, abs=1e-4)


def test_the_band_narrows_with_evidence() -> None:
    one = score(outcome(OutcomeKind.KEPT), outcome(OutcomeKind.BROKEN, order=1))
    many = score(
        *(
            outcome(k, order=i)
            for i, k in enumerate([OutcomeKind.KEPT] * 20 + [OutcomeKind.BROKEN] * 20)
        )
    )
    assert many.high - many.low < one.high - one.low
    assert many.low < many.value < many.high


def test_running_sums_rebase_to_a_later_outcome() -> None:
    # Kept 30 days ago, then kept now: t_ref moves to now, the old one counts 0.5.
    sums = DecayedSums().add(T0 - 30 * DAY, 1.0, 1.0, HALF_LIFE).add(T0, 1.0, 1.0, HALF_LIFE)
    assert sums.t_ref == T0
    assert sums.at(T0, HALF_LIFE) == pytest.approx((1.5, 1.5))
    # Thirty days on, both halve.
    assert sums.at(T0 + 30 * DAY, HALF_LIFE) == pytest.approx((0.75, 0.75))


def test_running_sums_take_an_earlier_outcome_at_its_decayed_weight() -> None:
    # A broken promise 30 days before t_ref adds 2 * 0.5 = 1 to N and nothing to K.
    sums = DecayedSums().add(T0, 1.0, 1.0, HALF_LIFE).add(T0 - 30 * DAY, 0.0, 2.0, HALF_LIFE)
    assert sums.t_ref == T0
    assert sums.at(T0, HALF_LIFE) == pytest.approx((1.0, 2.0))


def test_removing_an_outcome_undoes_adding_it() -> None:
    base = DecayedSums().add(T0 - 10 * DAY, 1.0, 1.0, HALF_LIFE)
    corrected = base.add(T0, 0.0, 2.0, HALF_LIFE).remove(T0, 0.0, 2.0, HALF_LIFE)
    assert corrected.at(T0, HALF_LIFE) == pytest.approx(base.at(T0, HALF_LIFE))


def test_empty_sums_read_as_zero_at_any_time() -> None:
    assert DecayedSums().at(T0, HALF_LIFE) == (0.0, 0.0)


def test_sums_cannot_be_read_before_their_reference_instant() -> None:
    sums = DecayedSums().add(T0, 1.0, 1.0, HALF_LIFE)
    with pytest.raises(ValueError, match="before t_ref"):
        sums.at(T0 - timedelta(seconds=1), HALF_LIFE)


def test_merged_sums_equal_sums_of_all_outcomes() -> None:
    early = DecayedSums().add(T0 - 40 * DAY, 1.0, 1.0, HALF_LIFE)
    late = DecayedSums().add(T0 - 10 * DAY, 0.0, 2.0, HALF_LIFE)
    everything = early.add(T0 - 10 * DAY, 0.0, 2.0, HALF_LIFE)
    assert early.merge(late, HALF_LIFE).at(T0, HALF_LIFE) == pytest.approx(
        everything.at(T0, HALF_LIFE)
    )
    assert late.merge(early, HALF_LIFE).at(T0, HALF_LIFE) == pytest.approx(
        everything.at(T0, HALF_LIFE)
    )
    assert early.merge(DecayedSums(), HALF_LIFE) == early


def test_residue_below_zero_from_removals_reads_as_no_evidence() -> None:
    assert score_from_sums(-1e-17, -2e-17, POLICY) == score()


KINDS = st.sampled_from(list(OutcomeKind))
SECONDS = st.integers(0, 400 * 86400)
POLICIES = st.builds(
    ScoringPolicy,
    half_life=st.integers(3600, 90 * 86400).map(lambda s: timedelta(seconds=s)),
    broken_weight=st.floats(0.5, 5.0),
    late_credit=st.floats(0.0, 1.0),
    prior_strength=st.floats(0.5, 10.0),
    prior_mean=st.floats(0.05, 0.95),
)


def assert_scores_close(actual: Score, expected: Score) -> None:
    # Tiny absolute slack: removals leave rounding residue where the exact answer is 0.
    for name in ("value", "low", "high", "evidence"):
        assert math.isclose(
            getattr(actual, name), getattr(expected, name), rel_tol=1e-9, abs_tol=1e-9
        ), name


@st.composite
def deliveries(
    draw: st.DrawFn,
) -> tuple[list[ScoredOutcome], list[tuple[bool, ScoredOutcome]], datetime]:
    """Current outcomes, and a shuffled delivery of them with duplicates and corrections."""
    current = [
        ScoredOutcome(kind, T0 + timedelta(seconds=s), order)
        for order, (kind, s) in enumerate(draw(st.lists(st.tuples(KINDS, SECONDS), max_size=25)))
    ]
    pairs: list[ScoredOutcome] = []
    for item in current:
        if draw(st.booleans()):
            pairs.append(item)  # delivered twice, the duplicate taken out again
        if draw(st.booleans()):
            replaced = ScoredOutcome(draw(KINDS), T0 + timedelta(seconds=draw(SECONDS)), item.order)
            pairs.append(replaced)  # an outcome later corrected to the current one
    ops = [(True, item) for item in current] + [(True, item) for item in pairs]
    ops += [(False, item) for item in pairs]
    order = draw(st.permutations(range(len(ops))))
    position = {op: place for place, op in enumerate(order)}
    # Each removal must follow its addition; swapping keeps the shuffle otherwise intact.
    for index in range(len(pairs)):
        add, remove = len(current) + index, len(current) + len(pairs) + index
        if position[remove] < position[add]:
            position[add], position[remove] = position[remove], position[add]
    shuffled = [ops[op] for op in sorted(position, key=position.__getitem__)]
    latest = max((item.at for _, item in ops), default=T0)
    return current, shuffled, latest + timedelta(seconds=draw(SECONDS))


@given(delivery=deliveries(), policy=POLICIES)
def test_running_sums_in_any_delivery_order_match_the_score_from_scratch(
    delivery: tuple[list[ScoredOutcome], list[tuple[bool, ScoredOutcome]], datetime],
    policy: ScoringPolicy,
) -> None:
    current, shuffled, when = delivery
    sums = DecayedSums()
    for is_add, item in shuffled:
        weights = credit_and_mass(item.kind, policy)
        if weights is not None:
            change = sums.add if is_add else sums.remove
            sums = change(item.at, *weights, policy.half_life)
    k, n = sums.at(when, policy.half_life)
    assert_scores_close(score_from_sums(k, n, policy), score_at(current, when, policy))


@given(
    items=st.lists(st.tuples(KINDS, SECONDS), max_size=25),
    when=SECONDS,
    policy=POLICIES,
)
def test_the_score_stays_within_its_band_and_0_to_100(
    items: list[tuple[OutcomeKind, int]], when: int, policy: ScoringPolicy
) -> None:
    outcomes = [ScoredOutcome(k, T0 + timedelta(seconds=s), i) for i, (k, s) in enumerate(items)]
    result = score_at(outcomes, T0 + timedelta(seconds=when), policy)
    assert 0 <= result.low <= result.value <= result.high <= 100
    assert result.evidence >= 0


@given(seconds=st.integers(0, 10**9), kind=st.sampled_from([OutcomeKind.KEPT, OutcomeKind.BROKEN]))
def test_time_only_moves_the_score_toward_the_prior(seconds: int, kind: OutcomeKind) -> None:
    single = [ScoredOutcome(kind, datetime(2026, 1, 1, tzinfo=UTC), 0)]
    now = score_at(single, datetime(2026, 1, 1, tzinfo=UTC), POLICY).value
    later = score_at(
        single, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds), POLICY
    ).value
    assert abs(later - 50) <= abs(now - 50)
