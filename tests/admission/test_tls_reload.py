"""Certificate rotation at the TLS layer: what a new handshake is shown as the files change."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auditor.admission.tls import CertificateReloader
from tests.admission.tlsfiles import Authority, issue, make_authority


class Pair:
    """A CA and the certificate/key files of the server it signs."""

    def __init__(self, directory: Path) -> None:
        self.authority: Authority = make_authority(directory)
        self.cert, self.key = directory / "tls.crt", directory / "tls.key"
        self.serial = issue(self.authority, self.cert, self.key, serial=1)

    def make(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def reloader(self) -> tuple[ssl.SSLContext, CertificateReloader]:
        served = self.make()
        return served, CertificateReloader(served, self.make, str(self.cert), str(self.key))


def presented_serial(served: ssl.SSLContext, authority: Authority) -> int:
    """The serial of the certificate a client connecting by IP address (no SNI) is shown."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, served.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = ssl.create_default_context(cafile=str(authority.path))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            tls.sendall(b"x")
    finally:
        server.join(10)
        listener.close()
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return Pair(tmp_path)


def test_a_rotated_pair_is_shown_to_new_handshakes(pair: Pair) -> None:
    served, reloader = pair.reloader()
    assert presented_serial(served, pair.authority) == 1
    issue(pair.authority, pair.cert, pair.key, serial=2)
    assert reloader.check() is True
    assert presented_serial(served, pair.authority) == 2
    assert reloader.check() is False  # nothing changed since


def test_a_half_written_rotation_keeps_the_last_good_pair_served(pair: Pair) -> None:
    served, reloader = pair.reloader()
    # the new key is in place, its certificate not yet: the pair does not match
    other = ec.generate_private_key(ec.SECP256R1())
    pair.key.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert reloader.check() is False
    assert presented_serial(served, pair.authority) == 1  # not a handshake without a certificate
    issue(pair.authority, pair.cert, pair.key, serial=3)  # the rotation completes
    assert reloader.check() is True
    assert presented_serial(served, pair.authority) == 3


def test_the_context_being_served_is_never_loaded_into(pair: Pair) -> None:
    # Loading a pair into a context that handshakes are using sets its certificate and then
    # its key, with a moment between them in which a handshake fails.
    served, reloader = pair.reloader()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_cert_chain on the context being served")

    loaded = served.load_cert_chain
    served.load_cert_chain = refuse  # type: ignore[method-assign]
    try:
        issue(pair.authority, pair.cert, pair.key, serial=4)
        assert reloader.check() is True
    finally:
        served.load_cert_chain = loaded  # type: ignore[method-assign]
    assert presented_serial(served, pair.authority) == 4
