"""Verifying a model-signing bundle with a certificate-chain authority."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from OpenSSL import crypto as openssl_crypto

from auditor import checks
from auditor.errors import first_line
from auditor.provenance import upstream
from auditor.provenance.signing.bundles import READ_ERRORS, Bundle
from auditor.provenance.signing.results import Problem, SignedContent
from auditor.trust.authorities import CertificateChain


def verify_certificate(authority: CertificateChain, bundle: Bundle) -> SignedContent | Problem:
    """The signed content when the signing certificate chains to the authority's certificates
    and made the signature; else the exact reason it did not."""
    path = bundle.path
    try:
        signature = upstream.read_protobuf_bundle(path)
        leaf = _leaf_certificate(signature)
    except READ_ERRORS as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is not a readable bundle: {exc}")
    verifier = upstream.certificate_verifier(authority.paths)
    try:
        payload_type, payload = upstream.signed_content(verifier, signature)
    except openssl_crypto.X509StoreContextError as exc:
        return Problem(
            checks.IDENTITY_MISMATCH,
            f"the signing certificate of {path.name} ({leaf.subject.rfc4514_string()}) does "
            f"not chain to {authority.describe()}: {exc}",
            expected=authority.describe(),
            actual=f"issued by {leaf.issuer.rfc4514_string()}",
        )
    except InvalidSignature:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"the signature in {path.name} does not verify with its signing certificate "
            f"({leaf.subject.rfc4514_string()})",
        )
    except READ_ERRORS as exc:
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is malformed: {first_line(exc)}")
    return SignedContent(payload_type, payload, leaf.subject.rfc4514_string())


def _leaf_certificate(signature: upstream.ProtobufSignature) -> x509.Certificate:
    chain = signature.bundle.verification_material.x509_certificate_chain
    if chain is None or not chain.certificates:
        raise ValueError("the bundle has no signing certificate")
    return x509.load_der_x509_certificate(chain.certificates[0].raw_bytes)


__all__ = ["verify_certificate"]
