"""A small closed-loop HTTP load generator: keep-alive connections in several processes."""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Request = tuple[str, bytes, dict[str, str]]  # path, body, headers


@dataclass(frozen=True)
class LoadResult:
    """How many requests completed in how long, and which statuses came back."""

    completed: int
    seconds: float
    statuses: dict[int, int]
    latencies: list[float]

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.completed / self.seconds


def _worker(
    base: str,
    requests: Sequence[Request],
    seconds: float,
    threads: int,
    out: multiprocessing.Queue[Any],
) -> None:
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(len(requests)))

    def loop() -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            path, body, headers = requests[index]
            started = time.perf_counter()
            conn.request("POST" if body else "GET", path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(elapsed)
        conn.close()

    started = time.monotonic()
    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((statuses, latencies, time.monotonic() - started))


def run_load(
    base: str, requests: Sequence[Request], *, seconds: float, processes: int = 2, threads: int = 8
) -> LoadResult:
    """Send `requests` (each once, split across processes) for at most `seconds`."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    share = len(requests) // processes
    workers = [
        multiprocessing.Process(
            target=_worker,
            args=(base, requests[i * share : (i + 1) * share], seconds, threads, out),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    longest = 0.0
    for _ in workers:
        part_statuses, part_latencies, elapsed = out.get()
        for status, count in part_statuses.items():
            statuses[status] = statuses.get(status, 0) + count
        latencies.extend(part_latencies)
        longest = max(longest, elapsed)
    for worker in workers:
        worker.join()
    return LoadResult(sum(statuses.values()), longest, statuses, latencies)
