"""Every check auditor runs: its id, category, default severity, title and help text.

One registry, read by the stages that emit findings, by config (which ids `severity.checks`
may name) and by the reports (SARIF rules, JUnit, PolicyReport). A policy is a check too: its
id is the policy's, its severity and title come from the policy's METADATA.

Severity overrides from config (`severity.checks`) are applied here, once, to the findings of
every category (`apply_overrides`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.model import Category, Finding, ResourceRef, Severity


@dataclass(frozen=True, slots=True)
class Check:
    """One check id as reports describe it."""

    id: str
    category: Category
    severity: (
        Severity  # the default; drift.changed, drift.removed and drift.added take their class's
    )
    title: str
    help: str


def _table(category: Category, rows: Iterable[tuple[str, Severity, str, str]]) -> dict[str, Check]:
    return {
        check_id: Check(check_id, category, severity, title, help_text)
        for check_id, severity, title, help_text in rows
    }


# Drift: a changed, removed or added field takes the severity of its class (DESIGN "Drift
# semantics").
DRIFT_CHANGED = "drift.changed"
DRIFT_MISSING = "drift.missing"
DRIFT_UNMANAGED = "drift.unmanaged"
DRIFT_REMOVED = "drift.removed"
DRIFT_ADDED = "drift.added"

# Provenance: the model that runs is the one Git declares and a required authority signed.
UNSIGNED = "provenance.unsigned"
SIGNATURE_INVALID = "provenance.signature_invalid"
IDENTITY_MISMATCH = "provenance.identity_mismatch"
DIGEST_MISMATCH = "provenance.digest_mismatch"
AUTHORITY_NOT_REQUIRED = "provenance.authority_not_required"
UNVERIFIED = "provenance.unverified"
NO_RULE = "provenance.no_rule"
MALFORMED = "provenance.malformed"
DIGEST_UNDECLARED = "provenance.digest_undeclared"
RUNNING_DIGEST_MISMATCH = "provenance.running_digest_mismatch"
RUNNING_DIGEST_UNKNOWN = "provenance.running_digest_unknown"
ATTESTATION_PATH_INVALID = "provenance.attestation_path_invalid"
PROVENANCE_MISSING = "provenance.provenance_missing"
DATASET_MISMATCH = "provenance.dataset_mismatch"
LAYOUT_FAILED = "provenance.layout_failed"
LAYOUT_PRODUCT_MISMATCH = "provenance.layout_product_mismatch"
COMMIT_UNSIGNED = "provenance.commit_unsigned"
COMMIT_SIGNATURE_INVALID = "provenance.commit_signature_invalid"
# Reasons the policy input gives for a resource nothing was verified for; never findings.
NOT_CONFIGURED = "provenance.not_configured"
INCOMPLETE = "provenance.incomplete"

POLICY_ERROR = "policy.error"

# An attestation (SLSA provenance) that does not verify leaves the model's training unproven:
# high, where the same failure on the model's own signature is critical.
ATTESTATION_SEVERITY: Severity = "high"

CHECKS: Mapping[str, Check] = {
    **_table(
        "drift",
        [
            (DRIFT_CHANGED, "medium", "Live field differs from Git",
             "A field Git sets has another value in the cluster. Severity follows the drift "
             "class (model, runtime, traffic, scale, config); changed_by names who wrote it."),
            (DRIFT_MISSING, "high", "Declared in Git, absent from the cluster",
             "Git declares the object at the audited commit and the cluster does not have it."),
            (DRIFT_UNMANAGED, "high", "In the cluster, not in Git",
             "An object in scope that Git does not declare and no other object owns: a manual "
             "deployment."),
            (DRIFT_REMOVED, "medium", "Removed from Git, still live",
             "Git stopped setting a field that the GitOps field manager still owns in "
             "managedFields (or the last-applied annotation still holds): it stays live."),
            (DRIFT_ADDED, "medium", "Added live by hand, not in Git",
             "A field Git does not set that a manager people drive (kubectl edit, patch, set, "
             "label, annotate; drift.human_managers) owns in managedFields, and no GitOps "
             "manager or controller does: an out-of-band change neither Argo CD nor Flux "
             "reports. Severity follows the drift class; changed_by names who added it."),
        ],
    ),
    **_table(
        "provenance",
        [
            (UNSIGNED, "high", "Model not signed",
             "No model signature (*.sig) is found in the model's attestation directory in Git."),
            (SIGNATURE_INVALID, "critical", "Signature does not verify",
             "A signature does not verify with the trust material: tampered bytes or another "
             "key."),
            (IDENTITY_MISMATCH, "critical", "Signed by an identity the authority does not name",
             "A valid signature by a signer (Sigstore subject or issuer, certificate) that the "
             "trust policy's authority does not name."),
            (DIGEST_MISMATCH, "critical", "Digest binding broken",
             "The digest Git declares, the signed subject digest and the model files do not "
             "agree."),
            (AUTHORITY_NOT_REQUIRED, "high", "Signed by an authority the rule does not require",
             "The signature verifies, but by an authority the matching trust.models rule does "
             "not name."),
            (UNVERIFIED, "high", "Trust requirement not met",
             "The matching trust.models rule is not satisfied by the signatures present "
             "(fail closed)."),
            (NO_RULE, "high", "No trust rule for the model",
             "No trust.models rule matches the model's namespace and name: it is unverified "
             "(fail closed)."),
            (MALFORMED, ATTESTATION_SEVERITY, "Attestation malformed",
             "The attestation is not a well-formed DSSE envelope, Sigstore bundle or in-toto "
             "Statement."),
            (DIGEST_UNDECLARED, "high", "Git pins no model digest",
             "Git names a model without a digest: set auditor.gitops.ml/model-digest or use an "
             "oci://...@sha256: URI."),
            (RUNNING_DIGEST_MISMATCH, "critical", "Pods run another digest",
             "The serving pods run an image digest other than the one Git declares."),
            (RUNNING_DIGEST_UNKNOWN, "medium", "Running digest not checked",
             "No serving pod reports the model image's digest (scaled to zero, pods not read): "
             "worth seeing, not an alarm."),
            (ATTESTATION_PATH_INVALID, "high", "Attestation path refused",
             "The attestation directory named in Git leaves the repository or is not a "
             "directory."),
            (PROVENANCE_MISSING, "high", "No SLSA provenance",
             "Datasets are pinned in Git, and no SLSA provenance binds them to the model."),
            (DATASET_MISMATCH, "high", "Datasets differ from Git",
             "The datasets in the model's provenance are not the ones Git pins (dvc.lock)."),
            (LAYOUT_FAILED, "high", "in-toto layout not satisfied",
             "The in-toto layout, or its links, do not verify against the trust policy."),
            (LAYOUT_PRODUCT_MISMATCH, "high", "in-toto pipeline produced another model",
             "The in-toto layout verifies, but the final products of its last step are not the "
             "served model: none has its digest (an OCI image manifest), and no directory of "
             "them hashes to it as a model-signing manifest."),
            (COMMIT_UNSIGNED, "high", "Audited commit unsigned",
             "The audited Git commit carries no signature, and commit signers are configured."),
            (COMMIT_SIGNATURE_INVALID, "high", "Commit signature not allowed",
             "The audited commit's signature does not verify with an allowed signer."),
            (NOT_CONFIGURED, "high", "Provenance not configured",
             "auditor.yaml has no trust: section; the policy input says nothing was verified."),
            (INCOMPLETE, "high", "Provenance could not be verified",
             "Verification could not finish (Git unreadable, trust material gone mid-run): the "
             "run is incomplete."),
        ],
    ),
    # An evaluation that raised is an error, not a policy verdict: category `error`.
    **_table(
        "error",
        [
            (POLICY_ERROR, "high", "Policy evaluation error",
             "A policy raised while evaluating the resource: an error is not a pass, and the "
             "run is incomplete."),
        ],
    ),
}  # fmt: skip


def check(check_id: str) -> Check:
    """The registered check; KeyError names an id that nobody registered (a bug)."""
    return CHECKS[check_id]


def default_severity(check_id: str) -> Severity:
    return CHECKS[check_id].severity


def finding(
    check_id: str,
    ref: ResourceRef,
    path: str,
    message: str,
    *,
    severity: Severity | None = None,
    expected: Any = None,
    actual: Any = None,
    details: Mapping[str, Any] | None = None,
    controls: tuple[str, ...] = (),
) -> Finding:
    """A finding of a registered check, with its category and default severity."""
    entry = CHECKS[check_id]
    return Finding(
        category=entry.category,
        check=check_id,
        severity=severity or entry.severity,
        ref=ref,
        path=path,
        message=message,
        expected=expected,
        actual=actual,
        details=dict(details or {}),
        controls=controls,
    )


def apply_overrides(
    findings: Iterable[Finding], overrides: Mapping[str, Severity]
) -> tuple[Finding, ...]:
    """`severity.checks` from config, applied to every category: drift, provenance, policy
    ids (a policy's id is its check id) and errors alike."""
    if not overrides:
        return tuple(findings)
    return tuple(
        dataclasses.replace(f, severity=overrides[f.check]) if f.check in overrides else f
        for f in findings
    )


__all__ = [
    "CHECKS",
    "Check",
    "apply_overrides",
    "check",
    "default_severity",
    "finding",
]
