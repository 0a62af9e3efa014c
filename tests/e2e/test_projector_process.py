"""`troth projector` as Kubernetes runs it: a metrics and liveness listener beside the work."""

from __future__ import annotations

import time
from pathlib import Path

from tests.servers import create_tenant, free_port, request, start, stop, troth_env
from tests.stores import unique_name

TOKEN = "metrics-token-for-tests"


def test_the_projector_serves_liveness_and_its_metrics_and_stops_with_0(tmp_path: Path) -> None:
    port = free_port()
    env = troth_env(
        f"sqlite:///{tmp_path}/troth.db", TROTH_METRICS_PORT=str(port), TROTH_METRICS_TOKEN=TOKEN
    )
    assert start(["migrate"], env, tmp_path / "migrate.log").wait(timeout=60) == 0
    create_tenant(env, unique_name())
    projector = start(["projector"], env, tmp_path / "projector.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        body = b""
        while b"troth_projector_events_applied_total 0.0" in body or not body:
            assert time.monotonic() < deadline, (tmp_path / "projector.log").read_text()
            time.sleep(0.2)
            try:
                status, _, body = request(
                    base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                )
            except OSError:
                continue
            assert status == 200
        assert b"troth_projector_lag_events 0.0" in body
        assert request(base + "/healthz")[0] == 200
        assert request(base + "/metrics")[0] == 401
        assert request(base + "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
    finally:
        assert stop(projector) == 0
