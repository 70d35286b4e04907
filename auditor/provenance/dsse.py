"""DSSE envelopes: parsing untrusted bytes, PAE, and signature verification.

Two kinds of trust material verify an envelope, the same two the trust policy names for
attestations: a PEM public key (a bare DSSE envelope, as in-toto and cosign write them), and a
Sigstore keyless identity (a Sigstore bundle whose content is a DSSE envelope, verified offline
against a local trusted root). Both return the verified payload bytes and who signed them;
every failure is a `DsseError` whose `reason` is the finding's check id suffix.

Results are cached per process by (envelope digest, trust material digest): the nightly audit
and the admission webhook verify the same attestation many times.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cryptography.x509 import Certificate
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature, SSlibKey
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError

from auditor import checks
from auditor.envelope import IN_TOTO_PAYLOAD_TYPE as IN_TOTO_PAYLOAD_TYPE  # re-exported
from auditor.envelope import pae
from auditor.errors import ConfigError, VerificationError, first_line
from auditor.lru import LRU
from auditor.model import Finding, ResourceRef
from auditor.safeyaml import strict_json
from auditor.trust.authorities import (
    Authority,
    PublicKey,
    PublicKeyType,
    SigstoreIdentity,
    TrustMaterialError,
    certificate_issuer_claim,
    read_trust_file,
)

if TYPE_CHECKING:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import VerificationPolicy

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

# Attestations are small JSON documents; anything bigger is hostile or a mistake, and is
# refused before it is decoded. The envelope carries the payload in base64 (4/3 larger).
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES * 4 // 3 + 1024 * 1024
MAX_SIGNATURES = 64

Reason = Literal[
    "signature_invalid", "identity_mismatch", "malformed", "unsigned", "digest_mismatch"
]

_CHECK_OF_REASON: dict[Reason, str] = {
    "signature_invalid": checks.SIGNATURE_INVALID,
    "identity_mismatch": checks.IDENTITY_MISMATCH,
    "malformed": checks.MALFORMED,
    "unsigned": checks.UNSIGNED,
    "digest_mismatch": checks.DIGEST_MISMATCH,
}


class DsseError(VerificationError):
    """An envelope failed verification; `reason` says why, `check` is the finding's check id."""

    reason: Reason = "malformed"

    @property
    def check(self) -> str:
        return _CHECK_OF_REASON[self.reason]


class MalformedEnvelopeError(DsseError):
    """The bytes are not a well-formed DSSE envelope or Sigstore bundle (truncated, bad base64)."""

    reason: Reason = "malformed"


class UnsignedEnvelopeError(DsseError):
    """A well-formed envelope that carries no signature at all."""

    reason: Reason = "unsigned"


class SignatureInvalidError(DsseError):
    """No signature verifies with the trust material: tampered bytes or another key."""

    reason: Reason = "signature_invalid"


class IdentityMismatchError(DsseError):
    """A valid Sigstore signature, by an identity (subject or issuer) the authority does not name."""

    reason: Reason = "identity_mismatch"


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    keyid: str  # an unauthenticated hint: DSSE verifiers must not trust it
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)


@dataclass(frozen=True, slots=True)
class SignerIdentity:
    """Who signed: `kind` key or sigstore; `identity` a key fingerprint or certificate SAN."""

    kind: Literal["key", "sigstore"]
    identity: str
    issuer: str = ""  # the OIDC issuer, for sigstore
    authority: str = ""  # the trust-policy authority name, when the caller gave one

    def to_json(self) -> dict[str, str]:
        out = {"authority": self.authority, "kind": self.kind, "identity": self.identity}
        if self.issuer:
            out["issuer"] = self.issuer
        return out


@dataclass(frozen=True, slots=True)
class VerifiedPayload:
    """The payload of an envelope whose signature verified, and who signed it."""

    payload_type: str
    payload: bytes
    signer: SignerIdentity
    envelope_digest: str  # `sha256:<hex>` of the envelope (or bundle) bytes as read


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_B64_CHARS = re.compile(rb"^[A-Za-z0-9+/_-]*={0,2}$")


def b64decode_field(value: Any, what: str, source: str) -> bytes:
    """Standard or URL-safe base64, as the DSSE spec allows; anything else is malformed."""
    if not isinstance(value, str):
        raise MalformedEnvelopeError(f"{what} is not a base64 string", file=source)
    raw = value.encode("ascii", errors="replace")
    if not _B64_CHARS.match(raw):
        raise MalformedEnvelopeError(f"{what} is not valid base64", file=source)
    raw = raw.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
    if len(raw) % 4 == 1:
        # no base64 encoding ends with a lone character: the text was cut short
        raise MalformedEnvelopeError(f"{what} is truncated base64", file=source)
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEnvelopeError(f"{what} is not valid base64", file=source) from None


