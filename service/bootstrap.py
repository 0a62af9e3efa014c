"""The composition root: builds everything a process needs from `Settings`, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.application import Ledger
from projections.projector import Projector
from projections.report_reader import ReportReader
from projections.views import ReportViewStore
from service.settings import Settings
from service.webhooks.batch import BatchIngestion
from service.webhooks.inbound import Ingestion


def system_clock() -> datetime:
    """The current instant, timezone-aware UTC (the only place the service reads the clock)."""
    return datetime.now(UTC)


@dataclass
class Components:
    """The built parts of a running Troth process."""

    settings: Settings
    ledger: Ledger
    clock: Callable[[], datetime]
    ingestion: Ingestion
    batches: BatchIngestion
    views: ReportViewStore
    reader: ReportReader
    projector: Projector

    def close(self) -> None:
        """Release connections and pools."""
        self.views.close()
        self.ledger.close()


def build_views(settings: Settings) -> ReportViewStore:
    """The report view store of the configured backend."""
    db = settings.database
    if db.kind == "postgres":
        from projections.report_postgres import PostgresReportViewStore

        return PostgresReportViewStore(
            db.conninfo(),
            schema=db.schema or "public",
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout,
        )
    if db.kind == "sqlite":
        from projections.report_sqlite import SQLiteReportViewStore

        return SQLiteReportViewStore(db.path)
    from projections.report_popo import POPOReportViewStore

    store = POPOReportViewStore()
    store.create_tables()
    return store


def bootstrap(settings: Settings, clock: Callable[[], datetime] = system_clock) -> Components:
    """Build the components for `settings`; never creates tables (that is `troth migrate`)."""
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    ingestion = Ingestion(ledger, clock)
    views = build_views(settings)
    return Components(
        settings=settings,
        ledger=ledger,
        clock=clock,
        ingestion=ingestion,
        batches=BatchIngestion(ingestion),
        views=views,
        reader=ReportReader(views),
        projector=Projector(ledger.recorder, ledger.mapper, views),
    )
