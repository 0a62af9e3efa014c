"""Outgoing webhook deliveries are timed in the metrics, by the class of the answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from service.bootstrap import bootstrap
from service.migration import migrate
from service.settings import Settings
from tests.receiver import Reply, running_receiver
from tests.stores import unique_name
from tests.workers import steady_worker


def test_each_delivery_attempt_is_timed_by_outcome(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/troth.db", allow_private_targets=True)
    migrate(settings)
    components = bootstrap(settings)
    # The library checks signatures' timestamps against the wall clock.
    now = datetime.now(UTC).replace(microsecond=0)
    tenant = unique_name()
    with running_receiver() as receiver:
        components.ledger.register_tenant(tenant, at=now - timedelta(days=1))
        created = components.ledger.create_subscription(
            tenant, url=receiver.url, types=["*"], description="tests", at=now - timedelta(hours=1)
        )
        receiver.secret = created.secret
        receiver.script(Reply(500))
        worker = steady_worker(components, threads=1, metrics=components.metrics)
        components.ledger.queue_message(
            tenant, message_id="m1", type="promise.reminder", at=now, data={"person": "alex"}
        )
        try:
            assert worker.deliver_due(now) == 1
            assert worker.deliver_due(now + timedelta(seconds=5)) == 1
        finally:
            worker.close()
            components.close()
    samples = {
        f"{s.name}{json.dumps(s.labels, sort_keys=True)}": s.value
        for family in text_string_to_metric_families(components.metrics.exposition().decode())
        for s in family.samples
    }
    assert samples['troth_webhook_delivery_duration_seconds_count{"outcome": "5xx"}'] == 1
    assert samples['troth_webhook_delivery_duration_seconds_count{"outcome": "2xx"}'] == 1
