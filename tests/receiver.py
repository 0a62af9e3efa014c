"""A real HTTP webhook receiver for tests: a server thread on a free port that answers from a
script and checks every request with the `standardwebhooks` library."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it, and whether the library verified its signature."""

    path: str
    headers: dict[str, str]
    body: bytes
    is_verified: bool
    client_port: int


class Receiver:
    """Answers requests with the scripted replies in order (then 200), recording each."""

    def __init__(self) -> None:
        self.secret = ""
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The URL to subscribe."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/troth?source=test"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`."""
        with self._lock:
            self.replies.extend(replies)

    def _answer(self, path: str, headers: dict[str, str], body: bytes, client_port: int) -> Reply:
        try:
            Webhook(self.secret).verify(body, headers)
            is_verified = True
        except WebhookVerificationError:
            is_verified = False
        with self._lock:
            self.received.append(Received(path, headers, body, is_verified, client_port))
            return self.replies.pop(0) if self.replies else Reply()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Keeps connections open between requests, as most web servers do.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = receiver._answer(self.path, headers, body, self.client_address[1])
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver serving until the block ends."""
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
