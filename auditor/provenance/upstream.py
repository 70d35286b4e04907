"""The one place auditor touches private names of model-signing and sigstore.

Checked against model-signing 1.1.1 and sigstore 4.5.1; pyproject.toml bounds both
(`model-signing>=1.1.1,<1.2`, `sigstore>=4.5,<5`) and
`tests/provenance/test_upstream_contract.py` fails, naming the symbol, when an upgrade moves,
renames or changes any of them. Everything else auditor imports from these packages is their
public API.

Why each is needed:

- `model_signing._signing.sign_sigstore_pb.Signature.read` (and its `.bundle`): reads the
  bundles of key and certificate signatures. sigstore-python refuses them (a public key or a
  chain without a transparency-log entry), and model-signing's public API reads them only
  inside `verifying.Config.verify`, which raises one bare ValueError for every failure, prints
  to stdout for old bundles and returns no subject digest.
- `model_signing._signing.sign_sigstore.Signature.read` (and its `.bundle`, a sigstore
  `Bundle`): reads a keyless bundle exactly as model-signing does.
- `model_signing._signing.sign_ec_key.Verifier(public_key_path)`,
  `model_signing._signing.sign_certificate.Verifier(certificate_chain_paths)` and their
  `_verify_signed_content(signature)`: the cryptographic step alone, returning the payload
  type and payload, and raising `InvalidSignature`, `X509StoreContextError` or `ValueError`
  apart, so that a wrong key, a foreign chain and a changed byte are different findings.
- `model_signing._signing.signing._IN_TOTO_JSON_PAYLOAD_TYPE` and `_IN_TOTO_STATEMENT_TYPE`:
  the two checks `Verifier.verify` makes after `_verify_signed_content`, which we make too.
- `model_signing._signing.signing.dsse_payload_to_manifest`: an authenticated statement to a
  manifest, with model-signing's check that the subject digest covers the listed files.
- `model_signing._signing.signing.Payload(manifest).statement.pb.subject[0].digest`: the
  subject digest model-signing would sign for a manifest (the model digest Git pins).
- `model_signing._hashing.hashing.Digest(algorithm, digest_value)`: a digest computed
  elsewhere (an in-toto link's product), so that a manifest of already-hashed files can be
  built with model-signing's public `SerializationType.from_args(...).new_item` and
  `Manifest`, and its subject digest taken as model-signing computes it.
- sigstore `Bundle._dsse_envelope`: whether a bundle signs a DSSE envelope at all. sigstore has
  no public accessor; `verify_dsse` tells only after verifying, and a bundle over a plain
  artifact must read `malformed`, not `signature_invalid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from model_signing import manifest as ms_manifest
from model_signing._hashing import hashing as ms_hashing
from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore, sign_sigstore_pb
from model_signing._signing import signing as ms_signing
from sigstore.models import Bundle

# Bundles as model-signing reads them: key and certificate signatures (protobuf-model bundles)
# and keyless ones (a sigstore Bundle in `.bundle`).
ProtobufSignature = sign_sigstore_pb.Signature
SigstoreSignature = sign_sigstore.Signature

IN_TOTO_JSON_PAYLOAD_TYPE: str = ms_signing._IN_TOTO_JSON_PAYLOAD_TYPE
IN_TOTO_STATEMENT_TYPE: str = ms_signing._IN_TOTO_STATEMENT_TYPE


def read_protobuf_bundle(path: Path) -> sign_sigstore_pb.Signature:
    """A key or certificate bundle; raises the parse errors of `bundles.READ_ERRORS`."""
    return sign_sigstore_pb.Signature.read(path)


def read_sigstore_bundle(path: Path) -> sign_sigstore.Signature:
    """A keyless bundle; raises sigstore's errors or the parse errors of `bundles.READ_ERRORS`."""
    return sign_sigstore.Signature.read(path)


def key_verifier(public_key: Path) -> ms_signing.Verifier:
    """model-signing's verifier for an EC public key (it loads and checks the key here)."""
    return sign_ec_key.Verifier(public_key)


def certificate_verifier(chain: Iterable[Path]) -> ms_signing.Verifier:
    """model-signing's verifier for a certificate chain (it loads the certificates here)."""
    return sign_certificate.Verifier(list(chain))


def signed_content(
    verifier: ms_signing.Verifier, signature: ms_signing.Signature
) -> tuple[str, bytes]:
    """(payload type, payload) once the signature verifies; the verifier's own exceptions."""
    return verifier._verify_signed_content(signature)


def statement_manifest(statement: dict[str, Any]) -> ms_manifest.Manifest:
    """The manifest an in-toto statement lists; ValueError `Manifest is inconsistent` when its
    subject digest is not the digest of those files."""
    return ms_signing.dsse_payload_to_manifest(statement)


def subject_digest_hex(manifest: ms_manifest.Manifest) -> str:
    """The hex sha256 subject digest model-signing signs for `manifest`."""
    statement = ms_signing.Payload(manifest).statement
    return str(statement.pb.subject[0].digest["sha256"])


def files_manifest(sha256: Mapping[str, bytes]) -> ms_manifest.Manifest:
    """The manifest model-signing builds for a directory holding exactly these files (path
    relative to it -> SHA-256), serialized by files with SHA-256, its default."""
    serialization = ms_manifest.SerializationType.from_args(
        {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
    )
    items = [
        serialization.new_item(path, ms_hashing.Digest("sha256", digest))
        for path, digest in sha256.items()
    ]
    return ms_manifest.Manifest("model", items, serialization)


def dsse_envelope(bundle: Bundle) -> object | None:
    """The DSSE envelope a sigstore bundle signs, or None for a bundle over a plain artifact;
    sigstore's `Error` (`InvalidEnvelope`) when the envelope has not exactly one signature."""
    envelope: object | None = bundle._dsse_envelope
    return envelope


__all__ = [
    "IN_TOTO_JSON_PAYLOAD_TYPE",
    "IN_TOTO_STATEMENT_TYPE",
    "ProtobufSignature",
    "SigstoreSignature",
    "certificate_verifier",
    "dsse_envelope",
    "files_manifest",
    "key_verifier",
    "read_protobuf_bundle",
    "read_sigstore_bundle",
    "signed_content",
    "statement_manifest",
    "subject_digest_hex",
]
