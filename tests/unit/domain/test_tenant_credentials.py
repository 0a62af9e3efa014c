"""Tenants: registration, API keys (stored hashed), webhook secrets and scoring policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.application import Ledger, Principal, TenantCredentials
from domain.credentials import DEFAULT_SCOPES, Scope, hash_api_key
from domain.errors import (
    ApiKeyNotFoundError,
    AuthenticationError,
    InvalidInputError,
    TenantAlreadyExistsError,
)
from domain.identity import tenant_id
from domain.policy import ScoringPolicy
from tests.clock import T0


def test_a_new_tenant_gets_one_key_with_default_scopes_and_one_webhook_secret(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    assert ledger.authenticate(tenant.api_key) == Principal(tenant.tenant, DEFAULT_SCOPES)
    assert tenant.api_key.startswith(f"tk_{tenant.tenant}_{tenant.key_id}_")
    assert tenant.webhook_secret.startswith("whsec_")
    assert len(tenant.webhook_secret.removeprefix("whsec_")) == 44  # base64 of 32 bytes
    assert ledger.webhook_secrets(tenant.tenant, at=T0) == [tenant.webhook_secret]


def test_tenant_names_are_unique(ledger: Ledger, tenant: TenantCredentials) -> None:
    with pytest.raises(TenantAlreadyExistsError):
        ledger.register_tenant(tenant.tenant, at=T0)


def test_the_store_keeps_only_the_hash_of_an_api_key(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    stored = b"".join(n.state for n in ledger.recorder.select_notifications(start=1, limit=100))
    assert tenant.api_key.encode() not in stored
    assert hash_api_key(tenant.api_key).encode() in stored


@pytest.mark.parametrize(
    "token",
    [
        "",
        "tk_",
        "not-a-key",
        "tk_abc_def",
        "Bearer tk_x_y_z",
        "tk_no-such-tenant_abc_def",
        "tk_a b_c_d",
    ],
)
def test_malformed_or_unknown_keys_do_not_authenticate(
    ledger: Ledger, tenant: TenantCredentials, token: str
) -> None:
    with pytest.raises(AuthenticationError):
        ledger.authenticate(token)


def test_a_key_cannot_be_moved_to_another_tenant(ledger: Ledger, tenant: TenantCredentials) -> None:
    other = ledger.register_tenant("other", at=T0)
    assert ledger.authenticate(tenant.api_key).tenant == tenant.tenant
    forged = tenant.api_key.replace(f"tk_{tenant.tenant}_", f"tk_{other.tenant}_", 1)
    with pytest.raises(AuthenticationError):
        ledger.authenticate(forged)


def test_a_tampered_key_does_not_authenticate(ledger: Ledger, tenant: TenantCredentials) -> None:
    tampered = tenant.api_key[:-1] + ("A" if tenant.api_key[-1] != "A" else "B")
    with pytest.raises(AuthenticationError):
        ledger.authenticate(tampered)


def test_a_revoked_key_stops_working_and_others_keep_working(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    admin = ledger.issue_api_key(tenant.tenant, scopes=frozenset({Scope.ADMIN}), at=T0)
    assert ledger.authenticate(admin.api_key).scopes == {Scope.ADMIN}
    ledger.revoke_api_key(tenant.tenant, tenant.key_id, at=T0)
    with pytest.raises(AuthenticationError):
        ledger.authenticate(tenant.api_key)
    assert ledger.authenticate(admin.api_key).scopes == {Scope.ADMIN}
    summary = ledger.tenant(tenant.tenant)
    revoked = {k.key_id: k.revoked_at for k in summary.api_keys}
    assert revoked == {tenant.key_id: T0, admin.key_id: None}


def test_revoking_an_unknown_key_is_not_found(ledger: Ledger, tenant: TenantCredentials) -> None:
    with pytest.raises(ApiKeyNotFoundError):
        ledger.revoke_api_key(tenant.tenant, "nope", at=T0)


def test_a_key_needs_a_scope(ledger: Ledger, tenant: TenantCredentials) -> None:
    with pytest.raises(InvalidInputError):
        ledger.issue_api_key(tenant.tenant, scopes=frozenset(), at=T0)


def test_a_rotated_secret_stays_valid_for_the_grace_period_only(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    rotated_at = T0 + timedelta(days=3)
    new = ledger.rotate_webhook_secret(tenant.tenant, at=rotated_at, grace=timedelta(hours=24))
    assert new != tenant.webhook_secret
    during = ledger.webhook_secrets(tenant.tenant, at=rotated_at + timedelta(hours=23))
    assert during == [new, tenant.webhook_secret]
    after = ledger.webhook_secrets(tenant.tenant, at=rotated_at + timedelta(hours=24))
    assert after == [new]


def test_rotating_twice_does_not_extend_an_older_secrets_life(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.rotate_webhook_secret(tenant.tenant, at=T0, grace=timedelta(hours=1))
    ledger.rotate_webhook_secret(tenant.tenant, at=T0 + timedelta(minutes=30))
    later = ledger.webhook_secrets(tenant.tenant, at=T0 + timedelta(hours=2))
    assert tenant.webhook_secret not in later
    assert len(later) == 2


def test_the_default_scoring_policy_is_the_specifications(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    policy = ledger.scoring_policy(tenant.tenant)
    assert policy == ScoringPolicy(
        half_life=timedelta(days=30),
        broken_weight=2.0,
        late_credit=0.5,
        grace=timedelta(0),
        lapse_after=timedelta(hours=24),
        prior_strength=2.0,
        prior_mean=0.5,
    )


def test_a_changed_scoring_policy_survives_reloading(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    policy = ScoringPolicy(half_life=timedelta(days=14), broken_weight=3.0)
    ledger.change_scoring_policy(tenant.tenant, policy)
    assert ledger.scoring_policy(tenant.tenant) == policy
    assert not ledger.change_scoring_policy(tenant.tenant, policy).is_new


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"half_life": timedelta(0)}, "half_life"),
        ({"broken_weight": 0.0}, "broken_weight"),
        ({"late_credit": 1.5}, "late_credit"),
        ({"grace": timedelta(seconds=-1)}, "grace"),
        ({"prior_mean": 1.0}, "prior_mean"),
        ({"prior_strength": 0.0}, "prior_strength"),
    ],
)
def test_nonsensical_policies_are_rejected(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        ScoringPolicy(**changes)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_tenants_are_listed_in_registration_order(ledger: Ledger) -> None:
    for name in ("b", "a", "c"):
        ledger.register_tenant(name, at=T0)
    assert list(ledger.tenant_names()) == ["b", "a", "c"]
    assert ledger.tenant("a").tenant_id == tenant_id("a")


@pytest.mark.parametrize("name", ["my_clinic", "a_b_c", "x", "clinic.north:2@eu-1"])
def test_keys_of_tenants_with_any_valid_name_authenticate(ledger: Ledger, name: str) -> None:
    created = ledger.register_tenant(name, at=T0)
    assert ledger.authenticate(created.api_key) == Principal(name, DEFAULT_SCOPES)
    issued = ledger.issue_api_key(name, scopes=frozenset({Scope.ADMIN}), at=T0)
    assert ledger.authenticate(issued.api_key) == Principal(name, frozenset({Scope.ADMIN}))
