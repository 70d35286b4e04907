"""Signatures over an OCI image: what binds a model shipped as an image to its digest.

The digest of an OCI model is its image manifest digest: the one a registry serves, the kubelet
pulls and the pods report. A signature binds the image when it vouches for exactly that digest,
in one of the forms the tools that sign images write:

- a Sigstore bundle whose DSSE envelope holds an in-toto Statement with the image digest among
  its subjects: `cosign sign --bundle` (cosign 3, predicate `https://sigstore.dev/cosign/sign/v1`),
  `cosign attest --bundle`, GitHub artifact attestations;
- a Sigstore bundle whose message signature is over the image digest (a hashedrekord of the
  manifest; what sigstore-go verifies with `WithArtifactDigest`, as cosign does for bundles);
- a bare DSSE envelope holding such a Statement (`cosign attest --key`, in-toto tooling).

The statement's subject name (`registry/repo`, absent from cosign 3 signatures) is not
compared: the digest names the content wherever it is stored, and cosign ignores the name too.
Statements v1 and v0.1 (cosign 2's attestations) are read; their subjects have the same shape.

One authority verifies at a time, offline: a `key` authority checks the signature with its key
(a bundle's transparency-log entries are not needed for that and not read); a `sigstore`
authority verifies the bundle against its trusted root with sigstore-python (certificate chain
at the signed time, SCT, log entry, identity). Every failure is a `DsseError` with its reason.
Answers are cached per process by (document, authority material, image digest).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from auditor.lru import LRU
from auditor.provenance.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    DsseError,
    MalformedEnvelopeError,
    SignatureInvalidError,
    SignerIdentity,
    VerifiedPayload,
    b64decode_field,
    load_json,
    material_digest,
    parse_sigstore_bundle,
    remembered,
    sha256_digest,
    sigstore_verified,
    verify_sigstore_bundle,
    verify_with_key,
)
from auditor.provenance.slsa import STATEMENT_SCHEMA, schema_errors
from auditor.safeyaml import strict_json
from auditor.trust.authorities import PublicKey, SigstoreIdentity

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = (STATEMENT_V1, "https://in-toto.io/Statement/v0.1")
BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle"

ImageAuthority = PublicKey | SigstoreIdentity
Form = Literal["statement", "message"]


class MalformedImageStatementError(MalformedEnvelopeError):
    """An authentic signature over something that is not an in-toto statement about an image:
    what the signer vouched for is unusable, whoever else is asked."""


@dataclass(frozen=True, slots=True)
class ImageSignature:
    """A signature that verified: the image digests it vouches for, and who made it."""

    digests: tuple[str, ...]  # `sha256:<hex>`, lowercase
    signer: SignerIdentity
    form: Form  # an in-toto statement about the image, or a message signature over it
    predicate_type: str | None = None  # the statement's


_cache: LRU[tuple[str, str, str], ImageSignature | DsseError] = LRU(1024)


def clear_cache() -> None:
    _cache.clear()


def verify_image_signature(
    data: bytes, authority: ImageAuthority, *, image_digest: str | None, source: str
) -> ImageSignature:
    """Verifies one signature document (bundle or envelope bytes from Git) with `authority`.

    `image_digest` is Git's; a message signature that records no digest of its own is checked
    against it. The digests returned are what the signature vouches for, which may be another
    image's: the caller compares. Raises `DsseError`: `malformed` (not a bundle, an envelope or
    an image statement), `unsigned`, `signature_invalid`, `identity_mismatch`.
    """
    material = (
        material_digest(authority)
        if isinstance(authority, SigstoreIdentity)
        else f"key:{authority.fingerprint}:{authority.name}"
    )
    key = (sha256_digest(data), material, image_digest or "")
    return remembered(_cache, key, lambda: _verify(data, authority, image_digest, source))


def _verify(
    data: bytes, authority: ImageAuthority, image_digest: str | None, source: str
) -> ImageSignature:
    document = _json_object(data, source)
    if not str(document.get("mediaType", "")).startswith(BUNDLE_MEDIA_TYPE_PREFIX):
        if "payloadType" not in document:
            raise MalformedEnvelopeError(
                "neither a Sigstore bundle (mediaType) nor a DSSE envelope (payloadType)",
                file=source,
            )
        if not isinstance(authority, PublicKey):
            raise SignatureInvalidError(
                f"a bare DSSE envelope carries no certificate for {authority.describe()}: "
                "a keyless signature comes in a Sigstore bundle",
                file=source,
            )
        return _statement(verify_with_key(data, authority, source=source), source)
    if isinstance(authority, SigstoreIdentity) and _signed_with_a_key(document):
        raise SignatureInvalidError(
            f"the bundle is signed with a public key, not a Sigstore certificate of "
            f"{authority.describe()}",
            file=source,
        )
    if isinstance(document.get("messageSignature"), dict):
        return _message(data, document["messageSignature"], authority, image_digest, source)
    if not isinstance(document.get("dsseEnvelope"), dict):
        raise MalformedEnvelopeError(
            "the bundle holds neither a DSSE envelope nor a message signature", file=source
        )
    if isinstance(authority, SigstoreIdentity):
        return _statement(verify_sigstore_bundle(data, authority, source=source), source)
    envelope = json.dumps(document["dsseEnvelope"]).encode()
    return _statement(verify_with_key(envelope, authority, source=source), source)


def _json_object(data: bytes, source: str) -> dict[str, Any]:
    document = load_json(data, "signature document", source)
    if not isinstance(document, dict):
        raise MalformedEnvelopeError("not a JSON object", file=source)
    return document


def _signed_with_a_key(bundle: dict[str, Any]) -> bool:
    material = bundle.get("verificationMaterial")
    return isinstance(material, dict) and "publicKey" in material


def _statement(verified: VerifiedPayload, source: str) -> ImageSignature:
    """The image digests an authenticated in-toto statement names as its subjects."""
    if verified.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise MalformedImageStatementError(
            f"signs a {verified.payload_type[:100]!r} payload, not an in-toto statement",
            file=source,
        )
    try:
        statement = strict_json(verified.payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedImageStatementError(
            "the signed statement is not JSON", file=source
        ) from None
    kind = statement.get("_type") if isinstance(statement, dict) else None
    if kind not in STATEMENT_TYPES:
        raise MalformedImageStatementError(
            f"signs no in-toto Statement (_type {str(kind)[:100]!r})", file=source
        )
    # v0.1 and v1 differ in `_type` only, for the fields read here
    problems = schema_errors({**statement, "_type": STATEMENT_V1}, STATEMENT_SCHEMA, "")
    if problems:
        raise MalformedImageStatementError(
            "not an in-toto Statement: " + "; ".join(problems), file=source
        )
    digests = tuple(
        f"sha256:{subject['digest']['sha256'].lower()}"
        for subject in statement["subject"]
        if "sha256" in subject["digest"]
    )
    if not digests:
        raise MalformedImageStatementError("the statement names no sha256 subject", file=source)
    return ImageSignature(digests, verified.signer, "statement", statement["predicateType"])


def _message(
    data: bytes,
    signature: dict[str, Any],
    authority: ImageAuthority,
    image_digest: str | None,
    source: str,
) -> ImageSignature:
    """A message signature over an image manifest digest: the digest it records (else Git's)
    must be the one signed."""
    signed = _message_digest(signature, image_digest, source)
    raw = bytes.fromhex(signed.partition(":")[2])
    if isinstance(authority, SigstoreIdentity):
        from sigstore.hashes import Hashed
        from sigstore_models.common.v1 import HashAlgorithm

        hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=raw)
        bundle = parse_sigstore_bundle(data, source=source)
        _, signer = sigstore_verified(
            bundle, authority, lambda v, b, p: v.verify_artifact(hashed, b, p), source=source
        )
        return ImageSignature((signed,), signer, "message")
    value = b64decode_field(signature.get("signature"), "messageSignature.signature", source)
    if not _verifies(authority, value, raw, source):
        raise SignatureInvalidError(
            f"the message signature over {signed} does not verify with {authority.describe()} "
            f"[{authority.fingerprint}]",
            file=source,
        )
    signer = SignerIdentity(kind="key", identity=authority.fingerprint, authority=authority.name)
    return ImageSignature((signed,), signer, "message")


def _message_digest(signature: dict[str, Any], image_digest: str | None, source: str) -> str:
    """`sha256:<hex>` the message signature says it is over, else Git's digest."""
    recorded = signature.get("messageDigest")
    if recorded is None:
        if image_digest is None:
            raise MalformedEnvelopeError(
                "the message signature records no digest, and Git pins none", file=source
            )
        return image_digest
    if not isinstance(recorded, dict) or recorded.get("algorithm") != "SHA2_256":
        raise MalformedEnvelopeError(
            "messageSignature.messageDigest is not a SHA2_256 digest", file=source
        )
    raw = b64decode_field(recorded.get("digest"), "messageSignature.messageDigest", source)
    if len(raw) != hashlib.sha256().digest_size:
        raise MalformedEnvelopeError(
            "messageSignature.messageDigest is not 32 bytes long", file=source
        )
    return "sha256:" + raw.hex()


def _verifies(authority: PublicKey, signature: bytes, digest: bytes, source: str) -> bool:
    """Whether `signature` is the key's over a SHA-256 digest (ECDSA, or RSA PKCS#1 v1.5 or
    PSS, as cosign and sigstore sign digests)."""
    key = authority.key
    prehashed = Prehashed(hashes.SHA256())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            return any(
                _rsa_verifies(key, signature, digest, scheme)
                for scheme in (
                    padding.PKCS1v15(),
                    padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                )
            )
    except InvalidSignature:
        return False
    raise SignatureInvalidError(
        f"{authority.describe()} is an Ed25519 key, which signs messages, not digests: it "
        "cannot have made a message signature over an image digest",
        file=source,
    )


def _rsa_verifies(
    key: rsa.RSAPublicKey, signature: bytes, digest: bytes, scheme: padding.AsymmetricPadding
) -> bool:
    try:
        key.verify(signature, digest, scheme, Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


__all__ = [
    "BUNDLE_MEDIA_TYPE_PREFIX",
    "STATEMENT_TYPES",
    "ImageAuthority",
    "ImageSignature",
    "MalformedImageStatementError",
    "clear_cache",
    "verify_image_signature",
]
