"""The webhook as a long-running process: certificate rotation. (SIGTERM with decisions still
on their way to the store is the last test of test_webhook.py: it ends the shared server.)"""

from __future__ import annotations

import socket
import ssl
import time

from cryptography import x509

from tests.admission.running import Server, TLSFiles
from tests.admission.world import llm, review


def served_serial(server: Server) -> int:
    """The serial number of the certificate a new TLS connection is shown (verified)."""
    context = ssl.create_default_context(cafile=str(server.tls.authority.path))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_rotated_certificate_is_served_to_new_connections(server: Server, tls: TLSFiles) -> None:
    before = served_serial(server)
    assert before == tls.serial
    rotated = tls.rotate()
    assert rotated != before
    deadline = time.monotonic() + 30  # the files are looked at every second, in each worker
    seen = {before}
    while time.monotonic() < deadline and seen != {rotated}:
        # several connections: each worker must have reloaded, whichever accepts
        seen = {served_serial(server) for _ in range(6)}
        time.sleep(0.2)
    assert seen == {rotated}
    assert server.validate(review(llm()))["allowed"] is True
