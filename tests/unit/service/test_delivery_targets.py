"""The SSRF guard: only http(s) on 80/443 to public addresses, checked after resolving."""

from __future__ import annotations

import ipaddress

import pytest

from domain.errors import InvalidInputError
from service.delivery.targets import (
    Resolver,
    TargetRefusedError,
    check_address,
    is_public,
    resolve_target,
    system_resolver,
)


def answering(*addresses: str) -> Resolver:
    """A resolver that answers every name with `addresses` (a stand-in for DNS)."""

    def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "0.0.0.0",  # noqa: S104
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
        "2002:a00:1::1",
        "::127.0.0.1",
        "::10.0.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "2001::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(TargetRefusedError):
        resolve_target("https://hooks.example.com/x", resolver=answering(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    target = resolve_target("https://hooks.example.com/x?a=1", resolver=answering(address))
    assert (target.address, target.host, target.port, target.path) == (
        address,
        "hooks.example.com",
        443,
        "/x?a=1",
    )
    assert target.host_header == "hooks.example.com"


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    with pytest.raises(TargetRefusedError):
        resolve_target("https://a.example/", resolver=answering("93.184.216.34", "10.0.0.1"))


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1"])
def test_numeric_forms_of_loopback_are_refused_after_resolving(host: str) -> None:
    with pytest.raises(TargetRefusedError):
        resolve_target(f"http://{host}/", resolver=system_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:8443/x",
        "http://hooks.example.com:22/",
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "https:///nohost",
    ],
)
def test_other_schemes_and_ports_are_refused(url: str) -> None:
    with pytest.raises(TargetRefusedError):
        resolve_target(url, resolver=answering("93.184.216.34"))


def test_the_development_flag_lifts_the_address_and_port_checks() -> None:
    target = resolve_target(
        "http://localhost:8080/hook", allow_private=True, resolver=answering("127.0.0.1")
    )
    assert (target.address, target.host_header) == ("127.0.0.1", "localhost:8080")


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    with pytest.raises(TargetRefusedError):
        resolve_target("https://nowhere.example/", resolver=failing)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[64:ff9b::a00:1]/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://2130706433/",
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://hooks.example.com:8443/",
    ],
)
def test_subscribing_an_unreachable_url_names_the_url_field(url: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_address(url)
    assert raised.value.field == "url"


def test_subscribing_a_name_defers_resolving_to_each_send() -> None:
    check_address("https://hooks.example.com/troth")
    check_address("http://localhost:8080/hook", allow_private=True)
