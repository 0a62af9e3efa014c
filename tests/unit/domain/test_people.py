"""People: tenant-scoped ids with a time zone and quiet hours, recorded as events."""

from __future__ import annotations

import pytest

from domain.application import Ledger, TenantCredentials
from domain.errors import InvalidInputError, PersonNotFoundError
from domain.person import QuietHours
from tests.clock import T0


def test_a_person_is_utc_without_quiet_hours_until_told(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.update_person(tenant.tenant, "alex", at=T0)
    person = ledger.person(tenant.tenant, "alex")
    assert (person.timezone, person.quiet_hours) == ("UTC", None)


def test_time_zone_and_quiet_hours_are_recorded_and_can_be_cleared(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    ledger.update_person(
        tenant.tenant,
        "alex",
        timezone="Europe/Berlin",
        quiet_hours=QuietHours("22:00", "08:00"),
        at=T0,
    )
    person = ledger.person(tenant.tenant, "alex")
    assert person.timezone == "Europe/Berlin"
    assert person.quiet_hours == QuietHours("22:00", "08:00")
    ledger.update_person(tenant.tenant, "alex", quiet_hours=None, at=T0)
    person = ledger.person(tenant.tenant, "alex")
    assert (person.timezone, person.quiet_hours) == ("Europe/Berlin", None)


def test_repeating_the_same_settings_records_nothing(
    ledger: Ledger, tenant: TenantCredentials
) -> None:
    first = ledger.update_person(tenant.tenant, "alex", timezone="Asia/Tokyo", at=T0)
    again = ledger.update_person(tenant.tenant, "alex", timezone="Asia/Tokyo", at=T0)
    assert first.is_new
    assert not again.is_new
    assert ledger.head_position() == first.position


def test_an_unknown_time_zone_is_rejected(ledger: Ledger, tenant: TenantCredentials) -> None:
    with pytest.raises(InvalidInputError) as raised:
        ledger.update_person(tenant.tenant, "alex", timezone="Not/AZone", at=T0)
    assert raised.value.field == "timezone"


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("25:00", "08:00", "quiet_hours.start"),
        ("22:00", "8am", "quiet_hours.end"),
        ("22:00", "22:00", "quiet_hours.end"),
    ],
)
def test_malformed_quiet_hours_name_the_field(start: str, end: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        QuietHours(start, end)
    assert raised.value.field == field


def test_people_are_scoped_to_their_tenant(ledger: Ledger, tenant: TenantCredentials) -> None:
    other = ledger.register_tenant("other", at=T0)
    ledger.update_person(tenant.tenant, "alex", timezone="Europe/Paris", at=T0)
    with pytest.raises(PersonNotFoundError):
        ledger.person(other.tenant, "alex")
