"""The projection of one resource's check results: which findings, which records, and what
the policy input says, from plain values (no Git, no keys)."""

from __future__ import annotations

from typing import Any

from auditor import checks
from auditor.model import Attestation, Finding, GitFile, ModelRef, ResourceRef
from auditor.provenance import signing as ms
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.provenance.checks.layout import LayoutCheck
from auditor.provenance.checks.running import RunningCheck
from auditor.provenance.checks.signature import SignatureCheck
from auditor.provenance.checks.slsa import SlsaCheck
from auditor.provenance.gitfiles import AttestationFiles
from auditor.provenance.project import ResourceChecks, Undeclared, project

REF = ResourceRef(
    "prod", "serving.kserve.io/v1beta1", "InferenceService", "ml-prod", "fraud-scorer"
)
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
DECLARED = ModelRef(uri=f"oci://registry.acme.io/models/recs@{DIGEST}", digest=DIGEST)
COMMIT = "c" * 40
BUNDLE = GitFile("attestations/ml-prod/fraud-scorer/model.sig", COMMIT, 3, b"sig")
DIRECTORY = AttestationDirectory(
    AttestationFiles("attestations/ml-prod/fraud-scorer", True, signatures=(BUNDLE,)), COMMIT
)


def finding(check: str, path: str = "") -> Finding:
    return checks.finding(check, REF, path, f"{REF.display()}: {check} says why")


def signature(
    *, verified: bool = True, digest: str | None = DIGEST, **fields: Any
) -> SignatureCheck:
    verification = ms.ModelVerification(
        verified=verified,
        model_path=DECLARED.uri or "",
        digest=digest,
        signers=(ms.Signer("release-key", "sha256:" + "f" * 64),) if verified else (),
        findings=(),
        ref=REF,
        requirement="trust.models[0]: release-key",
    )
    values: dict[str, Any] = {
        "mode": "bundle",
        "bundles": (BUNDLE,),
        "undeclared": None,
        "findings": (),
        "mismatch": None,
    }
    values.update(fields)
    return SignatureCheck(verification=verification, **values)


def resource(**fields: Any) -> ResourceChecks:
    values: dict[str, Any] = {
        "ref": REF,
        "declared": DECLARED,
        "live": DECLARED,
        "directory": DIRECTORY,
        "signature": signature(),
        "running": RunningCheck({"checked": True, "images": []}, None),
        "slsa": SlsaCheck(),
        "layout": LayoutCheck(),
    }
    values.update(fields)
    return ResourceChecks(**values)


def model_record(projection: Any) -> Any:
    [record] = [a for a in projection.attestations if a.attestation == "model-signature"]
    return record


def test_signed_declared_and_running_model_is_verified_with_no_finding() -> None:
    projection = project(resource())
    assert projection.findings == ()
    assert projection.result.verified is True and projection.result.reasons == ()
    assert projection.result.attestations == f"attestations/ml-prod/fraud-scorer@{COMMIT[:12]}"
    record = model_record(projection)
    assert record.verified is True and record.reason is None
    assert record.source == BUNDLE.at and record.bundle_digest == BUNDLE.digest


def test_resource_git_names_no_model_for_gets_a_reason_and_nothing_else() -> None:
    projection = project(Undeclared(REF, in_git=True))
    assert projection.findings == () and projection.attestations == ()
    [reason] = projection.result.reasons
    assert reason.check == checks.DIGEST_UNDECLARED
    assert reason.message == (
        "InferenceService ml-prod/fraud-scorer: no provenance: Git names no model for it; "
        "the live object does"
    )
    assert projection.result.checked is False


