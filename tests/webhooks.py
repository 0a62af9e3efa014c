"""Signing test deliveries exactly as a sender using the reference library would."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook


def envelope(kind: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """A Standard Webhooks envelope."""
    return {"type": kind, "timestamp": (at or datetime.now(UTC)).isoformat(), "data": data}


def signed(
    secret: str,
    body: bytes | dict[str, Any],
    *,
    msg_id: str | None = None,
    sent_at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body as bytes and headers signed by the `standardwebhooks` library itself."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    sent_at = sent_at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, sent_at, raw.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return raw, headers


def made(promise_id: str = "p1", **changes: Any) -> dict[str, Any]:
    """`promise.made` data with sensible defaults, due tomorrow."""
    data: dict[str, Any] = {
        "promise_id": promise_id,
        "promiser": "alex",
        "promisee": "sam",
        "title": "Call when I land",
        "due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    data.update(changes)
    return data
