"""One signature file: read it, verify it with every authority of its kind, and check that
what each authority vouches for is exactly the model's files."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from model_signing import manifest as ms_manifest

from auditor import checks
from auditor.provenance import upstream
from auditor.provenance.signing.bundles import KIND_TEXT, Bundle, read_bundle
from auditor.provenance.signing.certificate import verify_certificate
from auditor.provenance.signing.key import verify_key
from auditor.provenance.signing.manifest import (
    Hasher,
    diff_text,
    manifest_diff,
    manifest_digest,
    statement_manifest,
)
from auditor.provenance.signing.results import Problem, SignedContent
from auditor.provenance.signing.sigstore import verify_sigstore
from auditor.trust.authorities import Authority, CertificateChain, PublicKey, SigstoreIdentity
from auditor.trust.policy import TrustPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Authentic:
    """A signature an authority vouches for, with the statement it signed."""

    authority: Authority
    identity: str
    manifest: ms_manifest.Manifest
    digest: str  # sha256:<hex>


@dataclass(slots=True)
class SignatureOutcome:
    path: Path
    authentic: list[Authentic] = field(default_factory=list)
    failures: list[tuple[Authority | None, Problem]] = field(default_factory=list)
    problem: Problem | None = None  # set when no authority could even be tried


def check_signature(path: Path, policy: TrustPolicy, hasher: Hasher | None) -> SignatureOutcome:
    """Which authorities of `policy` vouch for exactly the model's files in this signature.

    Without a hasher (the files are not reachable) the signed manifest stands as is.
    """
    outcome = SignatureOutcome(path=path)
    bundle = read_bundle(path)
    if isinstance(bundle, Problem):
        outcome.problem = bundle
        return outcome
    candidates = [a for a in policy.authorities if a.kind == bundle.kind]
    if not candidates:
        outcome.problem = Problem(
            checks.UNVERIFIED,
            f"{path.name} is signed with {KIND_TEXT[bundle.kind]}, and the trust policy has no "
            "authority of that kind",
        )
        return outcome
    for authority in candidates:
        result = _check_with(authority, bundle, hasher)
        if isinstance(result, Problem):
            outcome.failures.append((authority, result))
        else:
            outcome.authentic.append(result)
    return outcome


def _check_with(authority: Authority, bundle: Bundle, hasher: Hasher | None) -> Authentic | Problem:
    path = bundle.path
    verified = _authenticate(authority, bundle)
    if isinstance(verified, Problem):
        return verified
    statement = statement_manifest(verified.payload, path)
    if isinstance(statement, Problem):
        return statement
    signed_manifest, digest = statement
    if hasher is None:
        return Authentic(authority, verified.identity, signed_manifest, digest)
    actual = hasher.manifest(signed_manifest.serialization_type, expected=signed_manifest)
    if isinstance(actual, Problem):
        return actual
    if actual != signed_manifest:
        diff = manifest_diff(actual, signed_manifest)
        return Problem(
            checks.DIGEST_MISMATCH,
            f"the model files differ from the manifest signed in {path.name} by "
            f"{authority.name}: " + diff_text(diff),
            expected=digest,
            actual=manifest_digest(actual),
            details={**diff, "signature": str(path)},
        )
    return Authentic(authority, verified.identity, signed_manifest, digest)


def _authenticate(authority: Authority, bundle: Bundle) -> SignedContent | Problem:
    """The authenticated in-toto payload and signer identity, or the exact reason it is not."""
    captured = io.StringIO()
    try:
        # model-signing prints a warning to stdout for pre-1.0 key bundles; stdout is reserved
        # for `-o json`, so it goes to the log instead. The redirect is process-wide for this
        # short, CPU-only step; nothing else in auditor prints while verifying.
        with contextlib.redirect_stdout(captured):
            result = _verify_with(authority, bundle)
    finally:
        if captured.getvalue().strip():
            logger.info("model-signing: %s", captured.getvalue().strip())
    if isinstance(result, Problem):
        return result
    if result.payload_type != upstream.IN_TOTO_JSON_PAYLOAD_TYPE:
        return Problem(
            checks.SIGNATURE_INVALID,
            f"{bundle.path.name} signs a {result.payload_type!r} payload, not an in-toto statement",
        )
    return result


def _verify_with(authority: Authority, bundle: Bundle) -> SignedContent | Problem:
    if isinstance(authority, PublicKey):
        return verify_key(authority, bundle)
    if isinstance(authority, CertificateChain):
        return verify_certificate(authority, bundle)
    assert isinstance(authority, SigstoreIdentity)
    return verify_sigstore(authority, bundle)


__all__ = ["Authentic", "SignatureOutcome", "check_signature"]