def test_binding_findings_come_first_in_a_fixed_order_then_slsa_then_layout() -> None:
    projection = project(
        resource(
            directory=AttestationDirectory(
                AttestationFiles("", False), COMMIT, finding(checks.ATTESTATION_PATH_INVALID)
            ),
            signature=signature(
                verified=False,
                undeclared=finding(checks.DIGEST_UNDECLARED),
                findings=(finding(checks.UNSIGNED),),
                mismatch=finding(checks.DIGEST_MISMATCH),
            ),
            running=RunningCheck({}, finding(checks.RUNNING_DIGEST_UNKNOWN)),
            slsa=SlsaCheck(findings=(finding(checks.DATASET_MISMATCH),)),
            layout=LayoutCheck(findings=(finding(checks.LAYOUT_FAILED),)),
        )
    )
    assert [f.check for f in projection.findings] == [
        checks.DIGEST_UNDECLARED,
        checks.ATTESTATION_PATH_INVALID,
        checks.UNSIGNED,
        checks.DIGEST_MISMATCH,
        checks.RUNNING_DIGEST_UNKNOWN,
        checks.DATASET_MISMATCH,
        checks.LAYOUT_FAILED,
    ]
    # the policy input's reasons are the binding's only
    assert [r.check for r in projection.result.reasons] == [
        f.check for f in projection.findings[:5]
    ]


def test_the_model_record_names_the_first_binding_finding_and_every_check() -> None:
    projection = project(
        resource(
            signature=signature(
                mismatch=finding(checks.DIGEST_MISMATCH),
                findings=(finding(checks.AUTHORITY_NOT_REQUIRED),),
            )
        )
    )
    record = model_record(projection)
    assert record.verified is False and record.reason == checks.AUTHORITY_NOT_REQUIRED
    assert record.details["checks"] == [checks.AUTHORITY_NOT_REQUIRED, checks.DIGEST_MISMATCH]


def test_pods_running_another_digest_unbind_a_signed_model() -> None:
    running = RunningCheck({"checked": True}, finding(checks.RUNNING_DIGEST_MISMATCH))
    projection = project(resource(running=running))
    assert projection.result.verified is False
    assert model_record(projection).reason == checks.RUNNING_DIGEST_MISMATCH


def test_an_unknown_running_digest_is_reported_and_keeps_the_binding() -> None:
    running = RunningCheck({"checked": False}, finding(checks.RUNNING_DIGEST_UNKNOWN))
    projection = project(resource(running=running))
    assert projection.result.verified is True
    assert model_record(projection).verified is True
    assert [f.check for f in projection.findings] == [checks.RUNNING_DIGEST_UNKNOWN]
    assert projection.result.running == {"checked": False}


def test_a_live_model_other_than_gits_is_a_reason_and_no_finding() -> None:
    live = ModelRef(uri="oci://registry.acme.io/models/recs@" + OTHER, digest=OTHER)
    projection = project(resource(live=live))
    assert projection.findings == ()
    assert projection.result.verified is False
    [reason] = projection.result.reasons
    assert reason.check == checks.DRIFT_CHANGED
    assert reason.message == (
        f"the cluster serves {live.uri}, not the model Git declares ({DECLARED.uri})"
    )
    record = model_record(projection)
    # no finding to name: drift reports it
    assert record.verified is False and record.reason is None


def test_failed_slsa_and_layout_leave_the_model_signed() -> None:
    projection = project(
        resource(
            slsa=SlsaCheck(findings=(finding(checks.DATASET_MISMATCH),), slsa={"verified": False}),
            layout=LayoutCheck(
                findings=(finding(checks.LAYOUT_FAILED),), layout={"verified": False}
            ),
        )
    )
    assert projection.result.verified is True
    assert projection.result.slsa == {"verified": False}
    assert projection.result.layout == {"verified": False}


def test_reasons_read_without_the_resource_prefix() -> None:
    projection = project(resource(signature=signature(mismatch=finding(checks.DIGEST_MISMATCH))))
    assert projection.result.reasons[0].message == f"{checks.DIGEST_MISMATCH} says why"


def test_the_records_are_the_model_signature_then_slsa_then_layout() -> None:
    projection = project(
        resource(
            slsa=SlsaCheck(attestations=(Attestation(REF, "slsa-provenance", True),)),
            layout=LayoutCheck(attestations=(Attestation(REF, "intoto-layout", True),)),
        )
    )
    assert [a.attestation for a in projection.attestations] == [
        "model-signature",
        "slsa-provenance",
        "intoto-layout",
    ]
