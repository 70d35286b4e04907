"""The server's TLS context, reloaded when cert-manager rotates the certificate.

cert-manager renews the Secret; the kubelet swaps the mounted files (a symlink flip). A new
pair is loaded into a new context, built as uvicorn builds its own, and every new handshake is
handed to the newest one from the served context's SNI callback (which OpenSSL calls for every
handshake, with a server name or without); connections already open keep theirs. A context in
use is never changed: `load_cert_chain` on it again, as this module first did, sets the new
certificate and then its key, and OpenSSL drops the old key that no longer matches the
certificate, so a handshake in between failed (the running webhook's rotation test failed so
once in CI, the client's handshake ending in EOF). A pair that does not load (a half-written
rotation: the key of one, the certificate of the other) is logged and retried at the next
change, the last good one staying in use.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# How often the files are looked at: a stat each, nothing read unless they changed.
RELOAD_INTERVAL_SECONDS = 1.0


def _stamp(*paths: str) -> tuple[tuple[int, int, int], ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((0, 0, 0))
    return tuple(out)


class CertificateReloader:
    """Watches a certificate/key pair; when it changes, `make` builds a context from it (the
    files as they are then), and the handshakes of `served` use that one from then on."""

    def __init__(
        self,
        served: ssl.SSLContext,
        make: Callable[[], ssl.SSLContext],
        certfile: str,
        keyfile: str,
    ) -> None:
        self.current = served
        self._make = make
        self.certfile, self.keyfile = certfile, keyfile
        self._stamp = _stamp(certfile, keyfile)
        self._stop = threading.Event()
        self.reloads = 0
        served.sni_callback = self._use_current

    def _use_current(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, served: Any
    ) -> None:
        current = self.current  # one read: a reload in between hands over a whole pair
        if current is not served:
            connection.context = current

    def check(self) -> bool:
        """Builds a context from the pair when the files changed since last time; True when
        it did (and new handshakes use it)."""
        stamp = _stamp(self.certfile, self.keyfile)
        if stamp == self._stamp:
            return False
        try:
            self.current = self._make()
        except (OSError, ssl.SSLError) as exc:
            log.warning("admission: new TLS certificate not loaded (kept the old one): %s", exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("admission: TLS certificate reloaded from %s", self.certfile)
        return True

    def start(self, interval: float = RELOAD_INTERVAL_SECONDS) -> None:
        thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        thread.name = "auditor-tls-reload"
        thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.check()

    def stop(self) -> None:
        self._stop.set()


def reloading_context(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: its own context (TLS 1.2+), watched for rotation.
    Runs in every server worker, each watching the files for its own context."""

    def make() -> ssl.SSLContext:
        context = default()  # uvicorn's settings (ALPN, ciphers), the files read again
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    served = make()
    CertificateReloader(served, make, config.ssl_certfile, config.ssl_keyfile).start()
    return served


__all__ = ["CertificateReloader", "reloading_context"]