def parse_envelope(data: bytes, source: str = "envelope") -> Envelope:
    """Parses untrusted bytes as a DSSE envelope (JSON), checking sizes and types first.

    Raises `MalformedEnvelopeError` for anything that is not exactly an envelope, and
    `UnsignedEnvelopeError` for an envelope without signatures.
    """
    return envelope_from_json(load_json(data, "envelope", source), source)


def load_json(data: bytes, what: str, source: str) -> Any:
    """Untrusted JSON bytes, size-checked before they are parsed; `MalformedEnvelopeError`
    naming `what` (`envelope`, `bundle`) when they are too big or not JSON."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelopeError(
            f"{what} is {len(data)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit", file=source
        )
    try:
        return strict_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEnvelopeError(f"the {what} is not JSON: {exc}", file=source) from None
    except RecursionError:
        raise MalformedEnvelopeError(f"the {what} JSON nests too deeply", file=source) from None


def envelope_from_json(doc: Any, source: str = "envelope") -> Envelope:
    """An `Envelope` from its decoded JSON object (`payload`, `payloadType`, `signatures`)."""
    if not isinstance(doc, dict):
        raise MalformedEnvelopeError("a DSSE envelope is a JSON object", file=source)
    missing = [k for k in ("payload", "payloadType", "signatures") if k not in doc]
    if missing:
        raise MalformedEnvelopeError(
            f"DSSE envelope lacks {', '.join(missing)}", file=source, key=missing[0]
        )
    payload_type = doc["payloadType"]
    if not isinstance(payload_type, str) or not payload_type:
        raise MalformedEnvelopeError(
            "payloadType is not a non-empty string", file=source, key="payloadType"
        )
    payload = b64decode_field(doc["payload"], "payload", source)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedEnvelopeError(
            f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit",
            file=source,
            key="payload",
        )
    raw_signatures = doc["signatures"]
    if not isinstance(raw_signatures, list):
        raise MalformedEnvelopeError("signatures is not a list", file=source, key="signatures")
    if len(raw_signatures) > MAX_SIGNATURES:
        raise MalformedEnvelopeError(
            f"{len(raw_signatures)} signatures, over the limit of {MAX_SIGNATURES}",
            file=source,
            key="signatures",
        )
    signatures = []
    for index, item in enumerate(raw_signatures):
        key = f"signatures[{index}]"
        if not isinstance(item, dict) or "sig" not in item:
            raise MalformedEnvelopeError(f"{key} has no sig", file=source, key=key)
        keyid = item.get("keyid", "")
        if not isinstance(keyid, str):
            raise MalformedEnvelopeError(f"{key}.keyid is not a string", file=source, key=key)
        sig = b64decode_field(item["sig"], f"{key}.sig", source)
        if not sig:
            raise MalformedEnvelopeError(f"{key}.sig is empty", file=source, key=key)
        signatures.append(EnvelopeSignature(keyid=keyid, sig=sig))
    if not signatures:
        raise UnsignedEnvelopeError("DSSE envelope has no signatures", file=source)
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))


# --- verification cache ----------------------------------------------------------------------

_cache: LRU[tuple[str, str], VerifiedPayload | DsseError] = LRU(4096)


def _cached(
    envelope_digest: str, material_digest: str, verify: Callable[[], VerifiedPayload]
) -> VerifiedPayload:
    """Runs `verify` once per (envelope, trust material); failures are cached too.

    Verification is a pure function of those bytes (Sigstore time comes from the bundle's own
    signed timestamps), so a cached rejection is as good as a fresh one.
    """
    return remembered(_cache, (envelope_digest, material_digest), verify)


def remembered(cache: LRU[K, T | DsseError], key: K, verify: Callable[[], T]) -> T:
    """`verify()`'s answer under `key`, computed once: a `DsseError` is an answer too, raised
    again from the cache."""
    hit = cache.get(key)
    if hit is None:
        try:
            hit = verify()
        except DsseError as exc:
            hit = exc
        cache.put(key, hit)
    if isinstance(hit, DsseError):
        raise hit
    return hit


def clear_cache() -> None:
    """Forgets every cached verification result (tests; a reloaded trust policy)."""
    _cache.clear()


def cache_size() -> int:
    return len(_cache)


# --- public keys -------------------------------------------------------------------------------

_RSA_SCHEMES = tuple(
    f"{padding}-sha{bits}" for padding in ("rsassa-pss", "rsa-pkcs1v15") for bits in (256, 384, 512)
)


def candidate_keys(key: PublicKeyType) -> list[SSlibKey]:
    """The key as securesystemslib keys, under every scheme its type can sign with.

    A PEM file does not say whether an RSA key signs with PSS or PKCS#1 v1.5, or with which
    hash; EC and Ed25519 keys have exactly one scheme each.
    """
    base = SSlibKey.from_crypto(key)
    if base.keytype != "rsa":
        return [base]
    return [
        SSlibKey(base.keyid, base.keytype, scheme, dict(base.keyval)) for scheme in _RSA_SCHEMES
    ]


def _verify_key_signature(key: PublicKeyType, envelope: Envelope) -> bool:
    message = envelope.pae()
    for candidate in candidate_keys(key):
        for signature in envelope.signatures:
            # keyid is an unauthenticated hint in DSSE: verify every signature against the key
            # rather than trusting the hint (securesystemslib's Envelope.verify relies on it)
            try:
                candidate.verify_signature(Signature(candidate.keyid, signature.sig.hex()), message)
            except UnverifiedSignatureError:
                continue
            return True
    return False


def verify_with_key(
    data: bytes, authority: PublicKey, *, source: str = "envelope"
) -> VerifiedPayload:
    """Verifies a DSSE envelope (JSON bytes) against a public-key authority.

    Returns the verified payload when any signature of the envelope verifies with the key.
    Raises `MalformedEnvelopeError`, `UnsignedEnvelopeError` or `SignatureInvalidError`.
    """
    fingerprint = authority.fingerprint
    envelope_digest = sha256_digest(data)

    def verify() -> VerifiedPayload:
        envelope = parse_envelope(data, source)
        if not _verify_key_signature(authority.key, envelope):
            raise SignatureInvalidError(
                f"no signature of the envelope verifies with {authority.describe()} "
                f"[{fingerprint}]",
                file=source,
            )
        return VerifiedPayload(
            payload_type=envelope.payload_type,
            payload=envelope.payload,
            signer=SignerIdentity(kind="key", identity=fingerprint, authority=authority.name),
            envelope_digest=envelope_digest,
        )

    # the authority name is part of the key so that the signer recorded names the right one
    return _cached(envelope_digest, f"key:{fingerprint}:{authority.name}", verify)


# --- Sigstore keyless --------------------------------------------------------------------------


class _IdentityRejected(SigstoreVerificationError):
    """Raised inside sigstore's verification so that the caller can tell it from the rest."""


