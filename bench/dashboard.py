"""Dashboard, export and import, each next to a baseline from the same run.

Usage: python bench/dashboard.py [--promises N] [--calls N] [--postgres [URL]]

Fills a fresh store with bench/reports.py's history (one person, two years, default 2,000
promises) and times:

- the dashboard page (`GET …/dashboard`, HTML with two charts, sections and history) against
  the JSON report of the same person (`GET …/report`) through the same Flask app;
- `export_envelopes` over the tenant's log against reading and decoding the same
  notifications without turning them into envelopes;
- `import_envelopes` of that export into an empty tenant against the first recording of the
  same history with bench.history's batch path (500 use cases per unit of work, promises
  prefetched).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

from bench.history import record
from bench.reports import NOW, PERSON, T0, TENANT, latencies, ms, workload
from bench.stores import DEFAULT_POSTGRES, each_store
from domain.application import Ledger
from service.app import create_app
from service.bootstrap import bootstrap
from service.settings import Settings
from service.tenant_export import TOPICS, export_envelopes
from service.tenant_import import import_envelopes


def run(name: str, settings: Settings, promises: int, calls: int) -> None:
    components = bootstrap(settings, clock=lambda: NOW)
    try:
        ledger = components.ledger
        created = ledger.register_tenant(TENANT, at=T0 - timedelta(days=1))
        steps = workload(promises)
        started = time.perf_counter()
        record(ledger, steps)
        record_s = time.perf_counter() - started
        components.projector.catch_up()
        client = create_app(settings, components).test_client()
        auth = {"Authorization": f"Bearer {created.api_key}"}
        base = f"/v1/tenants/{TENANT}/people/{PERSON}"
        assert client.get(f"{base}/dashboard", headers=auth).status_code == 200
        page = latencies(lambda: client.get(f"{base}/dashboard", headers=auth), calls)
        report = latencies(lambda: client.get(f"{base}/report", headers=auth), calls)
        print(
            f"{name:9s} dashboard: p50 {ms(page, 50):6.1f} ms  p95 {ms(page, 95):6.1f} ms | "
            f"JSON report (baseline): p50 {ms(report, 50):6.1f} ms  "
            f"p95 {ms(report, 95):6.1f} ms | p50 ratio {ms(page, 50) / ms(report, 50):.1f}"
        )

        started = time.perf_counter()
        lines = [json.dumps(e) for e in export_envelopes(ledger, TENANT)]
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        decoded = _decode_all(ledger)
        decode_s = time.perf_counter() - started
        print(
            f"{name:9s} export: {len(lines) / export_s:8,.0f} events/s | read and decode "
            f"(baseline): {decoded / decode_s:8,.0f} events/s | ratio "
            f"{decode_s / export_s:.2f} | {len(lines)} events"
        )

        ledger.register_tenant("copy", at=T0 - timedelta(days=1))
        started = time.perf_counter()
        summary = import_envelopes(ledger, "copy", lines, clock=lambda: NOW)
        import_s = time.perf_counter() - started
        print(
            f"{name:9s} import: {summary.recorded / import_s:8,.0f} events/s | the same "
            f"history recorded in batches (baseline): {len(steps) / record_s:8,.0f} use cases/s"
            f" | ratio {record_s / import_s:.2f}"
        )
    finally:
        components.close()


def _decode_all(ledger: Ledger) -> int:
    count, start, head = 0, 1, ledger.head_position()
    while start <= head:
        page = ledger.recorder.select_notifications(
            start=start, limit=1000, stop=head, topics=TOPICS
        )
        for notification in page:
            ledger.mapper.to_domain_event(notification)
            count += 1
        start = page[-1].id + 1 if len(page) == 1000 else head + 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--promises", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None)
    args = parser.parse_args()
    for name, settings in each_store(args.postgres):
        run(name, settings, args.promises, args.calls)


if __name__ == "__main__":
    main()
