"""A store with three runs whose findings change between them, for the report and history
tests: each value a hostile Git repository or cluster could plant is in it somewhere.

    r1 (complete)   MODEL, REPLICAS
    r2 (complete)   MODEL, REPLICAS, HOSTILE            MODEL still open, HOSTILE new
    r3 (incomplete) MODEL, HOSTILE, UNSIGNED            REPLICAS not seen (run incomplete),
                                                        UNSIGNED new
    r4 (complete)   HOSTILE, UNSIGNED, POLICY           MODEL and REPLICAS resolved, POLICY new
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from auditor.model import (
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    PolicyMessage,
    ResourceRecord,
    ResourceRef,
    StageError,
)
from auditor.store import Store
from tests.store.factories import make_finding, make_run, ref

COMMIT = "9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6"
HOSTILE_TEXT = (
    '<script>alert("x")</script> | **bold** [click](javascript:alert(1)) `code` \x1b[31m\x00 &amp;'
)
HOSTILE_NAME = "evil<img src=x onerror=alert(1)>"

MODEL = make_finding("fraud-scorer")  # opened in r1, still open in r2 and r3, resolved in r4
REPLICAS = make_finding("ranker", path="/spec/replicas", severity="low", expected=2, actual=5)
HOSTILE = Finding(
    category="drift",
    check="drift.changed",
    severity="high",
    ref=ResourceRef("prod-eu", "v1", "ConfigMap", "ml", HOSTILE_NAME),
    path="/data/<b>key</b>",
    message=f"ConfigMap ml/{HOSTILE_NAME}: {HOSTILE_TEXT}",
    expected="</td></tr><tr><td>injected",
    actual=HOSTILE_TEXT,
    drift_class="config",
)
UNSIGNED = Finding(
    category="provenance",
    check="provenance.unsigned",
    severity="high",
    ref=ref("recommender"),
    path="/provenance/signature",
    message="InferenceService ml/recommender: no model signature in attestations/ml/recommender",
)
POLICY_INFO = PolicyInfo(
    id="auditor.serving.service_account",
    title="Serving pods do not run as the default service account",
    description="A model server gets its own service account.",
    severity="medium",
    controls=("CIS-K8s-5.1.5",),
    source="policies/serving/service_account.rego",
    digest="sha256:" + "aa" * 32,
)
POLICY = Finding(
    category="policy",
    check=POLICY_INFO.id,
    severity="medium",
    ref=ref("fraud-scorer"),
    path="/spec/predictor/serviceAccountName",
    message="InferenceService ml/fraud-scorer: runs as the default service account",
    details={"rule": "deny", "message": "runs as the default service account"},
    controls=POLICY_INFO.controls,
)


def _resources() -> list[ResourceRecord]:
    records = [
        ResourceRecord(ref(name), "drifted", f"apps/{name}.yaml@{COMMIT}", line=3)
        for name in ("fraud-scorer", "ranker", "recommender")
    ]
    records.append(ResourceRecord(HOSTILE.ref, "drifted", f"apps/evil.yaml@{COMMIT}", line=12))
    return records


def _evaluations(failing: bool) -> list[Evaluation]:
    out = []
    for name in ("fraud-scorer", "ranker", "recommender"):
        fails = failing and name == "fraud-scorer"
        out.append(
            Evaluation(
                POLICY_INFO.id,
                ref(name),
                "fail" if fails else "pass",
                messages=(PolicyMessage("deny", "runs as the default service account"),)
                if fails
                else (),
                duration_ms=0.25,
            )
        )
    return out


@dataclass(frozen=True)
class ThreeRuns:
    path: Path
    ids: tuple[str, ...]


def record_runs(path: Path) -> ThreeRuns:
    attestation = Attestation(
        ref=ref("fraud-scorer"),
        attestation="model-signature",
        verified=True,
        source=f"attestations/ml/fraud-scorer/model.sig@{COMMIT[:12]}",
        subject_digest="sha256:" + "cd" * 32,
        authority="release-key",
        identity="sha256:" + "ef" * 32,
    )
    plan = [
        ("r1", "complete", [MODEL, REPLICAS], [], False),
        ("r2", "complete", [MODEL, REPLICAS, HOSTILE], [], False),
        ("r3", "incomplete", [MODEL, HOSTILE, UNSIGNED],
         [StageError("live", "forbidden: <b>secrets</b> in ml", target="Secret in ml", cluster="prod-eu")], False),
        ("r4", "complete", [HOSTILE, UNSIGNED, POLICY], [], True),
    ]  # fmt: skip
    with Store.open(path) as store:
        for index, (run_id, status, findings, errors, failing) in enumerate(plan):
            counts = {
                "findings": len(findings),
                "high": sum(f.severity == "high" for f in findings),
            }
            run = make_run(run_id, minutes=60 * index, status=status, counts=counts)  # type: ignore[arg-type]
            store.record_run(
                run,
                resources=_resources(),
                findings=findings,
                errors=errors,
                exit_code=3 if errors else 1,
                evaluations=_evaluations(failing),
                attestations=[attestation],
                policies=[POLICY_INFO],
            )
    return ThreeRuns(path, tuple(run_id for run_id, *_ in plan))


def started(minutes: int) -> str:
    from tests.store.factories import T0

    return (T0 + timedelta(minutes=minutes)).isoformat()
