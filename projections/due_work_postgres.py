"""The due-work store on PostgreSQL: a small connection pool, tables in the Troth schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from projections.due_work_sql import SQLDueWorkStore
from projections.pools import open_pool

T = TypeVar("T")


class PostgresDueWorkStore(SQLDueWorkStore):
    """The due-work tables in `schema`."""

    def __init__(
        self, conninfo: str, schema: str = "public", pool_size: int = 2, connect_timeout: float = 5
    ) -> None:
        self.prefix = f'"{schema}".troth_due_' if '"' not in schema else "troth_due_"
        self._pool = open_pool(
            conninfo, name="troth-due-work", size=pool_size, connect_timeout=connect_timeout
        )

    def _transaction(self, work: Callable[[Any], T]) -> T:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            return work(cursor)

    def close(self) -> None:
        self._pool.close()
