"""Standard Webhooks signatures, verified with the reference library behind strict checks."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from standardwebhooks.webhooks import Webhook

TOLERANCE: Final = timedelta(minutes=5)
WEBHOOK_ID: Final = re.compile(r"[A-Za-z0-9._:@-]{1,256}\Z")
DIGITS: Final = re.compile(r"[0-9]{1,12}\Z")


class SignatureError(Exception):
    """Missing or malformed headers, a stale timestamp, or no matching signature.

    Callers answer every case the same way (401), so a prober learns nothing.
    """


def verify(
    secrets: Sequence[str], body: bytes, headers: Mapping[str, str], *, now: datetime
) -> str:
    """Check `body` against the signature headers at instant `now`; returns the `webhook-id`.

    The reference library computes the signatures. Its own `verify` is not used because it
    reads the wall clock (time here is passed in), raises ValueError or UnicodeDecodeError
    on some malformed input and accepts timestamps like "0<ts>" or "<ts>.9"; the headers
    are therefore validated here first and every failure becomes a SignatureError.
    """
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not WEBHOOK_ID.match(msg_id) or not DIGITS.match(timestamp) or timestamp[0] == "0":
        raise SignatureError("malformed webhook headers")
    sent_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    if abs(now - sent_at) > TOLERANCE:
        raise SignatureError("timestamp outside tolerance")
    presented = _v1_signatures(headers.get("webhook-signature", ""))
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    for secret in secrets:
        expected = base64.b64decode(Webhook(secret).sign(msg_id, sent_at, text).split(",", 1)[1])
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return msg_id
    raise SignatureError("no matching signature")


def _v1_signatures(header: str) -> list[bytes]:
    """The decodable `v1` entries of a signature header; other versions are ignored."""
    found = []
    for entry in header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def sign(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three headers that sign `body` (used for outgoing webhooks and by tests)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, timestamp, body.decode()),
    }