class _TellIdentityApart:
    """Wraps an authority's sigstore policy so an identity failure is recognisable afterwards.

    sigstore raises the same `VerificationError` for a bad chain, a bad log entry, a bad
    signature and a wrong identity; the finding must say which.
    """

    def __init__(self, authority: SigstoreIdentity) -> None:
        self.authority = authority
        self.matched = ""
        self.issuer = ""

    def verify(self, cert: Certificate) -> None:
        self.issuer = certificate_issuer_claim(cert) or ""
        try:
            self.authority.policy().verify(cert)
        except SigstoreVerificationError as exc:
            raise _IdentityRejected(str(exc)) from None
        self.matched = self.authority.matching_identity(cert)


def material_digest(authority: SigstoreIdentity) -> str:
    """A digest of everything a Sigstore authority verifies with: identity and trust root."""
    parts = [
        "sigstore",
        authority.name,
        authority.issuer,
        authority.subject or "",
        authority.subject_regexp.pattern if authority.subject_regexp else "",
    ]
    for path in authority.files():
        try:
            parts.append(sha256_digest(read_trust_file(path)))
        except TrustMaterialError:
            parts.append(str(path))  # it loaded a moment ago; the name still tells roots apart
    return sha256_digest("\n".join(parts).encode())


def parse_sigstore_bundle(data: bytes, *, source: str = "bundle") -> Bundle:
    """A Sigstore bundle from untrusted bytes, size-checked first; `MalformedEnvelopeError`
    when it is not one."""
    from sigstore.models import Bundle

    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelopeError(
            f"bundle is {len(data)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit", file=source
        )
    try:
        return Bundle.from_json(data)
    except (SigstoreError, ValueError, KeyError, TypeError) as exc:
        raise MalformedEnvelopeError(
            f"not a Sigstore bundle: {first_line(exc)}", file=source
        ) from None


