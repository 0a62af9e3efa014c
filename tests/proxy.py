"""A TCP forwarder between Troth and PostgreSQL that a test can sever and restore.

It stands in for a database outage without touching the shared PostgreSQL server: severing
closes every open connection and answers new ones by closing them at once, the way a server
that went away looks to libpq; restoring forwards again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class SeverableProxy:
    """Forwards 127.0.0.1:<port> to `target` until severed."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._severed = False
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def sever(self) -> None:
        """Drop every connection and refuse new ones until `restore()`."""
        with self._lock:
            self._severed = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _hang_up(sock)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._severed = False

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed = True
        self.sever()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                severed = self._severed
            if severed:
                _hang_up(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _hang_up(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _hang_up(source)
            _hang_up(sink)
            with self._lock:
                self._open -= {source, sink}


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
