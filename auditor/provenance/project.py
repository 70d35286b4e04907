"""One projection from a serving resource's check results to what the stage emits: its
findings, its attestation records, and the `provenance` document of its policy input.

The binding that matters is running == declared == signed: the model-signature record and the
document's `verified` hold only when the signature binds Git's digest, the pods of an OCI model
run it, and the cluster serves the model Git declares. SLSA provenance and the layout are
judged on their own (a dataset mismatch does not unsign the model), and reported after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor import checks
from auditor.model import (
    Attestation,
    Finding,
    ModelRef,
    ProvenanceReason,
    ProvenanceResult,
    ResourceRef,
)
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.provenance.checks.layout import LayoutCheck
from auditor.provenance.checks.running import RunningCheck
from auditor.provenance.checks.signature import SignatureCheck
from auditor.provenance.checks.slsa import SlsaCheck


@dataclass(frozen=True, slots=True)
class Undeclared:
    """A serving resource Git names no model for: nothing in Git can vouch for what it serves.

    Drift already reports it (a manual deployment, or a model added by hand); provenance adds
    no finding, only the reason its document is unverified.
    """

    ref: ResourceRef
    in_git: bool  # Git declares the object, without a model


@dataclass(frozen=True, slots=True)
class ResourceChecks:
    """Every check of one serving resource whose Git body names a model."""

    ref: ResourceRef
    declared: ModelRef  # what Git names
    live: ModelRef | None  # what the live object names, when it is live
    directory: AttestationDirectory
    signature: SignatureCheck
    running: RunningCheck | None  # OCI models only
    slsa: SlsaCheck
    layout: LayoutCheck


@dataclass(frozen=True, slots=True)
class Projection:
    findings: tuple[Finding, ...]
    attestations: tuple[Attestation, ...]
    result: ProvenanceResult


def project(subject: ResourceChecks | Undeclared) -> Projection:
    """The findings, records and policy document of one resource, in the order reports list
    them: the binding's findings first (the model-signature record's reason is the first of
    them), then SLSA's, then the layout's."""
    if isinstance(subject, Undeclared):
        return _undeclared(subject)
    ref, declared, signature = subject.ref, subject.declared, subject.signature
    running = subject.running
    binding = _binding_findings(subject)
    served_other = _serves_other_model(declared, subject.live)
    verified = signature.bound and not (running is not None and running.mismatch)
    verified = verified and served_other is None
    # the policy names the resource itself: its reasons read without the prefix
    prefix = f"{ref.display()}: "
    reasons = [ProvenanceReason(f.check, f.message.removeprefix(prefix)) for f in binding]
    if served_other is not None:
        reasons.append(served_other)
    verification = signature.verification
    result = ProvenanceResult(
        verified=verified,
        reasons=tuple(reasons),
        signers=tuple(s.to_json() for s in verification.signers),
        checked=True,
        digest=signature.digest,
        declared_digest=declared.digest,
        mode=signature.mode,
        requirement=verification.requirement,
        datasets=subject.slsa.datasets,
        attestations=subject.directory.at,
        slsa=subject.slsa.slsa,
        layout=subject.layout.layout,
        running=running.document if running is not None else None,
    )
    record = signature.attestation(ref, declared, verified=verified, findings=binding)
    return Projection(
        findings=(*binding, *subject.slsa.findings, *subject.layout.findings),
        attestations=(record, *subject.slsa.attestations, *subject.layout.attestations),
        result=result,
    )


def _undeclared(undeclared: Undeclared) -> Projection:
    why = (
        "Git names no model for it; the live object does"
        if undeclared.in_git
        else "it is not declared in Git"
    )
    result = ProvenanceResult.unverified(
        checks.DIGEST_UNDECLARED, f"{undeclared.ref.display()}: no provenance: {why}"
    )
    return Projection((), (), result)


def _binding_findings(subject: ResourceChecks) -> tuple[Finding, ...]:
    """What breaks running == declared == signed, most basic first: no digest in Git, no
    readable attestation directory, the signature, the digests, the pods."""
    signature, running = subject.signature, subject.running
    return tuple(
        f
        for f in (
            signature.undeclared,
            subject.directory.finding,
            *signature.findings,
            signature.mismatch,
            running.finding if running is not None else None,
        )
        if f is not None
    )


def _serves_other_model(declared: ModelRef, live: ModelRef | None) -> ProvenanceReason | None:
    """The model that serves is the live spec's: a live URI or digest other than Git's is
    drift (reported there), and the signature of Git's model says nothing about it."""
    if live is None or (live.uri == declared.uri and live.digest == declared.digest):
        return None
    return ProvenanceReason(
        checks.DRIFT_CHANGED,
        f"the cluster serves {live.uri or live.digest}, not the model Git declares "
        f"({declared.uri or declared.digest or '?'})",
    )
