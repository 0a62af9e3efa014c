"""The due-work store on PostgreSQL: a small connection pool, tables in the Troth schema."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from psycopg import Connection
from psycopg_pool import ConnectionPool

from projections.due_work_sql import SQLDueWorkStore

T = TypeVar("T")


class PostgresDueWorkStore(SQLDueWorkStore):
    """The due-work tables in `schema`."""

    def __init__(
        self, conninfo: str, schema: str = "public", pool_size: int = 2, connect_timeout: float = 5
    ) -> None:
        self.prefix = f'"{schema}".troth_due_' if '"' not in schema else "troth_due_"
        self._pool: ConnectionPool[Connection[tuple[Any, ...]]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": max(1, math.ceil(connect_timeout))},
            check=ConnectionPool.check_connection,
            name="troth-due-work",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except BaseException:
            self._pool.close()
            raise

    def _transaction(self, work: Callable[[Any], T]) -> T:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            return work(cursor)

    def close(self) -> None:
        self._pool.close()
