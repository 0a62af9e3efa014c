"""Signatures: the Standard Webhooks test vector, and every failure answered 401 alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from service.webhooks.signatures import SignatureError, sign, verify
from tests.unit.service.conftest import Served
from tests.webhooks import envelope, made, signed

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIME = datetime.fromtimestamp(1614265330, tz=UTC)
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signing_reproduces_the_standard_webhooks_test_vector() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIME, VECTOR_BODY)
    assert headers["webhook-signature"] == VECTOR_SIGNATURE


def test_the_test_vector_verifies_at_its_own_time() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": VECTOR_SIGNATURE,
    }
    assert verify([VECTOR_SECRET], VECTOR_BODY, headers, now=VECTOR_TIME) == VECTOR_ID
    with pytest.raises(SignatureError):
        verify([VECTOR_SECRET], VECTOR_BODY + b" ", headers, now=VECTOR_TIME)


def test_a_delivery_signed_by_the_reference_library_is_recorded(served: Served) -> None:
    body, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    response = served.client.post("/v1/tenants/acme/events", data=body, headers=headers)
    assert response.status_code == 202
    assert response.json == {
        "promise_id": "p1",
        "event": "promise.made",
        "position": served.components.ledger.head_position(),
    }


def test_any_one_of_several_signatures_may_match_and_unknown_versions_are_ignored(
    served: Served,
) -> None:
    body, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    headers["webhook-signature"] = (
        "v2,c29tZXRoaW5n v1,aW52YWxpZHNpZ25hdHVyZQ== " + headers["webhook-signature"]
    )
    response = served.client.post("/v1/tenants/acme/events", data=body, headers=headers)
    assert response.status_code == 202


Delivery = tuple[str, bytes, dict[str, str]]
Tampering = Callable[[Served, str, bytes, dict[str, str]], Delivery]


def _resign(served: Served, body: bytes, minutes: int) -> tuple[bytes, dict[str, str]]:
    sent_at = datetime.now(UTC) + timedelta(minutes=minutes)
    return signed(served.tenant.webhook_secret, json.loads(body), sent_at=sent_at)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


TAMPERINGS: dict[str, Tampering] = {
    "wrong secret": lambda s, t, b, h: (t, *signed("whsec_" + "A" * 43 + "=", json.loads(b))),
    "body changed": lambda s, t, b, h: (t, b.replace(b"Call", b"Text"), h),
    "no signature": lambda s, t, b, h: (t, b, _without(h, "webhook-signature")),
    "no id": lambda s, t, b, h: (t, b, _without(h, "webhook-id")),
    "too old": lambda s, t, b, h: (t, *_resign(s, b, -6)),
    "too new": lambda s, t, b, h: (t, *_resign(s, b, 6)),
    "leading zero timestamp": lambda s, t, b, h: (
        t,
        b,
        {**h, "webhook-timestamp": "0" + h["webhook-timestamp"]},
    ),
    "fractional timestamp": lambda s, t, b, h: (
        t,
        b,
        {**h, "webhook-timestamp": h["webhook-timestamp"] + ".9"},
    ),
    "text timestamp": lambda s, t, b, h: (t, b, {**h, "webhook-timestamp": "yesterday"}),
    "signature without comma": lambda s, t, b, h: (t, b, {**h, "webhook-signature": "v1"}),
    "signature not base64": lambda s, t, b, h: (
        t,
        b,
        {**h, "webhook-signature": "v1,!!!notbase64"},
    ),
    "unknown tenant": lambda s, t, b, h: ("nobody", b, h),
    "body not utf-8": lambda s, t, b, h: (t, b"\xff\xfe" + b, h),
}


@pytest.mark.parametrize("change", list(TAMPERINGS))
def test_every_signature_problem_is_the_same_401(served: Served, change: str) -> None:
    body, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    tenant, body, headers = TAMPERINGS[change](served, "acme", body, headers)
    response = served.client.post(f"/v1/tenants/{tenant}/events", data=body, headers=headers)
    assert response.status_code == 401
    assert response.json == {
        "type": "/problems/unauthorized",
        "title": "Not authenticated",
        "status": 401,
        "detail": "Invalid or missing credentials.",
    }
    assert served.components.ledger.head_position() == served.tenant.position


def test_a_rotated_secret_keeps_working_during_its_grace_period(served: Served) -> None:
    ledger = served.components.ledger
    new_secret = ledger.rotate_webhook_secret("acme", at=datetime.now(UTC))
    for secret, key in [(served.tenant.webhook_secret, "old"), (new_secret, "new")]:
        body, headers = signed(secret, envelope("promise.made", made(key)))
        assert (
            served.client.post("/v1/tenants/acme/events", data=body, headers=headers).status_code
            == 202
        )


def test_an_expired_secret_is_refused(served: Served) -> None:
    ledger = served.components.ledger
    ledger.rotate_webhook_secret(
        "acme", at=datetime.now(UTC) - timedelta(hours=2), grace=timedelta(hours=1)
    )
    body, headers = signed(served.tenant.webhook_secret, envelope("promise.made", made()))
    assert (
        served.client.post("/v1/tenants/acme/events", data=body, headers=headers).status_code == 401
    )