def sigstore_verified(
    bundle: Bundle,
    authority: SigstoreIdentity,
    step: Callable[[Verifier, Bundle, VerificationPolicy], T],
    *,
    source: str = "bundle",
) -> tuple[T, SignerIdentity]:
    """Runs one sigstore-python verification `step` (`verify_dsse`, `verify_artifact`) of a
    bundle against a keyless identity, offline, and says who signed.

    The certificate must chain to the authority's trusted root at the bundle's signed time,
    the transparency-log entry must be consistent, and the certificate must name the identity.
    Raises `IdentityMismatchError` (a valid signature by someone else) or
    `SignatureInvalidError` (anything else fails).
    """
    from sigstore.verify import Verifier

    policy = _TellIdentityApart(authority)
    try:
        verifier = Verifier(trusted_root=authority.trusted_root)
        result = step(verifier, bundle, policy)
    except _IdentityRejected as exc:
        raise IdentityMismatchError(
            f"signed by another identity than {authority.describe()}: {exc}", file=source
        ) from None
    except (SigstoreError, ValueError) as exc:
        raise SignatureInvalidError(
            f"Sigstore verification against {authority.describe()} failed: {first_line(exc)}",
            file=source,
        ) from None
    signer = SignerIdentity(
        kind="sigstore", identity=policy.matched, issuer=policy.issuer, authority=authority.name
    )
    return result, signer


def verify_sigstore_bundle(
    data: bytes, authority: SigstoreIdentity, *, source: str = "bundle"
) -> VerifiedPayload:
    """Verifies a Sigstore bundle holding a DSSE envelope against a keyless identity, offline
    (`sigstore_verified`). Raises `MalformedEnvelopeError` (not a bundle, no DSSE envelope),
    `IdentityMismatchError` or `SignatureInvalidError`.
    """
    # upstream imports model-signing too: paid only when a Sigstore bundle is verified
    from auditor.provenance import upstream

    envelope_digest = sha256_digest(data)

    def verify() -> VerifiedPayload:
        bundle = parse_sigstore_bundle(data, source=source)
        try:
            envelope = upstream.dsse_envelope(bundle)
        except SigstoreError as exc:  # sigstore wants exactly one signature, among others
            raise MalformedEnvelopeError(
                f"the bundle's DSSE envelope is unusable: {first_line(exc)}", file=source
            ) from None
        if envelope is None:
            raise MalformedEnvelopeError(
                "the Sigstore bundle signs an artifact, not a DSSE envelope", file=source
            )
        (payload_type, payload), signer = sigstore_verified(
            bundle, authority, lambda v, b, p: v.verify_dsse(b, p), source=source
        )
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise MalformedEnvelopeError(
                f"payload is over the {MAX_PAYLOAD_BYTES}-byte limit", file=source
            )
        return VerifiedPayload(
            payload_type=payload_type,
            payload=payload,
            signer=signer,
            envelope_digest=envelope_digest,
        )

    return _cached(envelope_digest, material_digest(authority), verify)


def verify_envelope(
    data: bytes, authority: Authority, *, source: str = "attestation"
) -> VerifiedPayload:
    """Verifies an attestation against one trust-policy authority, whatever its kind.

    A public key verifies a bare DSSE envelope; a Sigstore identity verifies a Sigstore bundle
    that holds one. Certificate-chain authorities sign model-signing bundles, not attestations:
    naming one here is a configuration mistake (`ConfigError`).
    """
    if isinstance(authority, PublicKey):
        return verify_with_key(data, authority, source=source)
    if isinstance(authority, SigstoreIdentity):
        return verify_sigstore_bundle(data, authority, source=source)
    raise ConfigError(
        f"authority {authority.describe()} cannot verify DSSE attestations: "
        "use a key or sigstore authority",
        key=authority.name,
    )


def attestation_finding(
    error: DsseError, *, ref: ResourceRef, path: str = "/provenance/attestation"
) -> Finding:
    """The finding for an attestation that failed: its check id is the error's exact reason.

    `path` keeps findings for several attestations of one resource apart (their fingerprints
    include it): the binding passes e.g. `/provenance/attestation/provenance.json`.
    """
    where = f" ({error.file})" if error.file else ""
    return checks.finding(
        error.check,
        ref,
        path,
        f"{ref.display()}: attestation{where} rejected: {error.message}",
        severity=checks.ATTESTATION_SEVERITY,
        details={"file": error.file} if error.file else {},
    )
