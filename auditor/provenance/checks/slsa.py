"""SLSA provenance: the model was built from the datasets Git pins, by an authority the rule
names.

Every `*.intoto.json` (one envelope) or `*.intoto.jsonl` (one envelope a line) in the
attestation directory is verified against each key or Sigstore authority of the matching rule
(`provenance.signature_invalid`, `identity_mismatch`, `malformed`, `unverified`); a verified
statement's subject must be the model digest (`provenance.digest_mismatch`) and its datasets
the outs the lockfile pins (`provenance.dataset_mismatch`). Datasets pinned with no provenance
to bind them to the model are `provenance.provenance_missing`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor import checks
from auditor.model import Attestation, Finding, GitFile, ResourceRef
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.provenance.checks.rule import rule_authorities
from auditor.provenance.datasets import PinnedDatasets, check_provenance, digests_agree
from auditor.provenance.dsse import DsseError, VerifiedPayload, attestation_finding
from auditor.provenance.gitfiles import documents
from auditor.provenance.slsa import MalformedStatementError, Provenance, verify_provenance
from auditor.trust.authorities import PublicKey, SigstoreIdentity
from auditor.trust.policy import ModelRule, TrustPolicy

# the authority kinds that can verify a DSSE attestation: a certificate chain signs model
# bundles only, so a rule's chain is passed over here rather than refused (verify_envelope would)
EnvelopeAuthority = PublicKey | SigstoreIdentity

# When no authority verifies an envelope, the failure reported is the most telling one: a
# valid signature by the wrong identity says more than a bad signature, which says more than
# none at all.
_DSSE_PRIORITY = {"identity_mismatch": 0, "signature_invalid": 1, "unsigned": 2, "malformed": 3}


@dataclass(frozen=True, slots=True)
class SlsaCheck:
    """Every provenance envelope of one resource, and what the policy input says of them."""

    findings: tuple[Finding, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    datasets: tuple[Mapping[str, Any], ...] = ()  # of the statement the document describes
    slsa: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Statement:
    """A verified statement: its datasets (each `declared` or not) and its summary."""

    verified: bool  # signed, and bound to the model and to Git's datasets
    datasets: tuple[Mapping[str, Any], ...]
    slsa: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Envelope:
    findings: tuple[Finding, ...]
    attestation: Attestation
    statement: _Statement | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """What every envelope of one resource is checked against."""

    ref: ResourceRef
    rule: ModelRule | None
    authorities: tuple[EnvelopeAuthority, ...]
    model_digest: str | None
    pinned: PinnedDatasets | None
    max_bytes: int


def check_slsa(
    ref: ResourceRef,
    directory: AttestationDirectory,
    *,
    model_digest: str | None,
    rule: ModelRule | None,
    trust: TrustPolicy,
    pinned: PinnedDatasets | None,
    max_bytes: int,
) -> SlsaCheck:
    """The SLSA check of one resource. `model_digest` is the digest the provenance must be
    for (Git's, else the signed one); `pinned` the datasets Git pins, when a lockfile is set."""
    files = directory.files.provenance
    if not files:
        missing = () if pinned is None else (_missing(ref, directory, pinned),)
        return SlsaCheck(findings=missing)
    authorities = tuple(
        a for a in rule_authorities(trust, rule) if isinstance(a, PublicKey | SigstoreIdentity)
    )
    target = _Target(ref, rule, authorities, model_digest, pinned, max_bytes)
    envelopes = [
        _check_envelope(target, source, file, data)
        for file in files
        for source, data in documents(file)
    ]
    chosen: _Statement | None = None
    for envelope in envelopes:
        # the document describes the first statement that verifies, else the last one read
        if envelope.statement is not None and (chosen is None or not chosen.verified):
            chosen = envelope.statement
    return SlsaCheck(
        findings=tuple(f for e in envelopes for f in e.findings),
        attestations=tuple(e.attestation for e in envelopes),
        datasets=chosen.datasets if chosen is not None else (),
        slsa=chosen.slsa if chosen is not None else None,
    )


def _missing(ref: ResourceRef, directory: AttestationDirectory, pinned: PinnedDatasets) -> Finding:
    where = f"in {directory.shown}" if directory.files.exists else "was found"
    return checks.finding(
        checks.PROVENANCE_MISSING,
        ref,
        "/provenance/attestation",
        f"{ref.display()}: no SLSA provenance (*.intoto.json) {where}: the datasets pinned "
        f"in {pinned.where} cannot be bound to the model",
    )


def _check_envelope(target: _Target, source: str, file: GitFile, data: bytes | None) -> _Envelope:
    envelope = _Source(target.ref, source, file)
    if data is None:
        error = MalformedStatementError(
            f"{file.size} bytes, over the {target.max_bytes}-byte limit", file=source
        )
        return envelope.rejected(error)
    if not target.authorities:
        return _unverifiable(target, envelope)
    errors: list[DsseError] = []
    for authority in target.authorities:
        try:
            provenance, verified = verify_provenance(data, authority, source=source)
        except MalformedStatementError as exc:
            # authentic, but not an SLSA statement: the same for every authority
            return envelope.rejected(exc, authority=authority.name)
        except DsseError as exc:
            errors.append(exc)
            continue
        return _verified(target, envelope, provenance, verified)
    best = min(errors, key=lambda e: _DSSE_PRIORITY.get(e.reason, 9))
    tried = {"tried": [a.name for a in target.authorities], "reason": best.message}
    return envelope.rejected(best, details=tried)


@dataclass(frozen=True, slots=True)
class _Source:
    """One envelope as Git holds it, which its finding and its record name."""

    ref: ResourceRef
    source: str  # `dir/provenance.intoto.jsonl@1a2b3c4d5e6f#2`
    file: GitFile

    @property
    def path(self) -> str:
        # one path per file keeps the findings of several attestations apart (fingerprints)
        return f"/provenance/attestation/{self.file.name}"

    def rejected(self, error: DsseError, **fields: Any) -> _Envelope:
        finding = attestation_finding(error, ref=self.ref, path=self.path)
        return _Envelope((finding,), self.record(False, error.check, **fields))

    def record(self, verified: bool, reason: str | None, **fields: Any) -> Attestation:
        fields.setdefault("bundle_digest", self.file.digest)
        return Attestation(
            ref=self.ref,
            attestation="slsa-provenance",
            verified=verified,
            source=self.source,
            reason=reason,
            **fields,
        )


def _unverifiable(target: _Target, envelope: _Source) -> _Envelope:
    """No authority of the rule can verify an attestation; without a rule the model's own
    `provenance.no_rule` already says so, and a second finding would repeat it."""
    ref, rule = target.ref, target.rule
    record = envelope.record(False, checks.UNVERIFIED)
    if rule is None:
        return _Envelope((), record)
    why = (
        f"the matching rule ({rule.requirement.describe()}) names no key or "
        "Sigstore authority that can verify attestations"
    )
    finding = checks.finding(
        checks.UNVERIFIED,
        ref,
        envelope.path,
        f"{ref.display()}: provenance {envelope.source} unverified: {why}",
    )
    return _Envelope((finding,), record)


def _verified(
    target: _Target, envelope: _Source, provenance: Provenance, verified: VerifiedPayload
) -> _Envelope:
    """A signed statement, checked against the model digest and the datasets Git pins."""
    pinned = target.pinned
    findings = tuple(
        dataclasses.replace(f, details={**f.details, "attestation": envelope.source})
        for f in check_provenance(
            provenance,
            model_digest=target.model_digest,
            declared=pinned.datasets if pinned is not None else None,
            ref=target.ref,
            declared_in=pinned.where if pinned is not None else "Git",
        )
    )
    ok = not findings
    signer = verified.signer
    statement = _Statement(
        verified=ok,
        datasets=_datasets(provenance, pinned),
        slsa={
            "verified": ok,
            "source": envelope.source,
            "builder_id": provenance.builder_id,
            "build_type": provenance.build_type,
            "subjects": list(provenance.subject_digests),
            "signer": signer.to_json(),
            "checks": sorted({f.check for f in findings}),
        },
    )
    attestation = envelope.record(
        ok,
        findings[0].check if findings else None,
        bundle_digest=verified.envelope_digest,
        subject_digest=provenance.subject_digests[0] if provenance.subject_digests else None,
        authority=signer.authority,
        identity=signer.identity,
        details={
            "builder_id": provenance.builder_id,
            "datasets": [d.to_json() for d in provenance.datasets],
            "lockfile": pinned.where if pinned is not None else None,
        },
    )
    return _Envelope(findings, attestation, statement)


def _datasets(
    provenance: Provenance, pinned: PinnedDatasets | None
) -> tuple[Mapping[str, Any], ...]:
    """The statement's datasets for the policy input, each `declared` when Git pins the same."""
    if pinned is None:
        return tuple(d.to_json() for d in provenance.datasets)
    declared = {d.key: d for d in pinned.datasets}
    out: list[Mapping[str, Any]] = []
    for dataset in provenance.datasets:
        want = declared.get(dataset.key)
        agree = want is not None and digests_agree(want.digest, dataset.digest) is None
        out.append({**dataset.to_json(), "declared": agree})
    return tuple(out)


__all__ = ["SlsaCheck", "check_slsa"]
