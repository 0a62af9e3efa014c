"""The composition root: builds everything a process needs from `Settings`, once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.application import Ledger
from projections.deliveries import DeliveryStore
from projections.delivery_projection import DeliveryProjector
from projections.due_work import DueWorkStore
from projections.projector import Projector
from projections.report_reader import ReportReader
from projections.views import ReportViewStore
from service.delivery.sender import Sender
from service.delivery.worker import DeliveryWorker
from service.metrics import Metrics
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
    deliveries: DeliveryStore
    delivery_projector: DeliveryProjector
    delivery_worker: DeliveryWorker
    metrics: Metrics = field(default_factory=Metrics)

    def close(self) -> None:
        """Release connections and pools."""
        self.delivery_worker.close()
        self.deliveries.close()
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
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )
    if db.kind == "sqlite":
        from projections.report_sqlite import SQLiteReportViewStore

        return SQLiteReportViewStore(db.path)
    from projections.report_popo import POPOReportViewStore

    store = POPOReportViewStore()
    store.create_tables()
    return store


def pipelines_projector(settings: Settings) -> bool:
    """Whether the projector reads and writes in threads of their own while it applies a
    batch: worth it where they wait on a database server. SQLite's reads and writes are
    in-process and mostly Python under the GIL (measured: no faster with a writer thread),
    and an in-memory store's are all Python."""
    return settings.database.kind == "postgres"


def build_due_work(settings: Settings) -> DueWorkStore:
    """The due-work store of the configured backend (the scheduler's and `troth migrate`'s)."""
    db = settings.database
    if db.kind == "postgres":
        from projections.due_work_postgres import PostgresDueWorkStore

        return PostgresDueWorkStore(
            db.conninfo(), schema=db.schema or "public", connect_timeout=settings.db_connect_timeout
        )
    if db.kind == "sqlite":
        from projections.due_work_sqlite import SQLiteDueWorkStore

        return SQLiteDueWorkStore(db.path)
    from projections.due_work_popo import POPODueWorkStore

    return POPODueWorkStore()


def build_delivery_store(settings: Settings) -> DeliveryStore:
    """The deliveries view store of the configured backend (SQLite in memory for `memory:`)."""
    db = settings.database
    if db.kind == "postgres":
        from projections.delivery_postgres import PostgresDeliveryStore

        return PostgresDeliveryStore(
            db.conninfo(),
            schema=db.schema or "public",
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout,
        )
    from projections.delivery_sqlite import SQLiteDeliveryStore

    if db.kind == "sqlite":
        return SQLiteDeliveryStore(db.path)
    store = SQLiteDeliveryStore(":memory:")
    store.create_tables()
    return store


def bootstrap(settings: Settings, clock: Callable[[], datetime] = system_clock) -> Components:
    """Build the components for `settings`; never creates tables (that is `troth migrate`)."""
    ledger = Ledger(env=settings.eventsourcing_env(Ledger.name))
    _bound_statements(ledger, settings)
    ingestion = Ingestion(ledger, clock)
    views = build_views(settings)
    deliveries = build_delivery_store(settings)
    delivery_projector = DeliveryProjector(ledger.recorder, ledger.mapper, deliveries)
    sender = Sender(allow_private=settings.allow_private_targets)
    metrics = Metrics(settings.metrics_dir)
    return Components(
        settings=settings,
        ledger=ledger,
        clock=clock,
        ingestion=ingestion,
        batches=BatchIngestion(ingestion),
        views=views,
        reader=ReportReader(views),
        projector=Projector(
            ledger.recorder,
            ledger.mapper,
            views,
            batch_size=settings.projector_batch_size,
            pipelined=pipelines_projector(settings),
        ),
        deliveries=deliveries,
        delivery_projector=delivery_projector,
        delivery_worker=DeliveryWorker(
            ledger,
            deliveries,
            delivery_projector,
            sender,
            threads=settings.delivery_threads,
            metrics=metrics,
        ),
        metrics=metrics,
    )


def _bound_statements(ledger: Ledger, settings: Settings) -> None:
    """Give the event store's PostgreSQL sessions a statement timeout.

    The library's settings bound the wait for a pooled connection and for locks, but not a
    statement stuck on a server that stopped answering; without this a request could hang
    far beyond the database timeouts and never get its 503. The pool opens lazily, so
    every connection it makes carries the option.
    """
    datastore = getattr(ledger.recorder, "datastore", None)
    if settings.database.kind != "postgres" or datastore is None:
        return
    timeout = max(settings.db_statement_timeout_ms, 0)
    datastore.pool.kwargs["options"] = f"-c statement_timeout={timeout}"
