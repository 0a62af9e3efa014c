"""The delivery worker as tests run it: on a bootstrap's components, without retry jitter."""

from __future__ import annotations

from service.bootstrap import Components
from service.delivery.sender import Sender
from service.delivery.worker import DeliveryWorker
from service.metrics import Metrics


def steady_worker(
    components: Components,
    *,
    allow_private: bool = True,
    threads: int = 2,
    metrics: Metrics | None = None,
) -> DeliveryWorker:
    """A worker whose retries fall exactly on the schedule (no jitter)."""
    return DeliveryWorker(
        components.ledger,
        components.deliveries,
        components.delivery_projector,
        Sender(allow_private=allow_private),
        jitter=lambda: 0.0,
        threads=threads,
        metrics=metrics,
    )
