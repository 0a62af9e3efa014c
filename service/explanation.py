"""The score explained in plain, respectful words (for reports and dashboards)."""

from __future__ import annotations

from projections.report_reader import Report


def explain(report: Report) -> str:
    """One or two sentences saying why the score is what it is."""
    recent = report.recent
    kept = recent.kept + recent.kept_late
    score = round(report.score.value)
    low, high = round(report.score.low), round(report.score.high)
    start = round(100 * report.policy.prior_mean)
    if report.score.evidence == 0:
        return (
            f"No promise has an outcome yet, so the score starts at {start}. "
            "It moves as promises are kept or broken."
        )
    parts = [f"{kept} kept"]
    if recent.kept_late:
        parts[0] += f" ({recent.kept_late} of them late)"
    if recent.broken:
        parts.append(f"{recent.broken} broken")
    if recent.lapsed:
        parts.append(f"{recent.lapsed} with no outcome reported")
    if recent.released:
        parts.append(f"{recent.released} released")
    activity = ", ".join(parts)
    return (
        f"In the last 30 days: {activity}. Score {score} of 100 (likely between {low} and {high}). "
        f"Recent promises count most; without new ones the score drifts back toward {start}, "
        "so trust is shown again and again."
    )
