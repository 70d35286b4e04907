"""Schema version 2: policy evaluations (pass included) and attestation results."""

from __future__ import annotations

from datetime import UTC, datetime

from auditor.model import Attestation, Evaluation, PolicyMessage, ResourceRef
from auditor.store import Store, new_run_id
from tests.store.factories import make_run

REF = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud")


def test_evaluations_and_attestations_round_trip_with_a_policy_summary(store: Store) -> None:
    run = make_run(new_run_id(datetime.now(UTC)))
    evaluations = [
        Evaluation(policy="auditor.model.signed", ref=REF, result="pass", duration_ms=0.2),
        Evaluation(
            policy="auditor.model.digest_pinned",
            ref=REF,
            result="fail",
            messages=(PolicyMessage("deny", "not pinned", {"uri": "gs://m/v3"}),),
            duration_ms=0.4,
        ),
        Evaluation(policy="auditor.model.signed", ref=None, result="error", error="conflict"),
    ]
    attestations = [
        Attestation(
            ref=REF,
            attestation="model-signature",
            verified=False,
            source="models/fraud/model.sig@abc",
            subject_digest="sha256:" + "a" * 64,
            authority="release-key",
            reason="provenance.digest_mismatch",
            details={"file": "weights.bin"},
        )
    ]
    store.record_run(run, exit_code=1, evaluations=evaluations, attestations=attestations)
    rows = store.evaluations(run.id)
    assert [(r["policy"], r["result"], r["name"]) for r in rows] == [
        ("auditor.model.digest_pinned", "fail", "fraud"),
        ("auditor.model.signed", "error", None),
        ("auditor.model.signed", "pass", "fraud"),
    ]
    assert rows[0]["messages"] == [
        {"rule": "deny", "msg": "not pinned", "details": {"uri": "gs://m/v3"}}
    ]
    (att,) = store.attestations("latest")
    assert (att["verified"], att["reason"], att["details"]) == (
        0,
        "provenance.digest_mismatch",
        {"file": "weights.bin"},
    )
    summary = {
        row[0]: row[1:]
        for row in store.db.execute(
            "select policy, evaluated, passed, failed, errored from policy_summary where run_id = ?",
            [run.id],
        ).fetchall()
    }
    assert summary == {
        "auditor.model.digest_pinned": (1, 0, 1, 0),
        "auditor.model.signed": (2, 1, 0, 1),
    }
