"""Read-your-writes for view-backed reads: `?after=<position>` waits for the projector."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import ServiceUnavailable

from service.context import components


def wait_for_position(arguments: dict[str, Any]) -> None:
    """Hold the request until the views include `after` (bounded); 503 + Retry-After if not."""
    after = arguments.get("after")
    if after is None:
        return
    built = components()
    if not built.projector.wait_for(after, built.settings.read_wait_ms / 1000):
        error = ServiceUnavailable("The reports have not caught up with that position yet.")
        error.retry_after = 1
        raise error
