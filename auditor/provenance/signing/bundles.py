"""Reading a model-signing bundle from disk, and which kind of authority can have made it.

Only the shape is checked here (size, JSON, a DSSE envelope with a signature, verification
material); the verifiers of `key`, `certificate` and `sigstore` parse and verify the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigstore.models import InvalidBundle

from auditor import checks
from auditor.bounded import read_bounded, special_kind
from auditor.errors import InputError
from auditor.provenance.signing.results import Problem
from auditor.safeyaml import strict_json
from auditor.trust.authorities import AuthorityKind

MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # a sharded manifest of a very large model stays far below

# The parse errors model-signing's and sigstore's bundle readers raise for malformed input:
# pydantic's ValidationError and binascii.Error are ValueErrors; the protobuf-model reader
# indexes dicts and lists directly.
READ_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, InvalidBundle)

KIND_TEXT: dict[str, str] = {
    "key": "a public key",
    "certificate_chain": "a certificate chain",
    "sigstore": "a Sigstore keyless certificate",
}


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    kind: AuthorityKind
    document: dict[str, Any]


def bundle_kind(document: dict[str, Any]) -> AuthorityKind | None:
    """Which kind of authority can have made this bundle, from its verification material."""
    material = document.get("verificationMaterial")
    if not isinstance(material, dict):
        return None
    if "publicKey" in material:
        return "key"
    # Keyless bundles always carry a transparency-log entry; model-signing's certificate
    # bundles carry none (an empty list, or no key at all before v1.0).
    if material.get("tlogEntries"):
        return "sigstore"
    if "x509CertificateChain" in material:
        return "certificate_chain"
    return None


def read_bundle(path: Path) -> Bundle | Problem:
    """The bundle at `path`, or why it is not one (unsigned, or a broken signature file).

    Raises InputError (exit 2) for a named pipe or a device: a usage mistake, not a broken
    signature, and reading one would hang or never end.
    """
    data = read_bundle_bytes(path)
    if isinstance(data, Problem):
        return data
    document = _json_object(data, path)
    if isinstance(document, Problem):
        return document
    if not _has_signed_envelope(document):
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{path.name} has no DSSE envelope with a signature: not a model signature",
        )
    kind = bundle_kind(document)
    if kind is None:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{path.name} carries no key, certificate chain or Sigstore log entry to verify with",
        )
    return Bundle(path=path, kind=kind, document=document)


def read_bundle_bytes(path: Path) -> bytes | Problem:
    """The bytes of a signature file, bounded; a Problem when it is missing, too large or
    unreadable, InputError for a pipe or a device (see `read_bundle`)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return Problem(checks.UNSIGNED, f"no signature file at {path}")
    except OSError as exc:
        return Problem(checks.SIGNATURE_INVALID, f"cannot read {path}: {exc.strerror}")
    kind = special_kind(info.st_mode)
    if kind == "a directory":
        return Problem(checks.UNSIGNED, f"{path} is a directory, not a signature file")
    if kind is None and info.st_size > MAX_BUNDLE_BYTES:
        return Problem(
            checks.SIGNATURE_INVALID, f"{info.st_size} bytes is too large for a signature bundle"
        )
    try:
        return read_bounded(path, max_bytes=MAX_BUNDLE_BYTES, what="signature file")
    except InputError as exc:
        if kind is not None:
            raise  # a pipe or a device: a usage mistake, exit 2
        # a regular file that grew past the limit, or vanished, since stat
        return Problem(checks.SIGNATURE_INVALID, f"{path}: {exc.message}")


def _json_object(data: bytes, path: Path) -> dict[str, Any] | Problem:
    if not data.strip():
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is empty")
    try:
        document = strict_json(data)
    except UnicodeDecodeError:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is not UTF-8 JSON: corrupted bundle")
    except json.JSONDecodeError as exc:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno}): a corrupted or "
            "truncated bundle",
        )
    if not isinstance(document, dict):
        return Problem(
            checks.SIGNATURE_INVALID, f"{path.name} is not a Sigstore bundle (not an object)"
        )
    return document


def _has_signed_envelope(document: dict[str, Any]) -> bool:
    envelope = document.get("dsseEnvelope")
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    return (
        isinstance(envelope, dict)
        and isinstance(envelope.get("payload"), str)
        and isinstance(signatures, list)
        and bool(signatures)
        and isinstance(signatures[0], dict)
        and isinstance(signatures[0].get("sig"), str)
    )


__all__ = [
    "KIND_TEXT",
    "MAX_BUNDLE_BYTES",
    "READ_ERRORS",
    "Bundle",
    "bundle_kind",
    "read_bundle",
    "read_bundle_bytes",
]
