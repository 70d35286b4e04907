"""Verifying a model-signing bundle with a Sigstore keyless authority, offline.

model-signing's `sign_sigstore.Verifier` builds its sigstore `Verifier` from a
ClientTrustConfig, or from TUF (the network) without one; we make the same `verify_dsse` call
with a verifier built from the authority's local TrustedRoot instead.
"""

from __future__ import annotations

from cryptography import x509
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.verify import Verifier as SigstoreVerifier

from auditor import checks
from auditor.errors import first_line
from auditor.provenance import upstream
from auditor.provenance.signing.bundles import READ_ERRORS, Bundle
from auditor.provenance.signing.results import Problem, SignedContent
from auditor.trust.authorities import (
    SigstoreIdentity,
    certificate_identities,
    certificate_issuer_claim,
)


class _IdentityMismatch(SigstoreVerificationError):
    """The Sigstore signature is sound but the certificate belongs to someone else."""


class _AcceptAny:
    """A sigstore policy that defers the identity check to `_verify_offline`."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


def verify_sigstore(authority: SigstoreIdentity, bundle: Bundle) -> SignedContent | Problem:
    """The signed content when the certificate chains to the authority's trusted root, the log
    entry and signature verify, and the certificate names the authority's identity; else the
    exact reason."""
    path = bundle.path
    try:
        signature = upstream.read_sigstore_bundle(path)
    except (SigstoreError, *READ_ERRORS) as exc:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{path.name} is not a readable Sigstore bundle: {first_line(exc)}",
        )
    verifier = SigstoreVerifier(trusted_root=authority.trusted_root)
    try:
        payload_type, payload, certificate = _verify_offline(authority, verifier, signature)
    except _IdentityMismatch as exc:
        cert = signature.bundle.signing_certificate
        return Problem(
            checks.IDENTITY_MISMATCH,
            f"{path.name} was signed by {', '.join(certificate_identities(cert)) or '?'} "
            f"from {certificate_issuer_claim(cert) or '?'}, not {authority.describe()}: {exc}",
            expected={"subject": authority.expected_identity, "issuer": authority.issuer},
            actual={
                "subjects": list(certificate_identities(cert)),
                "issuer": certificate_issuer_claim(cert),
            },
        )
    except CertValidationError as exc:
        return Problem(
            checks.IDENTITY_MISMATCH,
            f"the certificate in {path.name} does not chain to the trust root of "
            f"{authority.describe()}: {first_line(exc)}",
        )
    except SigstoreVerificationError as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} does not verify: {first_line(exc)}")
    except SigstoreError as exc:  # e.g. an envelope without exactly one signature
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is malformed: {first_line(exc)}")
    except READ_ERRORS as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is malformed: {first_line(exc)}")
    return SignedContent(payload_type, payload, authority.matching_identity(certificate))


def _verify_offline(
    authority: SigstoreIdentity, verifier: SigstoreVerifier, signature: upstream.SigstoreSignature
) -> tuple[str, bytes, x509.Certificate]:
    bundle = signature.bundle
    # Verify everything but the identity first, so that a sound signature by someone else
    # (identity_mismatch) reads differently from a broken one (signature_invalid). The
    # identity is still checked before anything is returned.
    payload_type, payload = verifier.verify_dsse(bundle=bundle, policy=_AcceptAny())
    certificate = bundle.signing_certificate
    try:
        authority.policy().verify(certificate)
    except SigstoreVerificationError as exc:
        raise _IdentityMismatch(str(exc)) from None
    return payload_type, payload, certificate


__all__ = ["verify_sigstore"]
