"""Verifying a model-signing bundle with a public-key authority (model-signing's EC keys)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature

from auditor import checks
from auditor.errors import first_line
from auditor.provenance import upstream
from auditor.provenance.signing.bundles import READ_ERRORS, Bundle
from auditor.provenance.signing.results import Problem, SignedContent
from auditor.trust.authorities import PublicKey


def verify_key(authority: PublicKey, bundle: Bundle) -> SignedContent | Problem:
    """The signed content when the key made the signature; else the exact reason it did not."""
    path = bundle.path
    if authority.key_type.startswith(("ed25519", "rsa")):
        return Problem(
            checks.UNVERIFIED,
            f"{authority.describe()} cannot verify {path.name}: model-signing signs models "
            "with EC P-256/P-384/P-521 keys only",
        )
    try:
        signature = upstream.read_protobuf_bundle(path)
    except READ_ERRORS as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is not a readable bundle: {exc}")
    verifier = upstream.key_verifier(authority.path)
    try:
        payload_type, payload = upstream.signed_content(verifier, signature)
    except InvalidSignature:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"the signature in {path.name} does not verify with {authority.describe()}",
            expected=authority.fingerprint,
        )
    except ValueError as exc:
        # The key hint in the bundle names another key ("Key mismatch"), or a bad media type.
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{path.name} was not signed by {authority.describe()}: {first_line(exc)}",
            expected=authority.fingerprint,
            actual=_key_hint(bundle),
        )
    except (TypeError, KeyError, IndexError, AttributeError) as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is malformed: {exc}")
    return SignedContent(payload_type, payload, authority.fingerprint)


def _key_hint(bundle: Bundle) -> str | None:
    hint = bundle.document.get("verificationMaterial", {}).get("publicKey", {}).get("hint")
    return f"sha256:{hint}" if isinstance(hint, str) and hint else None


__all__ = ["verify_key"]
