"""Where a webhook may be sent: http(s) on ports 80/443 to public addresses only (SSRF guard).

Addresses are checked after resolving, at every send, and the connection goes to the address
that was checked (so a DNS answer that changes between check and connect cannot redirect it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from domain.errors import InvalidInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
DEFAULT_PORTS: Final = frozenset({80, 443})

# is_global is True for some of these (multicast, documentation leftovers, embedded IPv4):
# the deny list is explicit rather than trusting one flag.
DENIED_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0 which reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",
        "2001::/23",  # IETF protocol assignments, incl. Teredo
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")
IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")


class TargetRefusedError(Exception):
    """The URL may not be called: scheme, port, or an address that is not public."""


@dataclass(frozen=True)
class Target:
    """A checked destination: the addresses to connect to (in the resolver's order) and the
    name for the Host header and TLS SNI."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    path: str

    @property
    def address(self) -> str:
        """The first address to try."""
        return self.addresses[0]

    @property
    def host_header(self) -> str:
        """The Host header (the port only when it is not the scheme's default)."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, IPv4-compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether `address` is a public unicast address (after unwrapping embedded IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address.scope_id:
            return False
    if any(address in network for network in DENIED_NETWORKS):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (numeric forms like 2130706433 included)."""
    infos: list[tuple[Any, ...]] = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_target(
    url: str,
    *,
    allow_private: bool = False,
    resolver: Resolver = system_resolver,
    ports: frozenset[int] = DEFAULT_PORTS,
) -> Target:
    """Check `url` and resolve it to one public address; TargetRefusedError otherwise.

    Every resolved address must be public (an attacker's name may list a private one beside
    a public one). `allow_private` (TROTH_ALLOW_PRIVATE_TARGETS, local development and tests)
    lifts the address check and the port restriction.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefusedError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefusedError("only http and https URLs are allowed")
    port = port or (443 if parts.scheme == "https" else 80)
    if not allow_private and port not in ports:
        raise TargetRefusedError(f"port {port} is not allowed (only {sorted(ports)})")
    host = parts.hostname
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as error:
        raise TargetRefusedError(f"host {host!r} does not resolve") from error
    if not addresses:
        raise TargetRefusedError(f"host {host!r} does not resolve")
    checked: list[str] = []
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0] if allow_private else raw)
        if not allow_private and not is_public(address):
            raise TargetRefusedError(f"host {host!r} resolves to a non-public address")
        checked.append(str(address))
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port, tuple(checked), path)


def check_address(url: str, *, allow_private: bool = False) -> None:
    """Refuse, when a subscription is made, what no send could ever reach: other schemes and
    ports, `localhost`, and literal non-public addresses (also numeric forms like
    2130706433). Names are resolved only when sending, so this needs no DNS; raises
    `InvalidInputError` naming `url`."""
    try:
        resolve_target(url, allow_private=allow_private, resolver=_numeric_only)
    except _NotNumericError:
        host = (urlsplit(url).hostname or "").rstrip(".")
        if not allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise InvalidInputError("url", "must not point at this host") from None
    except TargetRefusedError as error:
        raise InvalidInputError("url", str(error)) from None


class _NotNumericError(Exception):
    """The host is a name, to be resolved when sending."""


def _numeric_only(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        raise _NotNumericError(host) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
