"""Everything the dashboard page shows, gathered from the report views and the event log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from markupsafe import Markup

from domain.application import Ledger
from projections.report_reader import ReportReader
from projections.views import PromiseRow, ReportViewStore, SubjectKey
from service.api.reports import present
from service.dashboard.charts import outcomes_chart, score_chart
from service.dashboard.history import HISTORY_LIMIT, HistoryItem, recent_history

MAX_SECTIONS: Final = 24
RECENT_WINDOWS: Final = (timedelta(days=30), timedelta(days=180), timedelta(days=730), None)

HISTORY_WORDS: Final = {
    "made": "Promised",
    "kept": "Kept",
    "kept_late": "Kept, later than agreed",
    "broken": "Not kept",
    "renegotiated": "New time agreed",
    "released": "Released by agreement",
    "lapsed": "No outcome reported",
    "corrected": "Outcome corrected",
}
DIRECTION_WORDS: Final = {
    "improving": "Rising over the last weeks",
    "steady": "Steady over the last weeks",
    "declining": "Lower over the last weeks",
}


@dataclass(frozen=True)
class Section:
    """A short summary towards one promisee or in one category."""

    title: str
    report: dict[str, Any]


@dataclass(frozen=True)
class DashboardPage:
    """The dashboard's content: the report, its charts, the sections and the history."""

    report: dict[str, Any]
    score_chart: Markup
    outcomes_chart: Markup
    promisees: tuple[Section, ...]
    categories: tuple[Section, ...]
    history: tuple[HistoryItem, ...]
    is_past: bool

    def local(self, when: datetime | None, *, with_time: bool = True) -> str:
        """A time as the person reads it: in their time zone, in words."""
        if when is None:
            return ""
        local = when.astimezone(ZoneInfo(self.report["timezone"]))
        day = f"{local:%a} {local.day} {local:%b %Y}"
        return f"{day}, {local:%H:%M}" if with_time else day

    @staticmethod
    def words(kind: str) -> str:
        """What a history entry's kind says to people."""
        return HISTORY_WORDS.get(kind, kind)

    @staticmethod
    def direction(direction: str) -> str:
        """The trend's direction in words."""
        return DIRECTION_WORDS.get(direction, direction)


def _recently_active(views: ReportViewStore, key: SubjectKey, now: datetime) -> list[PromiseRow]:
    """The open promises and those settled lately: enough to hold the newest history.

    The history wants the promises with the latest activity (the outcome time, or when made
    while open). Once `HISTORY_LIMIT` of them are active since a cut-off, nothing older can
    be among the newest, so a long record need not be read whole.
    """
    open_ = views.subject_promises(key, status="open")
    for window in RECENT_WINDOWS:
        since = None if window is None else now - window
        settled = {
            (o.tenant, o.key) for o in views.subject_outcomes(key, since=since) if o.at <= now
        }
        active = len(settled) + sum(since is None or p.made_at >= since for p in open_)
        if window is None or active >= HISTORY_LIMIT:
            return [*open_, *views.promises(settled).values()]
    raise AssertionError("the last window is unbounded")


def build_page(
    *,
    reader: ReportReader,
    views: ReportViewStore,
    ledger: Ledger,
    key: SubjectKey,
    report: dict[str, Any],
    now: datetime,
    as_of: datetime | None,
) -> DashboardPage:
    """Gather the page for subject `key`, whose report (as JSON values) is `report`."""
    when = report["as_of"]
    promisees: list[Section] = []
    categories: list[Section] = []
    if key.kind == "promiser":
        for other in views.tenant_subjects(key.tenant, key.person):
            if other.kind == "promiser" or len(promisees) + len(categories) >= MAX_SECTIONS:
                continue
            section = reader.report(other, now=now, as_of=as_of, weeks=1)
            if section is None or section.counts.made == 0:
                continue
            if other.kind == "pair":
                promisees.append(Section(f"Promises to {other.other}", present(section)))
            else:
                categories.append(Section(f"About {other.other}", present(section)))
    rows = views.subject_promises(key) if as_of is not None else _recently_active(views, key, when)
    history = recent_history(ledger, rows, until=when)
    weeks = report["trend"]["weeks"]
    return DashboardPage(
        report=report,
        score_chart=score_chart(weeks),
        outcomes_chart=outcomes_chart(weeks),
        promisees=tuple(sorted(promisees, key=lambda s: s.title)),
        categories=tuple(sorted(categories, key=lambda s: s.title)),
        history=tuple(history),
        is_past=as_of is not None,
    )
