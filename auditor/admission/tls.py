"""The server's TLS context, reloaded in place when cert-manager rotates the certificate.

cert-manager renews the Secret; the kubelet swaps the mounted files (a symlink flip). The
context uvicorn serves with is kept, and `load_cert_chain` on it again makes every new
handshake present the new certificate; connections already open keep theirs. A pair that does
not load (a half-written rotation: the key of one, the certificate of the other) is logged and
retried at the next change, the old pair staying in use.
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
    """Watches a certificate/key pair and loads it into `context` when it changes."""

    def __init__(self, context: ssl.SSLContext, certfile: str, keyfile: str) -> None:
        self.context = context
        self.certfile, self.keyfile = certfile, keyfile
        self._stamp = _stamp(certfile, keyfile)
        self._stop = threading.Event()
        self.reloads = 0

    def check(self) -> bool:
        """Loads the pair when the files changed since last time; True when it did."""
        stamp = _stamp(self.certfile, self.keyfile)
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(self.certfile, self.keyfile)
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
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    CertificateReloader(context, config.ssl_certfile, config.ssl_keyfile).start()
    return context


__all__ = ["CertificateReloader", "reloading_context"]
