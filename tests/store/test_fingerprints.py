"""History is stored by fingerprint: however it is computed, its value never changes.

`reference` is the computation every stored fingerprint so far was made with (auditor at
88c8b1a); the fast one must agree with it on every kind of text. The store keeps the 32 hex
digits auditor makes as their 16 bytes, and any other fingerprint as its text."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from auditor.model import Finding, ResourceRef, fingerprint
from auditor.store.keys import stored_fingerprint, stored_fingerprint_of


def reference(category: str, check: str, ref: ResourceRef, path: str, discriminator: str) -> str:
    identity = [category, check, ref.cluster, ref.group, ref.kind, ref.namespace, ref.name, path]
    if discriminator:
        identity.append(discriminator)
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


TEXTS = [
    "",
    "plain",
    'quote " and backslash \\',
    "tab\tnewline\ncarriage\rnul\x00bell\x07",
    "ünïcödé, 日本語, emoji 🧪",
    "lone surrogate \ud800",
    "/spec/template/spec/containers/0/env/LEGACY_TOKENIZER",
    "</script><b>&amp;",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("api_version", ["v1", "apps/v1", "serving.kserve.io/v1beta1", ""])
def test_fingerprint_is_the_value_stored_fingerprints_were_made_with(
    text: str, api_version: str
) -> None:
    ref = ResourceRef(f"prod-{text}", api_version, "Deployment", text, f"name-{text}")
    for discriminator in ("", "deny", f"warn:{text}"):
        args = ("policy", f"auditor.{text}", ref, text, discriminator)
        assert fingerprint(*args) == reference(*args)
        # what the store keeps of a finding's, made without the hex
        finding = Finding(
            "policy", f"auditor.{text}", "high", ref, text, "m", discriminator=discriminator
        )
        assert stored_fingerprint_of(finding) == bytes.fromhex(reference(*args))


def test_a_fingerprint_of_values_that_are_not_text_is_still_the_reference_value() -> None:
    # Typed as str everywhere, but a caller that slips in None must not get another identity.
    ref = ResourceRef("prod", "v1", "Service", "", "web")
    args = ("drift", "drift.changed", ref, None, "")
    assert fingerprint(*args) == reference(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0123456789abcdef" * 2, bytes.fromhex("0123456789abcdef" * 2)),
        # what bytes.fromhex would also take, but auditor never makes: kept as text
        ("0123456789ABCDEF" * 2, "0123456789ABCDEF" * 2),
        ("01 23 45 67 89 ab cd ef 01 23 4", "01 23 45 67 89 ab cd ef 01 23 4"),
        ("0123456789abcdeg" * 2, "0123456789abcdeg" * 2),
        ("0123456789abcdef", "0123456789abcdef"),
        ("Legacy:ABC-1", "Legacy:ABC-1"),
        ("", ""),
    ],
)
def test_only_32_lowercase_hex_digits_are_stored_as_their_16_bytes(
    given: str, stored: str | bytes
) -> None:
    assert stored_fingerprint(given) == stored
    assert type(stored_fingerprint(given)) is type(stored)


@pytest.mark.parametrize("recorded", ["0123456789abcdef" * 2, "0123456789ABCDEF" * 2, "Legacy:1"])
def test_a_finding_read_back_is_stored_by_the_fingerprint_it_was_recorded_with(
    recorded: str,
) -> None:
    ref = ResourceRef("prod", "v1", "Service", "ml", "web")
    finding = Finding(
        "drift", "drift.changed", "low", ref, "/spec", "m", recorded_fingerprint=recorded
    )
    assert stored_fingerprint_of(finding) == stored_fingerprint(recorded)


def test_none_and_bytes_are_bound_as_they_are(tmp_path: Path) -> None:
    # The store registers identity adapters for both (auditor.store.schema): what is bound
    # must stay NULL and the same blob, in any connection of the process.
    import auditor.store.schema  # noqa: F401  (registers them)

    conn = sqlite3.connect(tmp_path / "plain.db")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, b"\x00\xff fingerprint"))
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(b"", None)])
    assert conn.execute("SELECT typeof(a), a, typeof(b), b FROM t").fetchall() == [
        ("null", None, "blob", b"\x00\xff fingerprint"),
        ("blob", b"", "null", None),
    ]
