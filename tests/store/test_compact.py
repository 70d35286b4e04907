"""The compact forms of the store give back exactly what was recorded, and anything they
cannot give back is stored as it is: policy findings made by the policy stage's own
`message_finding`, evaluations with one, two or no messages their findings repeat."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from auditor.model import Evaluation, Finding, PolicyInfo, PolicyMessage, ResourceRef
from auditor.policy.engine import Policy
from auditor.policy.evaluate import message_finding, messages_of
from auditor.store import Store
from tests.store.factories import make_run

POLICY = Policy(
    id="auditor.model.digest_pinned",
    kind="rego",
    package="auditor.model.digest_pinned",
    rules=("deny", "warn"),
    source="/opt/policies/model/digest_pinned.rego",
    title="Model storage is digest-pinned",
    severity="high",
    controls=("SLSA-Provenance", "NIST-800-53-CM-2"),
)
INFO = PolicyInfo(
    POLICY.id, POLICY.title, "", POLICY.severity, "low", POLICY.controls, POLICY.source
)
SCORER = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "scorer")
NODE = ResourceRef("prod", "v1", "Node", "", "gpu-1")  # cluster-scoped: `Node gpu-1: ...`


def evaluated(ref: ResourceRef, rule: str, value: Any) -> tuple[Evaluation, list[Finding]]:
    messages = messages_of(rule, value)  # type: ignore[arg-type]
    result = "fail" if rule == "deny" else "warn"
    evaluation = Evaluation(POLICY.id, ref, result, tuple(messages), 2.5)  # type: ignore[arg-type]
    return evaluation, [message_finding(POLICY, ref, m) for m in messages]


CASES: dict[str, Any] = {
    "object with msg": (SCORER, "deny", {"msg": "model gs://m/v1 is not pinned", "path": "/spec"}),
    "msg naming the object itself": (
        SCORER,
        "deny",
        {"msg": "InferenceService ml/scorer: not pinned", "uri": "gs://m/v1"},
    ),
    "cluster-scoped object": (NODE, "warn", {"msg": "no GPU label", "path": "/metadata"}),
    "plain string": (SCORER, "deny", "model is not pinned"),
    "object without msg": (SCORER, "deny", {"reason": "unpinned", "n": 3}),
    "msg that is not text": (SCORER, "deny", {"msg": {"code": 7}}),
    "two messages": (
        NODE,
        "deny",
        [{"msg": "first", "path": "/a"}, {"msg": 'second ü "quoted"', "path": "/b"}],
    ),
}


def record(store: Store, evaluations: list[Evaluation], findings: list[Finding]) -> None:
    store.record_run(
        make_run("r1"),
        findings=findings,
        evaluations=evaluations,
        policies=[INFO],
        exit_code=1,
    )


def read_back(store: Store) -> tuple[list[Evaluation], list[Finding]]:
    report = store.report("r1")
    assert report is not None
    return list(report.evaluations), [r.finding for r in report.findings]


def same_finding(stored: Finding, recorded: Finding) -> bool:
    return stored.to_json() == recorded.to_json() and stored.details == recorded.details


@pytest.mark.parametrize("case", CASES)
def test_every_message_shape_reads_back_as_recorded(store: Store, case: str) -> None:
    evaluation, findings = evaluated(*CASES[case])
    passing = Evaluation(POLICY.id, SCORER, "pass", (), 1.0)
    record(store, [evaluation, passing], findings)
    evaluations, stored = read_back(store)
    assert evaluations == [evaluation, passing]
    assert len(stored) == len(findings)
    assert all(same_finding(s, f) for s, f in zip(stored, findings, strict=True))


def forms(store: Store) -> dict[str, int]:
    def count(sql: str) -> int:
        return int(store.db.execute(sql).fetchone()[0])

    return {
        "policy details": count("SELECT COUNT(*) FROM finding_contents WHERE policy IS NOT NULL"),
        "policy controls": count("SELECT COUNT(*) FROM finding_contents WHERE controls IS NULL"),
        "path from details": count("SELECT COUNT(*) FROM finding_contents WHERE path IS NULL"),
        "message from details": count(
            "SELECT COUNT(*) FROM finding_contents WHERE message_form IS NOT NULL"
        ),
        "one message from a finding": count(
            "SELECT COUNT(*) FROM run_evaluations WHERE messages < 0"
        ),
        "messages from findings": count(
            "SELECT COUNT(*) FROM evaluation_messages WHERE contents IS NOT NULL"
        ),
        "messages as recorded": count(
            "SELECT COUNT(*) FROM evaluation_messages WHERE messages IS NOT NULL"
        ),
    }


def test_messages_the_findings_hold_are_stored_once(store: Store) -> None:
    evaluations, findings = [], []
    for case in ("object with msg", "msg naming the object itself", "two messages"):
        evaluation, made = evaluated(*CASES[case])
        evaluations.append(evaluation)
        findings += made
    record(store, evaluations, findings)
    assert forms(store) == {
        "policy details": 4,
        "policy controls": 4,
        "path from details": 3,  # the message naming the object itself has no path
        "message from details": 4,
        "one message from a finding": 2,
        "messages from findings": 1,
        "messages as recorded": 0,
    }
    stored_evaluations, stored = read_back(store)
    assert stored_evaluations == evaluations
    assert all(same_finding(s, f) for s, f in zip(stored, findings, strict=True))


def test_what_the_compact_forms_cannot_give_back_is_stored_as_recorded(store: Store) -> None:
    evaluation, [finding] = evaluated(*CASES["object with msg"])
    retitled = dataclasses.replace(finding, details={**finding.details, "policy_title": "Old"})
    other_controls = dataclasses.replace(finding, controls=("ISO-27001-A.12",))
    reworded = dataclasses.replace(finding, message="scorer: model is not pinned")
    no_finding = Evaluation(
        POLICY.id, NODE, "fail", (PolicyMessage("deny", "nobody reported this", {}),), 1.0
    )
    findings = [retitled, other_controls, reworded]
    # the evaluation's message matches none of them as recorded: its finding was changed
    changed = dataclasses.replace(evaluation, messages=(PolicyMessage("deny", "other", {}),))
    record(store, [changed, no_finding], findings)
    assert forms(store) == {
        "policy details": 2,  # other_controls and reworded: details are the policy's
        "policy controls": 1,  # reworded only
        "path from details": 2,
        "message from details": 2,  # retitled and other_controls
        "one message from a finding": 0,
        "messages from findings": 0,
        "messages as recorded": 2,
    }
    evaluations, stored = read_back(store)
    assert evaluations == [changed, no_finding]
    assert all(same_finding(s, f) for s, f in zip(stored, findings, strict=True))


def test_a_policy_whose_metadata_changed_keeps_each_runs_title_and_controls(
    store: Store,
) -> None:
    evaluation, findings = evaluated(*CASES["object with msg"])
    record(store, [evaluation], findings)
    renamed = dataclasses.replace(POLICY, title="Models are pinned", controls=("CM-2",))
    info = dataclasses.replace(INFO, title=renamed.title, controls=renamed.controls)
    message = evaluation.messages[0]
    later = message_finding(renamed, SCORER, message)
    store.record_run(
        make_run("r2", minutes=60),
        findings=[later],
        evaluations=[evaluation],
        policies=[info],
        exit_code=1,
    )
    first, second = store.report("r1"), store.report("r2")
    assert first is not None and second is not None
    assert first.findings[0].finding.details["policy_title"] == POLICY.title
    assert first.findings[0].finding.controls == POLICY.controls
    assert second.findings[0].finding.details["policy_title"] == "Models are pinned"
    assert second.findings[0].finding.controls == ("CM-2",)
    assert second.evaluations == (evaluation,)


def test_fingerprints_are_stored_as_16_bytes_and_any_other_text_as_it_is(store: Store) -> None:
    _, [made] = evaluated(*CASES["object with msg"])
    # an identity recorded by another tool or an older store: not auditor's 32 hex digits
    odd = dataclasses.replace(made, path="/other", recorded_fingerprint="Legacy:ABC-1")
    record(store, [], [made, odd])
    stored = dict(
        store.db.execute(
            "SELECT typeof(fingerprint), COUNT(*) FROM fingerprints GROUP BY 1"
        ).fetchall()
    )
    assert stored == {"blob": 1, "text": 1}
    for fingerprint in (made.fingerprint, "Legacy:ABC-1"):
        history = store.finding_history(fingerprint)
        assert history is not None and history["fingerprint"] == fingerprint
        sightings = store.sightings(fingerprint)
        assert sightings is not None and sightings[0].finding.fingerprint == fingerprint
    assert {r["fingerprint"] for r in store.findings("r1")} == {made.fingerprint, "Legacy:ABC-1"}
    assert store.finding_history(made.fingerprint.upper()) is None


def test_findings_alike_but_for_the_fingerprint_read_back_in_one_order_by_every_reader(
    store: Store,
) -> None:
    _, [made] = evaluated(*CASES["object with msg"])
    # the same object, path and check: only the fingerprint (bytes or text) tells them apart
    alike = [made] + [
        dataclasses.replace(made, recorded_fingerprint=f) for f in ("Legacy:ABC-1", "0" * 32)
    ]
    record(store, [], alike)
    known = [item.finding.fingerprint for item in store.known_findings()]
    assert set(known) == {made.fingerprint, "Legacy:ABC-1", "0" * 32}
    assert [line.fingerprint for line in store.known_finding_lines()] == known
    assert [json.loads(t)["fingerprint"] for t in store.known_findings_json()] == known
    # stored bytes order as their hex does; text is kept apart from them, first
    assert known == ["Legacy:ABC-1", *sorted([made.fingerprint, "0" * 32])]


DANGLING = {
    "content without its fingerprint": "SELECT COUNT(*) FROM finding_contents"
    " WHERE finding NOT IN (SELECT id FROM fingerprints)",
    "content without its policy": "SELECT COUNT(*) FROM finding_contents"
    " WHERE policy IS NOT NULL AND policy NOT IN (SELECT id FROM policies)",
    "history without its content": "SELECT COUNT(*) FROM finding_states"
    " WHERE last_content NOT IN (SELECT id FROM finding_contents)",
    "evaluation without its message's finding": "SELECT COUNT(*) FROM run_evaluations"
    " WHERE messages < 0 AND -messages NOT IN (SELECT id FROM finding_contents)",
    "message list without its findings": "SELECT COUNT(*) FROM evaluation_messages m,"
    " json_each(m.contents) part WHERE part.value NOT IN (SELECT id FROM finding_contents)",
    "resource without its origin": "SELECT COUNT(*) FROM run_resources"
    " WHERE origin_path NOT IN (SELECT id FROM origin_parts)"
    " OR origin_commit NOT IN (SELECT id FROM origin_parts)",
}


def prod_run(run_id: str, day: int) -> Any:
    from auditor.model import ClusterInfo

    return dataclasses.replace(
        make_run(run_id, minutes=60 * 24 * day), clusters=(ClusterInfo("prod"),)
    )


def test_prune_keeps_what_the_runs_left_name_and_removes_the_rest(store: Store) -> None:
    from tests.store.factories import make_record

    first, first_findings = evaluated(*CASES["two messages"])  # on NODE
    second, second_findings = evaluated(*CASES["object with msg"])  # on SCORER
    for run_id, day, evaluation, findings, resource in (
        ("r1", 0, first, first_findings, "old-model"),
        ("r2", 2, second, second_findings, "scorer"),  # NODE's findings resolved here
        ("r3", 4, second, second_findings, "scorer"),
    ):
        store.record_run(
            prod_run(run_id, day),
            resources=[make_record(resource)],
            findings=findings,
            evaluations=[evaluation],
            policies=[INFO],
            exit_code=1,
        )
    before = store.report("r3")
    result = store.prune(1, now=prod_run("r3", 4).started)  # cutoff between r2 and r3
    assert result.runs == 2
    # resolved before the cutoff: forgotten with their contents, fingerprints, message list
    # and objects (NODE; old-model, the resource only r1 saw)
    assert result.forgotten == 2
    assert result.removed == {
        "evaluation_messages": 1,
        "finding_contents": 2,
        "fingerprints": 2,
        "policies": 0,
        "objects": 2,
        "origin_parts": 0,  # every run's resources were at the same path@commit
    }
    after = store.report("r3")
    assert before is not None and after is not None
    # the same findings, history and evaluations (the previous run is gone with r2)
    assert [(f.finding.to_json(), f.history) for f in after.findings] == [
        (f.finding.to_json(), f.history) for f in before.findings
    ]
    assert after.evaluations == before.evaluations
    for problem, sql in DANGLING.items():
        assert store.db.execute(sql).fetchone()[0] == 0, problem
