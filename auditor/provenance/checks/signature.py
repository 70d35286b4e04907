"""The model's own signature: the digest Git declares is the subject digest of a signature by
the authorities the matching trust rule requires.

- Git must pin a digest (`provenance.digest_undeclared`): the annotation
  `auditor.gitops.ml/model-digest` or an `oci://…@sha256:` URI.
- The model-signing bundles (`*.sig`) of the attestation directory must satisfy the rule that
  matches the resource's namespace/name (`provenance.no_rule`, `provenance.unsigned`, and
  model-signing's own reasons). When `models.root` holds the model's files they are hashed and
  must be exactly the signed ones (mode `files`); otherwise the bundle's signed subject digest
  stands as is (mode `bundle`).
- The declared digest is the signed one (`provenance.digest_mismatch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from auditor import checks
from auditor.model import Attestation, Finding, GitFile, ModelRef, ResourceRef
from auditor.provenance import signing as ms
from auditor.provenance.bundles import BundleVerifier
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.trust.policy import ModelRule

# model URI schemes whose path maps to a directory under models.root: `gs://bucket/path` ->
# `<root>/bucket/path`, `pvc://claim/path` -> `<root>/claim/path` (docs/configuration.md)
MODEL_ROOT_SCHEMES = ("gs", "s3", "pvc", "hf", "azureblob")

Mode = Literal["files", "bundle", "image", "none"]


def model_directory(root: str | Path, uri: str | None) -> Path | None:
    """Where the files of `uri` are under `root`, when they are there; None otherwise.

    `gs://b/p`, `s3://b/p`, `pvc://claim/p`, `hf://org/name`, `azureblob://c/p` map to
    `<root>/<b>/<p>`. Paths that could leave the root (`..`, empty segments, a symlink out)
    never map: the model is then verified from its bundle alone.
    """
    if not uri:
        return None
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in MODEL_ROOT_SCHEMES:
        return None
    rest = rest.split("?", 1)[0].split("#", 1)[0].strip("/")
    parts = rest.split("/")
    if not rest or any(p in ("", ".", "..") for p in parts) or "\\" in rest:
        return None
    base = Path(root).resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base) or not candidate.exists():
        return None
    return candidate


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The model signature of one resource and the digest Git declares for it."""

    verification: ms.ModelVerification
    mode: Mode  # files | bundle | image (an OCI image's signature) | none (no signature at all)
    bundles: tuple[GitFile, ...]
    undeclared: Finding | None  # provenance.digest_undeclared
    findings: tuple[Finding, ...]  # model-signing's reasons, naming bundles as Git does
    mismatch: Finding | None  # provenance.digest_mismatch: declared != signed
    kind: str = "model-signature"  # the attestation record: model-signature | image-signature

    @property
    def digest(self) -> str | None:
        """The signed subject digest, when a bundle claims one."""
        return self.verification.digest

    @property
    def bound(self) -> bool:
        """Git pins a digest, a required authority signed it, and they are the same."""
        return self.verification.verified and self.undeclared is None and self.mismatch is None

    def attestation(
        self, ref: ResourceRef, declared: ModelRef, *, verified: bool, findings: Sequence[Finding]
    ) -> Attestation:
        """The model's signature record. `verified` and `findings` are the whole binding's
        (running digest and live model included), which only the projection knows."""
        verification, bundles = self.verification, self.bundles
        return Attestation(
            ref=ref,
            attestation=self.kind,
            verified=verified,
            source=", ".join(b.at for b in bundles),
            bundle_digest=bundles[0].digest if len(bundles) == 1 else None,
            subject_digest=verification.digest,
            authority=", ".join(s.authority for s in verification.signers) or None,
            identity=", ".join(s.identity for s in verification.signers) or None,
            reason=findings[0].check if findings and not verified else None,
            details={
                "mode": self.mode,
                "model": verification.model_path or declared.uri,
                "declared_digest": declared.digest,
                "requirement": verification.requirement,
                "bundles": [{"path": b.at, "digest": b.digest} for b in bundles],
                "checks": sorted({f.check for f in findings}),
            },
        )


def check_signature(
    ref: ResourceRef,
    declared: ModelRef,
    rule: ModelRule | None,
    directory: AttestationDirectory,
    verifier: BundleVerifier,
    *,
    models_root: str | None,
    trust_source: str,
) -> SignatureCheck:
    """The signature check of one serving resource whose Git body names `declared`."""
    undeclared = None if declared.digest else undeclared_finding(ref, declared)
    model = model_directory(models_root, declared.uri) if models_root else None
    bundles = directory.files.signatures
    if not bundles:
        missing = _unsigned(ref, rule, directory, trust_source)
        verification = ms.ModelVerification(
            verified=False,
            model_path=declared.uri or "",
            digest=None,
            signers=(),
            findings=missing,
            ref=ref,
            requirement=rule.describe() if rule else None,
        )
        return SignatureCheck(verification, "none", (), undeclared, missing, None)
    verified = verifier.verify(bundles, ref, rule, model, declared.uri or "")
    return SignatureCheck(
        verification=verified.verification,
        mode="files" if model else "bundle",
        bundles=bundles,
        undeclared=undeclared,
        findings=verified.findings,
        mismatch=_mismatch(ref, declared.digest, verified.verification.digest),
    )


def undeclared_finding(ref: ResourceRef, declared: ModelRef) -> Finding:
    """`provenance.digest_undeclared`: Git names the model without pinning its digest."""
    return checks.finding(
        checks.DIGEST_UNDECLARED,
        ref,
        "/metadata/annotations/auditor.gitops.ml~1model-digest",
        f"{ref.display()}: Git pins no digest for model {declared.uri or '?'}: set the "
        "auditor.gitops.ml/model-digest annotation to its signed digest, or use "
        "an oci://…@sha256: URI",
        expected="sha256:<digest>",
    )


def _unsigned(
    ref: ResourceRef, rule: ModelRule | None, directory: AttestationDirectory, trust_source: str
) -> tuple[Finding, ...]:
    missing: list[Finding] = []
    if rule is None:
        missing.append(no_rule_finding(ref, trust_source))
    where = directory_text(directory)
    missing.append(
        checks.finding(
            checks.UNSIGNED,
            ref,
            "/provenance/signature",
            f"{ref.display()}: no model signature (*.sig) {where}",
        )
    )
    return tuple(missing)


def no_rule_finding(ref: ResourceRef, trust_source: str) -> Finding:
    """`provenance.no_rule`: no trust.models rule names the resource, so nobody vouches."""
    return checks.finding(
        checks.NO_RULE,
        ref,
        "/provenance/signature",
        f"{ref.display()}: no trust.models rule matches namespace "
        f"{ref.namespace!r}, name {ref.name!r}: unverified (fail closed)",
        details={"trust_policy": trust_source},
    )


def directory_text(directory: AttestationDirectory) -> str:
    """Where signatures were looked for, as `no … {where}` messages end."""
    if directory.files.exists:
        return f"in {directory.shown}"
    if directory.files.directory:
        return f"at {directory.shown} (no such directory)"
    return "(no auditor.gitops.ml/attestations annotation and no provenance.attestations in config)"


def _mismatch(ref: ResourceRef, declared: str | None, signed: str | None) -> Finding | None:
    if declared is None or signed is None or signed == declared:
        return None
    return checks.finding(
        checks.DIGEST_MISMATCH,
        ref,
        "/provenance/digest",
        f"{ref.display()}: Git declares model digest {declared}, the signature is for {signed}",
        expected=declared,
        actual=signed,
    )
