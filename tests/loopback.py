"""What the test servers (Kubernetes API, OPA) share: HTTP/1.1 on 127.0.0.1, a thread each."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


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


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1, port 0, run on a daemon thread for one test.

    Handlers reach their server as `self.server.owner`. Subclasses name their handler class
    and may extend `start`/`stop` for state of their own.
    """

    def __init__(self) -> None:
        self._stopping = threading.Event()  # set on stop: wakes handlers sleeping in a fault
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[LoopbackHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
