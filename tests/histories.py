"""A tenant history with a bit of everything the log can hold, for export and dashboard tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.application import Ledger
from domain.person import QuietHours
from domain.policy import ScoringPolicy
from domain.promise import PromiseStatus, PromiseTerms
from projections.report_reader import ReportReader
from projections.views import ReportViewStore, SubjectKey
from service.api.reports import present
from tests.clock import T0

NOW = T0 + timedelta(days=60)
INSTANTS = (None, T0 + timedelta(days=10), T0 + timedelta(days=25), T0 + timedelta(days=40))


def record_everything(ledger: Ledger, tenant: str) -> None:
    """Ann's promises to Ben and Cat over five weeks: kept, late, broken, renegotiated,
    released, lapsed, lapses superseded, a correction, a policy change; Dev has two open."""
    ledger.update_person(tenant, "ann", at=T0, timezone="Europe/Berlin")
    ledger.update_person(tenant, "ann", at=T0, quiet_hours=QuietHours("22:00", "07:00"))
    for i in range(14):
        made = T0 + timedelta(days=3 * i, hours=i)
        ledger.make_promise(
            PromiseTerms(
                tenant=tenant,
                key=f"p{i}",
                promiser="ann",
                promisee="ben" if i % 2 else "cat",
                category="home" if i % 3 else None,
                title=f"Promise number {i}",
                details="with details" if i == 1 else None,
                made_at=made,
                due_at=made + timedelta(days=1),
                timezone="Europe/Berlin" if i == 2 else None,
                reminders=(timedelta(hours=1),) if i % 4 == 0 else (),
            )
        )
        _settle(ledger, tenant, f"p{i}", i, made)
        if i == 6:
            policy = ScoringPolicy(grace=timedelta(hours=6), half_life=timedelta(days=21))
            ledger.change_scoring_policy(tenant, policy)
    ledger.correct_outcome(
        tenant, "p0", outcome=PromiseStatus.BROKEN, at=T0 + timedelta(hours=22), reason="disputed"
    )
    ledger.update_person(tenant, "ann", at=T0 + timedelta(days=20), timezone="America/New_York")
    for key, due in (("d1", None), ("d2", T0 + timedelta(days=50))):
        ledger.make_promise(
            PromiseTerms(
                tenant=tenant,
                key=key,
                promiser="dev",
                title=f"Dev's {key}",
                made_at=T0 + timedelta(days=45),
                due_at=due,
            )
        )


def _settle(ledger: Ledger, tenant: str, key: str, i: int, made: datetime) -> None:
    kind = i % 7
    if kind in (0, 1):
        ledger.keep_promise(tenant, key, at=made + timedelta(hours=20), note=f"done {i}")
    elif kind == 2:
        ledger.keep_promise(tenant, key, at=made + timedelta(days=2), reported_by="cat")
    elif kind == 3:
        ledger.break_promise(tenant, key, at=made + timedelta(hours=30), reason="overslept")
    elif kind == 4:
        ledger.renegotiate_promise(
            tenant, key, due_at=made + timedelta(days=2), at=made + timedelta(hours=2)
        )
        ledger.release_promise(tenant, key, at=made + timedelta(days=1), reason="not needed")
    elif kind == 5:
        ledger.lapse_promise(tenant, key, now=made + timedelta(days=3))
        ledger.keep_promise(tenant, key, at=made + timedelta(hours=12))
    else:
        ledger.lapse_promise(tenant, key, now=made + timedelta(days=3))


def every_report(reader: ReportReader, store: ReportViewStore, tenant: str) -> dict[Any, Any]:
    """Every subject's report, now and as at several instants, as the API presents them."""
    reports = {}
    for key in store.tenant_subjects(tenant):
        for as_of in INSTANTS:
            report = reader.report(key, now=NOW, as_of=as_of)
            name = (key.kind, key.person, key.other, as_of)
            reports[name] = None if report is None else present(report)
    return reports


def subjects(store: ReportViewStore, tenant: str) -> set[tuple[str, str, str]]:
    """The tenant's subjects without the tenant's name."""
    return {(k.kind, k.person, k.other) for k in store.tenant_subjects(tenant)}


def promiser(tenant: str, person: str) -> SubjectKey:
    """A person's own subject."""
    return SubjectKey(tenant, "promiser", person)
