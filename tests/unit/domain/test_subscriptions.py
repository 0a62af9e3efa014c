"""Subscriptions: created with a secret, rotated with overlap, disabled, enabled, deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.application import Ledger, TenantCredentials
from domain.errors import InvalidInputError, SubscriptionNotFoundError
from domain.subscription import Subscription
from tests.clock import T0

HOOK = "https://hooks.example.com/troth"


def test_a_subscription_signs_with_its_secret(ledger: Ledger, tenant: TenantCredentials) -> None:
    created = ledger.create_subscription(
        tenant.tenant, url=HOOK, types=["promise.due", "*"], description=None, at=T0
    )
    subscription = ledger.subscription(tenant.tenant, created.subscription_id)
    assert subscription.secrets_valid_at(T0) == [created.secret]
    assert subscription.types == ("*", "promise.due")
    assert subscription.is_active


def test_after_rotation_both_secrets_sign_until_the_grace_ends(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    created = ledger.create_subscription(
        tenant.tenant, url=HOOK, types=["*"], description=None, at=T0
    )
    new = ledger.rotate_subscription_secret(
        tenant.tenant, created.subscription_id, at=T0, grace=timedelta(hours=1)
    )
    subscription = ledger.subscription(tenant.tenant, created.subscription_id)
    assert subscription.secrets_valid_at(T0 + timedelta(minutes=59)) == [new, created.secret]
    assert subscription.secrets_valid_at(T0 + timedelta(hours=1)) == [new]


def test_disable_enable_and_delete(ledger: Ledger, tenant: TenantCredentials) -> None:
    created = ledger.create_subscription(
        tenant.tenant, url=HOOK, types=["*"], description=None, at=T0
    )
    sub = created.subscription_id
    ledger.disable_subscription(tenant.tenant, sub, reason="410 Gone", at=T0)
    again = ledger.disable_subscription(tenant.tenant, sub, reason="410 Gone", at=T0)
    assert not again.is_new
    assert ledger.subscription(tenant.tenant, sub).disabled_reason == "410 Gone"
    ledger.enable_subscription(tenant.tenant, sub, at=T0)
    assert ledger.subscription(tenant.tenant, sub).is_active
    ledger.delete_subscription(tenant.tenant, sub, at=T0)
    with pytest.raises(SubscriptionNotFoundError):
        ledger.subscription(tenant.tenant, sub)


def test_another_tenants_subscription_is_not_found(ledger: Ledger) -> None:
    one = ledger.register_tenant("one", at=T0).tenant
    two = ledger.register_tenant("two", at=T0).tenant
    created = ledger.create_subscription(one, url=HOOK, types=["*"], description=None, at=T0)
    with pytest.raises(SubscriptionNotFoundError):
        ledger.subscription(two, created.subscription_id)


@pytest.mark.parametrize(
    ("url", "types"),
    [
        ("hooks.example.com/x", ["*"]),
        ("https://u:p@hooks.example.com/", ["*"]),
        ("https://hooks.example.com/#frag", ["*"]),
        ("https://hooks.example.com:0/", ["*"]),
        (HOOK, []),
        (HOOK, ["promise due"]),
    ],
)
def test_bad_subscriptions_are_rejected_naming_the_field(url: str, types: list[str]) -> None:
    with pytest.raises(InvalidInputError) as raised:
        Subscription.create(
            "acme",
            subscription_id="sub_0123456789abcdef",
            url=url,
            types=types,
            description=None,
            secret="whsec_x",
            at=T0,
        )
    assert raised.value.field == ("url" if types and types != ["promise due"] else "types")
