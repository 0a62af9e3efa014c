"""A small HTTP load generator: keep-alive connections in several processes.

Closed loop by default: each connection sends its next request as soon as the last one is
answered, so the server is kept saturated and latency is what a queue of that many callers
sees. With `rate`, each connection instead sends on a fixed schedule (the connections evenly
out of phase, `rate` requests per second in all), and a request's latency runs from when it
was due, not from when it went out: one answered late delays the ones after it, and that
wait is counted (no coordinated omission).
"""

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
    *,
    pacing: tuple[float, float] | None,
) -> None:
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(len(requests)))
    first = time.perf_counter()

    def loop(thread: int) -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=30)
        sent = 0
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            path, body, headers = requests[index]
            started = time.perf_counter()
            if pacing is not None:
                # (interval between one connection's requests, offset of this process)
                interval, offset = pacing
                started = first + offset + interval * (sent + thread / threads)
                sent += 1
                time.sleep(max(started - time.perf_counter(), 0.0))
            conn.request("POST" if body else "GET", path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(elapsed)
        conn.close()

    started = time.monotonic()
    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((statuses, latencies, time.monotonic() - started))


def run_load(
    base: str,
    requests: Sequence[Request],
    *,
    seconds: float,
    processes: int = 2,
    threads: int = 8,
    rate: float | None = None,
) -> LoadResult:
    """Send `requests` (each once, split across processes) for at most `seconds`, closed
    loop or, with `rate`, `rate` requests per second on a fixed schedule."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    share = len(requests) // processes
    connections = processes * threads
    workers = [
        multiprocessing.Process(
            target=_worker,
            args=(
                base,
                requests[i * share : (i + 1) * share],
                seconds,
                threads,
                out,
            ),
            kwargs={"pacing": None if rate is None else (connections / rate, i / rate)},
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
