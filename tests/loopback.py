"""What the test servers (Kubernetes API, OPA) share: an HTTP/1.1 handler on 127.0.0.1."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler
from typing import Any


class LoopbackHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with Go's socket options; subclasses implement `_dispatch`."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect

    def setup(self) -> None:
        super().setup()
        # as Go's net/http does; without it Nagle and delayed ACKs add 40ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests assert on the servers' recorded requests instead

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (timed out): nothing to answer

    def _dispatch(self) -> None:
        raise NotImplementedError
