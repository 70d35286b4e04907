"""The webhook as a long-running process: certificate rotation, and SIGTERM with decisions
still on their way to the store."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time
from pathlib import Path

from cryptography import x509

from tests.admission.running import Server, TLSFiles
from tests.admission.world import ExampleWorld, example_object, llm, review
from tests.conftest import run_cli


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


def test_sigterm_writes_every_decision_to_the_store(world: ExampleWorld, tmp_path: Path) -> None:
    store = tmp_path / "decisions.db"
    running = Server(world.config, store, TLSFiles(tmp_path / "tls"), tmp_path / "server.log")
    sent = []
    try:
        for _ in range(10):
            for body, dry_run in ((llm(), False), (example_object("fraud-scorer"), True)):
                document = review(body, dry_run=dry_run)
                response = running.validate(document)
                sent.append((document["request"]["uid"], response["allowed"], dry_run))
    finally:
        code = running.stop(signal.SIGTERM)
    assert code == 0, (tmp_path / "server.log").read_text()
    result = run_cli(
        "admission", "decisions", "--store", str(store), "--limit", "100", "-o", "json"
    )
    assert result.code == 0, result.err
    rows = {row["uid"]: row for row in json.loads(result.out)["decisions"]}
    assert set(rows) == {uid for uid, _, _ in sent}
    head = world.repo.head()
    for uid, allowed, dry_run in sent:
        row = rows[uid]
        assert (row["allowed"], row["dry_run"]) == (allowed, dry_run)
        assert row["commit_sha"] == head
        assert row["user"] == "alice@example.com"
        assert row["namespace"] == "ml-prod"
        assert row["latency_ms"] > 0
    denied = [r for r in rows.values() if not r["allowed"]]
    assert all(r["result"] == "deny" for r in denied)
    assert all(
        any(reason["check"] == "provenance.digest_mismatch" for reason in r["reasons"])
        for r in denied
    )
