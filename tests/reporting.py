"""A ledger, its report views and projector on in-memory persistence, for projection tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from domain.application import Ledger, TenantCredentials
from domain.promise import PromiseTerms
from projections.projector import Projector
from projections.report_popo import POPOReportViewStore
from projections.report_reader import Report, ReportReader
from projections.views import SubjectKey
from service.settings import Settings
from tests.clock import T0


@dataclass
class World:
    """One tenant's ledger with the report views following it."""

    ledger: Ledger
    store: POPOReportViewStore
    projector: Projector
    reader: ReportReader
    credentials: TenantCredentials

    @classmethod
    def create(cls, batch_size: int = 1000) -> World:
        ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
        store = POPOReportViewStore()
        projector = Projector(ledger.recorder, ledger.mapper, store, batch_size=batch_size)
        credentials = ledger.register_tenant("acme", at=T0 - timedelta(days=365))
        return cls(ledger, store, projector, ReportReader(store), credentials)

    @property
    def tenant(self) -> str:
        """The tenant's name."""
        return self.credentials.tenant

    def make(
        self,
        key: str,
        *,
        at: datetime,
        due: timedelta | None = timedelta(days=1),
        promiser: str = "ann",
        **terms: Any,
    ) -> None:
        self.ledger.make_promise(
            PromiseTerms(
                tenant=self.tenant,
                key=key,
                promiser=promiser,
                title=f"promise {key}",
                made_at=at,
                due_at=None if due is None else at + due,
                **terms,
            )
        )

    def report(self, person: str = "ann", **query: Any) -> Report:
        self.projector.catch_up()
        key = SubjectKey(self.tenant, "promiser", person)
        if "promisee" in query:
            key = SubjectKey(self.tenant, "pair", person, query.pop("promisee"))
        elif "category" in query:
            key = SubjectKey(self.tenant, "category", person, query.pop("category"))
        query.setdefault("now", T0 + timedelta(days=60))
        report = self.reader.report(key, **query)
        assert report is not None, f"no report for {key}"
        return report

    def close(self) -> None:
        self.store.close()
        self.ledger.close()


def assert_same(actual: Any, expected: Any, path: str = "report") -> None:
    """Equal, except floats only to 1e-9 (running sums and from-scratch sums round apart)."""
    if isinstance(expected, float):
        assert isinstance(actual, float), path
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), (
            f"{path}: {actual} != {expected}"
        )
    elif is_dataclass(expected) and not isinstance(expected, type):
        assert type(actual) is type(expected), path
        for f in fields(expected):
            assert_same(getattr(actual, f.name), getattr(expected, f.name), f"{path}.{f.name}")
    elif isinstance(expected, tuple | list):
        assert len(actual) == len(expected), f"{path}: {actual} != {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def as_shown(report: Report | None) -> Report | None:
    """The report without how its promises arrived (log positions, recording times)."""
    if report is None:
        return None
    keys = tuple(p.key for p in report.open_promises)
    overdue = tuple(p.key for p in report.overdue_promises)
    return replace(report, open_promises=keys, overdue_promises=overdue)  # type: ignore[arg-type]
