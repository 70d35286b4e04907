"""The private model-signing and sigstore names auditor relies on still behave as relied on.

`auditor/provenance/upstream.py` is the one module that touches them; this contract fails,
naming the upstream symbol, when an upgrade removes, renames or changes one of them: that it
exists, is callable with the arguments we pass, has the attributes we read, raises the
exceptions we tell apart, and keeps the constant values we compare with. Fix upstream.py for
the new release (and this file), then widen the bounds in pyproject.toml.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import model_signing
import pytest
from cryptography.exceptions import InvalidSignature
from OpenSSL import crypto as openssl_crypto
from sigstore.models import Bundle

from auditor.provenance import upstream
from tests.provenance.conftest import (
    Chain,
    KeyPair,
    sign_with_certificate,
    sign_with_key,
)

CHECKED_WITH = "model-signing 1.1.1 and sigstore 4.5.1"


@contextmanager
def contract(symbol: str) -> Iterator[None]:
    """Turns any failure inside into one message that names the upstream symbol."""
    try:
        yield
    except (Exception, pytest.fail.Exception) as exc:  # pytest.raises' DID NOT RAISE too
        pytest.fail(
            f"upstream contract broken: {symbol}: {type(exc).__name__}: {exc}\n"
            f"auditor/provenance/upstream.py relies on it (checked with {CHECKED_WITH}); "
            "adapt upstream.py to the installed release before widening pyproject.toml's bounds",
            pytrace=False,
        )


def resolve(symbol: str) -> Any:
    """The object a dotted name names: its longest importable module, then attributes."""
    parts = symbol.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(f"no module of {symbol} imports")


# --- names, signatures and constants -----------------------------------------------------------

PRIVATE_MODULES = [
    "model_signing._signing.signing",
    "model_signing._signing.sign_sigstore_pb",
    "model_signing._signing.sign_sigstore",
    "model_signing._signing.sign_ec_key",
    "model_signing._signing.sign_certificate",
    "model_signing._hashing.hashing",
]


@pytest.mark.parametrize("module", PRIVATE_MODULES)
def test_private_module_imports(module: str) -> None:
    with contract(module):
        importlib.import_module(module)


# symbol -> the parameters upstream.py passes it, in order (classes: their constructor's)
CALLABLES: dict[str, list[str]] = {
    "model_signing._signing.sign_sigstore_pb.Signature.read": ["path"],
    "model_signing._signing.sign_sigstore.Signature.read": ["path"],
    "model_signing._signing.sign_ec_key.Verifier": ["public_key_path"],
    "model_signing._signing.sign_certificate.Verifier": ["certificate_chain_paths"],
    "model_signing._signing.signing.Verifier._verify_signed_content": ["signature"],
    "model_signing._signing.sign_ec_key.Verifier._verify_signed_content": ["signature"],
    "model_signing._signing.sign_certificate.Verifier._verify_signed_content": ["signature"],
    "model_signing._signing.signing.dsse_payload_to_manifest": ["dsse_payload"],
    "model_signing._signing.signing.Payload": ["manifest"],
    "model_signing._hashing.hashing.Digest": ["algorithm", "digest_value"],
}


@pytest.mark.parametrize(("symbol", "expected"), CALLABLES.items(), ids=list(CALLABLES))
def test_private_callable_takes_the_arguments_we_pass(symbol: str, expected: list[str]) -> None:
    with contract(symbol):
        function = resolve(symbol)
        assert callable(function), "not callable"
        params = inspect.signature(function).parameters
        names = [n for n in params if n not in ("self", "cls")]
        assert names[: len(expected)] == expected, f"parameters are {names}, we pass {expected}"
        # anything after what we pass must have a default, or our call fails
        extra = [n for n in names[len(expected) :] if params[n].default is inspect.Parameter.empty]
        assert not extra, f"new required parameters {extra}"


CONSTANTS = {
    "model_signing._signing.signing._IN_TOTO_JSON_PAYLOAD_TYPE": "application/vnd.in-toto+json",
    "model_signing._signing.signing._IN_TOTO_STATEMENT_TYPE": "https://in-toto.io/Statement/v1",
}


@pytest.mark.parametrize(("symbol", "value"), CONSTANTS.items(), ids=list(CONSTANTS))
def test_private_constant_keeps_its_value(symbol: str, value: str) -> None:
    with contract(symbol):
        assert resolve(symbol) == value


def test_adapter_constants_are_upstreams() -> None:
    with contract("model_signing._signing.signing._IN_TOTO_*"):
        assert list(CONSTANTS.values()) == [
            upstream.IN_TOTO_JSON_PAYLOAD_TYPE,
            upstream.IN_TOTO_STATEMENT_TYPE,
        ]


def test_sigstore_bundle_has_a_dsse_envelope_accessor() -> None:
    with contract("sigstore.models.Bundle._dsse_envelope"):
        assert hasattr(Bundle, "_dsse_envelope"), "attribute gone"


# --- behaviour on real bundles -------------------------------------------------------------------


def test_key_bundle_reads_and_verifies_through_the_adapter(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    signature_path = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    with contract("model_signing._signing.sign_sigstore_pb.Signature.read"):
        signature = upstream.read_protobuf_bundle(signature_path)
        assert signature.bundle.dsse_envelope is not None, ".bundle.dsse_envelope is None"
    with contract("model_signing._signing.sign_ec_key.Verifier"):
        verifier = upstream.key_verifier(keys["ec-p256"].public)
    with contract("model_signing._signing.sign_ec_key.Verifier._verify_signed_content"):
        payload_type, payload = upstream.signed_content(verifier, signature)
        assert payload_type == upstream.IN_TOTO_JSON_PAYLOAD_TYPE
        assert json.loads(payload)["_type"] == upstream.IN_TOTO_STATEMENT_TYPE


def test_a_changed_key_signature_raises_invalid_signature(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    # key.py tells a broken signature (InvalidSignature) from another key (ValueError)
    path = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    bundle = json.loads(path.read_text())
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    path.write_text(json.dumps(bundle))
    signature = upstream.read_protobuf_bundle(path)
    verifier = upstream.key_verifier(keys["ec-p256"].public)
    with (
        contract("model_signing._signing.sign_ec_key.Verifier._verify_signed_content"),
        pytest.raises(InvalidSignature),
    ):
        upstream.signed_content(verifier, signature)


def test_certificate_bundle_reads_verifies_and_refuses_a_foreign_chain(
    model_dir: Path, tmp_path: Path, chain: Chain, other_chain: Chain
) -> None:
    path = sign_with_certificate(model_dir, chain, tmp_path / "model.sig")
    with contract("model_signing._signing.sign_sigstore_pb.Signature.read"):
        signature = upstream.read_protobuf_bundle(path)
        certificates = signature.bundle.verification_material.x509_certificate_chain
        assert certificates is not None and certificates.certificates[0].raw_bytes
    with contract("model_signing._signing.sign_certificate.Verifier"):
        verifier = upstream.certificate_verifier([chain.root])
        foreign = upstream.certificate_verifier([other_chain.root])
    with contract("model_signing._signing.sign_certificate.Verifier._verify_signed_content"):
        payload_type, _payload = upstream.signed_content(verifier, signature)
        assert payload_type == upstream.IN_TOTO_JSON_PAYLOAD_TYPE
        # certificate.py reads a foreign chain as identity_mismatch from this exception
        with pytest.raises(openssl_crypto.X509StoreContextError):
            upstream.signed_content(foreign, signature)


def test_keyless_bundle_reads_into_a_sigstore_bundle_with_a_dsse_envelope(
    keyless_dir: Path,
) -> None:
    with contract("model_signing._signing.sign_sigstore.Signature.read"):
        signature = upstream.read_sigstore_bundle(keyless_dir / "model.sig")
        assert isinstance(signature.bundle, Bundle), f".bundle is {type(signature.bundle)}"
        assert signature.bundle.signing_certificate is not None
    with contract("sigstore.models.Bundle._dsse_envelope"):
        assert upstream.dsse_envelope(signature.bundle) is not None
    doc = json.loads((keyless_dir / "model.sig").read_bytes())
    doc["dsseEnvelope"]["signatures"] = []
    with contract("sigstore.models.Bundle._dsse_envelope raises sigstore.errors.Error"):
        from sigstore.errors import Error as SigstoreError

        with pytest.raises(SigstoreError):
            upstream.dsse_envelope(Bundle.from_json(json.dumps(doc)))


def test_statement_to_manifest_and_subject_digest(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    manifest = model_signing.hashing.hash(model_dir)
    with contract("model_signing._signing.signing.Payload(...).statement.pb.subject"):
        digest = upstream.subject_digest_hex(manifest)
        assert len(digest) == 64 and int(digest, 16) >= 0, digest
    path = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    envelope = json.loads(path.read_text())["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    with contract("model_signing._signing.signing.dsse_payload_to_manifest"):
        assert upstream.statement_manifest(statement) == manifest
        assert statement["subject"][0]["digest"]["sha256"] == digest
        # manifest.py reads this message prefix as digest_mismatch: an authentic statement
        # whose subject digest does not cover the files it lists
        statement["subject"][0]["digest"]["sha256"] = "0" * 64
        with pytest.raises(ValueError, match=r"^Manifest is inconsistent"):
            upstream.statement_manifest(statement)


def test_files_manifest_of_the_files_digests_is_the_one_model_signing_hashes(
    model_dir: Path,
) -> None:
    import hashlib

    files = {
        path.relative_to(model_dir).as_posix(): hashlib.sha256(path.read_bytes()).digest()
        for path in model_dir.rglob("*")
        if path.is_file()
    }
    with contract("model_signing._hashing.hashing.Digest"):
        built = upstream.files_manifest(files)
        assert built == model_signing.hashing.hash(model_dir)
        assert upstream.subject_digest_hex(built) == upstream.subject_digest_hex(
            model_signing.hashing.hash(model_dir)
        )
