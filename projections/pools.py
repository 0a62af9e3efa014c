"""PostgreSQL connection pools that come back soon after an outage; the views' stores' pools,
built one way.

psycopg_pool retries a lost connection in the background, waiting twice as long before each
attempt (1, 2, 4, ... s) for up to `reconnect_timeout` (five minutes by default): after a
minute-long outage its next attempt could be half a minute away, and a pool whose every
connection is in such an attempt serves nothing until then, although the database is back.
Giving up on a background attempt after RECONNECT_SECONDS instead means that the next request
needing a connection starts a fresh attempt at once. The event store library builds its pool
itself; `recover_soon` sets the same limit on it.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final
from weakref import WeakKeyDictionary

from psycopg import Connection
from psycopg_pool import ConnectionPool

RECONNECT_SECONDS: Final = 10.0
TRUSTED_SECONDS: Final = 1.0
Pool = ConnectionPool[Connection[tuple[Any, ...]]]
_handed_out: WeakKeyDictionary[Connection[Any], float] = WeakKeyDictionary()


def recover_soon(pool: ConnectionPool[Any]) -> None:
    """Make `pool` give up on background reconnects after RECONNECT_SECONDS (see above)."""
    pool.reconnect_timeout = RECONNECT_SECONDS


def check_if_idle(conn: Connection[Any]) -> None:
    """The pool's check before handing out `conn`: a round trip to the server if `conn` was
    last handed out TRUSTED_SECONDS ago or more (it may have died idle, in an outage, say),
    none if sooner. Pinging every time cost a report a fifth of its time; a connection that
    breaks in use is discarded when it comes back to the pool."""
    now = time.monotonic()
    last = _handed_out.get(conn)
    if last is None or now - last >= TRUSTED_SECONDS:
        ConnectionPool.check_connection(conn)
    _handed_out[conn] = now


def open_pool(
    conninfo: str,
    *,
    name: str,
    size: int,
    connect_timeout: float,
    options: str | None = None,
    autocommit: bool = False,
    wait_timeout: float = 30.0,
) -> Pool:
    """An open pool of 1 to `size` checked connections; waits `connect_timeout` for the first.

    `wait_timeout` bounds how long a request waits for a free connection.
    """
    kwargs: dict[str, Any] = {"connect_timeout": max(1, math.ceil(connect_timeout))}
    if options is not None:
        kwargs["options"] = options
    if autocommit:
        kwargs["autocommit"] = True
    pool: Pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=size,
        kwargs=kwargs,
        check=check_if_idle,
        timeout=wait_timeout,
        reconnect_timeout=RECONNECT_SECONDS,
        name=name,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=connect_timeout)
    except BaseException:
        pool.close()
        raise
    return pool
