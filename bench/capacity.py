"""Capacity plan: where each limit of a deployment is reached, from the measured figures.

Usage: python bench/capacity.py [--ingest 1771] [--projector 7377] [--report-ms 2.6] ...

Not a measurement: a calculation over the single-node figures of docs/benchmarks.md (pass
newer ones as options), printing for rising sustained event rates how many API pods, database
connections and PostgreSQL clusters a deployment needs, and which limit binds first. The model
(docs/scaling.md explains each line):

- API pods scale out: each takes `--ingest` single deliveries/s (or `--batch` events/s);
- every pod holds workers x 2 pools x pool size connections; a PostgreSQL cluster allows
  `--max-connections` (a pooler such as PgBouncer multiplies that, at the cost of a hop);
- one projector per event log applies at most `--projector` events/s: above it, the views'
  lag grows without bound, so that is the ceiling of one cluster's sustained write rate;
- one cluster's primary commits at most `--primary-commits` transactions/s (an assumption
  to replace with a measurement of the production database, not measured here);
- reports read the views: `--report-ms` per report per core, on the primary or on read
  replicas of `--replica-cores` cores each.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

RATES = (50, 100, 250, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 25_000, 50_000)


@dataclass(frozen=True)
class Figures:
    """The measured (or assumed) single-node figures the plan is computed from."""

    ingest: float  # single deliveries/s per API pod
    batch: float  # events/s per API pod through NDJSON batches
    projector: float  # events/s one projector applies
    report_ms: float  # milliseconds per current report, per core
    primary_commits: float  # transactions/s one PostgreSQL primary sustains (assumed)
    max_connections: int  # per PostgreSQL cluster, minus superuser reserve
    workers: int  # gunicorn workers per API pod
    pool_size: int  # connections per pool (two pools per worker)
    replica_cores: int  # cores per read replica
    reports_per_event: float  # reports read per event written
    headroom: float  # fraction of each limit planned to be used


@dataclass(frozen=True)
class Plan:
    """What a sustained rate of events needs."""

    rate: float
    clusters: int
    api_pods: int
    connections_per_cluster: int
    needs_pooler: bool
    replicas_per_cluster: int


def connections_per_pod(f: Figures) -> int:
    """Every gunicorn worker holds an event-store pool and a views pool."""
    return f.workers * 2 * f.pool_size


def fixed_connections(f: Figures) -> int:
    """The projector's and the scheduler's two pools, per cluster."""
    return 2 * 2 * f.pool_size


def limits(f: Figures) -> dict[str, float]:
    """The sustained event rate (events/s) at which each limit of one cluster is reached."""
    pods_without_pooler = (f.max_connections - fixed_connections(f)) // connections_per_pod(f)
    return {
        "database connections without a pooler "
        f"({pods_without_pooler} API pods)": pods_without_pooler * f.ingest * f.headroom,
        "one projector per event log": f.projector * f.headroom,
        "HPA maxReplicas 8 of k8s/base/api-hpa.yaml": 8 * f.ingest * f.headroom,
        "primary commits/s (assumed)": f.primary_commits * f.headroom,
    }


def plan(rate: float, f: Figures) -> Plan:
    """The smallest deployment that sustains `rate` single-delivery events/s."""
    # Tenants are partitioned across clusters: each has its own log, projector and primary.
    per_cluster_ceiling = f.headroom * min(f.projector, f.primary_commits)
    clusters = max(1, math.ceil(rate / per_cluster_ceiling))
    api_pods = max(3, math.ceil(rate / (f.headroom * f.ingest)))
    # A pod routes each tenant to its cluster, so it holds pools to every cluster; spread
    # evenly, each cluster sees its share of the pods' connections.
    connections = math.ceil(api_pods * connections_per_pod(f) / clusters) + fixed_connections(f)
    reports = rate * f.reports_per_event / clusters
    per_replica = f.headroom * f.replica_cores * 1000 / f.report_ms
    # The primary serves reports too, up to one replica's worth.
    replicas = max(0, math.ceil(reports / per_replica) - 1)
    return Plan(rate, clusters, api_pods, connections, connections > f.max_connections, replicas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest", type=float, default=1_771.0)
    parser.add_argument("--batch", type=float, default=12_820.0)
    parser.add_argument("--projector", type=float, default=7_377.0)
    parser.add_argument("--report-ms", type=float, default=2.6)
    parser.add_argument("--primary-commits", type=float, default=10_000.0)
    parser.add_argument("--max-connections", type=int, default=97)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument("--replica-cores", type=int, default=4)
    parser.add_argument("--reports-per-event", type=float, default=1.0)
    parser.add_argument("--headroom", type=float, default=0.7)
    args = parser.parse_args()
    f = Figures(
        ingest=args.ingest,
        batch=args.batch,
        projector=args.projector,
        report_ms=args.report_ms,
        primary_commits=args.primary_commits,
        max_connections=args.max_connections,
        workers=args.workers,
        pool_size=args.pool_size,
        replica_cores=args.replica_cores,
        reports_per_event=args.reports_per_event,
        headroom=args.headroom,
    )
    print(f"figures: {f}")
    print(
        f"one API pod: {f.ingest:,.0f} deliveries/s or {f.batch:,.0f} batched events/s, "
        f"{connections_per_pod(f)} connections; one core of reports: "
        f"{1000 / f.report_ms:,.0f} reports/s; planning at {f.headroom:.0%} of every limit"
    )
    print("\nlimits of one PostgreSQL cluster, in the order they are reached:")
    for name, rate in sorted(limits(f).items(), key=lambda item: item[1]):
        print(f"  {rate:>9,.0f} events/s ({rate * 86_400:>13,.0f} a day)  {name}")
    print(
        f"\n{'events/s':>9} {'clusters':>8} {'API pods':>8} {'conns/cluster':>13} "
        f"{'pooler':>6} {'read replicas/cluster':>21}"
    )
    for rate in RATES:
        p = plan(rate, f)
        print(
            f"{p.rate:>9,.0f} {p.clusters:>8} {p.api_pods:>8} {p.connections_per_cluster:>13} "
            f"{'yes' if p.needs_pooler else 'no':>6} {p.replicas_per_cluster:>21}"
        )


if __name__ == "__main__":
    main()
