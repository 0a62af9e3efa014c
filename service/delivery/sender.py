"""One HTTP attempt of a webhook: to the checked address, with timeouts, never following
redirects, keeping only a short excerpt of the answer.

Connections are kept alive per checked address (urllib3's pool manager, least recently used
pools closed first): a busy endpoint gets its messages over a few open connections instead
of a TCP (and TLS) handshake each. The name is still resolved and checked at every send, so
a pool is only ever used for an address that passed the check just now.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import urllib3
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from service.delivery.targets import (
    Resolver,
    Target,
    TargetRefusedError,
    resolve_target,
    system_resolver,
)

CONNECT_TIMEOUT: Final = 5.0
TOTAL_TIMEOUT: Final = 15.0
EXCERPT_BYTES: Final = 1024
USER_AGENT: Final = "Troth-Webhooks/1"
MAX_ADDRESSES: Final = 2
# Endpoints with open connections kept; the least recently used beyond this are closed.
KEPT_ENDPOINTS: Final = 256


@dataclass(frozen=True)
class Answer:
    """What came of one attempt: a status and headers, or an error (refused, timeout, ...)."""

    status: int | None
    latency_ms: int
    excerpt: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    is_refused: bool = False


class Sender:
    """Sends one signed POST; every failure becomes an `Answer`, never an exception."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        connect_timeout: float = CONNECT_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
        connections_per_endpoint: int = 8,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.timeout = urllib3.Timeout(total=total_timeout, connect=connect_timeout)
        self._pools = urllib3.PoolManager(
            num_pools=KEPT_ENDPOINTS,
            maxsize=connections_per_endpoint,
            timeout=self.timeout,
            retries=False,
        )

    def close(self) -> None:
        """Close every kept connection."""
        self._pools.clear()

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST `body` to `url` with `headers`."""
        started = time.perf_counter()
        try:
            target = resolve_target(url, allow_private=self.allow_private, resolver=self.resolver)
        except TargetRefusedError as error:
            return Answer(None, _ms(started), error=f"refused: {error}", is_refused=True)
        request_headers = {
            **headers,
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        # A name with several addresses (say IPv6 and IPv4) gets a second address when the
        # first cannot be connected to; every one of them was checked.
        for address in target.addresses[:MAX_ADDRESSES]:
            try:
                response, excerpt = self._post(target, address, request_headers, body)
            except (NewConnectionError, ConnectTimeoutError) as error:
                failure = error
                continue
            except (HTTPError, OSError) as error:
                return Answer(None, _ms(started), error=_describe(error))
            break
        else:
            return Answer(None, _ms(started), error=_describe(failure))
        return Answer(
            status=response.status,
            latency_ms=_ms(started),
            excerpt=excerpt.decode("utf-8", errors="replace"),
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    def _post(
        self, target: Target, address: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[BaseHTTPResponse, bytes]:
        # Connect to the checked address; the certificate and SNI are for the host name.
        tls = (
            {
                "server_hostname": target.host,
                "assert_hostname": target.host,
                "cert_reqs": "CERT_REQUIRED",
            }
            if target.scheme == "https"
            else {}
        )
        pool = self._pools.connection_from_host(
            address, target.port, target.scheme, pool_kwargs=tls
        )
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=dict(headers),
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            excerpt = response.read(EXCERPT_BYTES + 1, decode_content=False)
        except BaseException:
            response.close()
            raise
        if len(excerpt) > EXCERPT_BYTES:
            # More is coming than is kept: hang up rather than read it to reuse the line.
            response.close()
        response.release_conn()
        return response, excerpt[:EXCERPT_BYTES]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _describe(error: Exception) -> str:
    # The class names what went wrong (timeout, refused, TLS) without echoing URLs or headers.
    reason = getattr(error, "reason", None)
    kind = type(reason if isinstance(reason, Exception) else error).__name__
    return f"{kind}: could not complete the request"
