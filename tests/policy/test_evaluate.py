"""Evaluating policies over inputs: the conftest/Gatekeeper conventions, findings, errors."""

from __future__ import annotations

import copy
import gc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from auditor.model import ResourceRef
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import Policy, PolicyEvalError, RegoModule
from auditor.policy.evaluate import (
    PolicyOutcome,
    evaluate_policies,
    load_engine,
    messages_of,
    outcome_document,
)
from auditor.policy.loader import (
    DiscoveredPolicies,
    PolicyKindHooks,
    PolicySet,
    load_policy_files,
)
from tests.policy.rego import ISVC, inputs, write

CONVENTIONS = {
    "strings.rego": """
        # METADATA
        # custom:
        #   severity: critical
        #   controls: [SLSA-L3]
        package conv.strings
        import rego.v1
        deny contains sprintf("model %s is not pinned", [input.model.uri]) if input.model.digest == null
    """,
    "objects.rego": """
        package conv.objects
        import rego.v1
        deny contains {"msg": "no team label", "path": "/metadata/labels", "expected": "a team"} if {
            not input.resource.metadata.labels.team
        }
    """,
    "warn_only.rego": """
        # METADATA
        # custom:
        #   severity: medium
        package conv.warnonly
        import rego.v1
        warn contains "canary set" if input.resource.spec.predictor.canaryTrafficPercent
    """,
    "violation.rego": """
        package conv.violation
        violation[{"msg": msg, "details": {"uri": input.model.uri}}] {
            startswith(input.model.uri, "gs://")
            msg := "gs:// is not an allowed model source"
        }
    """,
    "array.rego": """
        package conv.array
        import rego.v1
        deny := [m | some m in ["first", "second"]; input.resource.metadata.name == "fraud-scorer"]
    """,
}


def _load(tmp_path: Path, files: Mapping[str, str]) -> tuple[PolicySet, EmbeddedEngine]:
    for name, text in files.items():
        write(tmp_path, name, text)
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    engine = load_engine(policy_set)
    assert isinstance(engine, EmbeddedEngine)
    return policy_set, engine


def _by_policy(outcome: PolicyOutcome) -> dict[str, Any]:
    return {e.policy: e for e in outcome.evaluations}


@pytest.fixture
def conventions(tmp_path: Path) -> tuple[PolicySet, EmbeddedEngine]:
    return _load(tmp_path, CONVENTIONS)


def test_results_follow_deny_warn_violation_conventions(
    conventions: tuple[PolicySet, EmbeddedEngine],
) -> None:
    policy_set, engine = conventions
    unlabelled = copy.deepcopy(ISVC)
    del unlabelled["metadata"]["labels"]
    unlabelled["spec"]["predictor"]["canaryTrafficPercent"] = 10
    outcome = evaluate_policies(policy_set, inputs(unlabelled), engine=engine)
    results = {p: e.result for p, e in _by_policy(outcome).items()}
    assert results == {
        "conv.strings": "fail",
        "conv.objects": "fail",
        "conv.warnonly": "warn",
        "conv.violation": "fail",
        "conv.array": "fail",
    }
    assert len(outcome.evaluations) == 5
    assert outcome.exit_code() == 1


def test_a_resource_that_breaks_nothing_passes_every_policy(
    conventions: tuple[PolicySet, EmbeddedEngine],
) -> None:
    policy_set, engine = conventions
    good = copy.deepcopy(ISVC)
    good["metadata"]["name"] = "other"
    good["spec"]["predictor"]["model"]["storageUri"] = "oci://r.example.com/m@sha256:" + "a" * 64
    outcome = evaluate_policies(policy_set, inputs(good), engine=engine)
    assert {e.result for e in outcome.evaluations} == {"pass"}
    assert outcome.findings == ()
    assert outcome.exit_code() == 0


@pytest.mark.parametrize(
    ("value", "result"),
    [("0", "fail"), ('""', "fail"), ("{}", "pass"), ("false", "pass"), ("true", "fail")],
)
def test_falsy_values_beside_empty_ones_are_judged_as_they_are_alone(
    tmp_path: Path, value: str, result: str
) -> None:
    # Most inputs pass every policy, and a batch whose values are all undefined or empty sets
    # is recorded as passing at once: a 0 or "" among them is still a message.
    policy_set, engine = _load(
        tmp_path,
        {
            "empty.rego": "package t.empty\nimport rego.v1\ndeny contains 1 if false\n",
            "other.rego": f"package t.other\nimport rego.v1\ndeny := {value}\n",
        },
    )
    outcome = evaluate_policies(policy_set, inputs(ISVC), engine=engine)
    assert {e.policy: e.result for e in outcome.evaluations} == {
        "t.empty": "pass",
        "t.other": result,
    }


def test_one_finding_per_message_with_severity_controls_and_details(
    conventions: tuple[PolicySet, EmbeddedEngine],
) -> None:
    policy_set, engine = conventions
    outcome = evaluate_policies(policy_set, inputs(ISVC), engine=engine)
    findings = {(f.check, f.message): f for f in outcome.findings}
    pinned = findings[
        (
            "conv.strings",
            "InferenceService ml/fraud-scorer: model gs://models/fraud/v3 is not pinned",
        )
    ]
    assert (pinned.category, pinned.severity, pinned.controls) == (
        "policy",
        "critical",
        ("SLSA-L3",),
    )
    assert pinned.details["rule"] == "deny"
    assert pinned.ref == ResourceRef(
        "", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud-scorer"
    )
    array = [f for f in outcome.findings if f.check == "conv.array"]
    assert [f.message.split(": ", 1)[1] for f in array] == ["first", "second"]
    violation = next(f for f in outcome.findings if f.check == "conv.violation")
    assert violation.details["message"] == {
        "msg": "gs:// is not an allowed model source",
        "details": {"uri": "gs://models/fraud/v3"},
    }


def test_message_objects_may_carry_path_and_expected(tmp_path: Path) -> None:
    policy_set, engine = _load(tmp_path, {"objects.rego": CONVENTIONS["objects.rego"]})
    body = copy.deepcopy(ISVC)
    del body["metadata"]["labels"]
    (finding,) = evaluate_policies(policy_set, inputs(body), engine=engine).findings
    assert (finding.path, finding.expected) == ("/metadata/labels", "a team")
    assert finding.message == "InferenceService ml/fraud-scorer: no team label"


def test_warn_findings_take_the_warn_severity(tmp_path: Path) -> None:
    policy_set, engine = _load(tmp_path, {"w.rego": CONVENTIONS["warn_only.rego"]})
    body = copy.deepcopy(ISVC)
    body["spec"]["predictor"]["canaryTrafficPercent"] = 10
    (finding,) = evaluate_policies(policy_set, inputs(body), engine=engine).findings
    # METADATA's package severity is for denials; warn stays low unless a warn rule says so
    assert (finding.severity, finding.details["rule"]) == ("low", "warn")


def test_each_message_of_a_policy_is_its_own_finding_across_runs(tmp_path: Path) -> None:
    policy_set, engine = _load(
        tmp_path,
        {
            "both.rego": """
                package conv.both
                import rego.v1
                deny contains "no team label"
                deny contains "no owner label"
                warn contains "no team label"
                deny contains {"msg": "replicas 1 < 2", "path": "/spec/replicas"}
                warn contains {"msg": "replicas 1 < 3", "path": "/spec/replicas"}
            """
        },
    )
    findings = evaluate_policies(policy_set, inputs(ISVC), engine=engine).findings
    assert len(findings) == 5
    # deny and warn with one text, two texts of one rule, deny and warn at one path: all apart
    assert len({f.fingerprint for f in findings}) == 5
    again = evaluate_policies(policy_set, inputs(ISVC), engine=engine).findings
    assert {f.fingerprint for f in again} == {f.fingerprint for f in findings}


def test_v0_and_v1_versions_of_a_policy_give_the_same_results(tmp_path: Path) -> None:
    v1 = """
        package same.v1
        import rego.v1
        deny contains msg if {
            some c in input.resource.spec.containers
            endswith(c.image, ":latest")
            msg := sprintf("%s uses :latest", [c.name])
        }
        warn contains "no team" if not input.resource.metadata.labels.team
    """
    v0 = """
        package same.v0
        deny[msg] {
            c := input.resource.spec.containers[_]
            endswith(c.image, ":latest")
            msg := sprintf("%s uses :latest", [c.name])
        }
        warn["no team"] { not input.resource.metadata.labels.team }
    """
    policy_set, engine = _load(tmp_path, {"v1.rego": v1, "v0.rego": v0})
    pods = []
    for i, image in enumerate(["a:latest", "b:1.0", "c:latest"]):
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"p{i}",
                    "namespace": "ml",
                    "labels": {"team": "x"} if i else {},
                },
                "spec": {
                    "containers": [
                        {"name": "srv", "image": image},
                        {"name": "side", "image": "s:latest"},
                    ]
                },
            }
        )
    outcome = evaluate_policies(policy_set, inputs(*pods), engine=engine)
    by_pod: dict[str, dict[str, Any]] = {}
    for e in outcome.evaluations:
        assert e.ref is not None
        by_pod.setdefault(e.ref.name, {})[e.policy] = (
            e.result,
            [(m.rule, m.msg) for m in e.messages],
        )
    for results in by_pod.values():
        assert results["same.v0"] == results["same.v1"]
    assert by_pod["p0"]["same.v1"][0] == "fail"
    assert by_pod["p1"]["same.v1"] == ("fail", [("deny", "side uses :latest")])


def test_a_runtime_error_in_one_policy_is_an_error_finding_and_the_others_run(
    tmp_path: Path,
) -> None:
    policy_set, engine = _load(
        tmp_path,
        {
            "good.rego": 'package good\nimport rego.v1\ndeny contains "bad" if input.resource.kind\n',
            "conflict.rego": """
                package broken.conflict
                import rego.v1
                level := "a" if input.resource
                level := "b" if input.resource
                deny contains level if level
            """,
            "types.rego": """
                package broken.types
                import rego.v1
                deny contains m if m := input.resource.metadata.name + 1
            """,
        },
    )
    outcome = evaluate_policies(policy_set, inputs(ISVC, ISVC), engine=engine)
    results = [(e.policy, e.result) for e in outcome.evaluations]
    assert results.count(("good", "fail")) == 2
    assert results.count(("broken.conflict", "error")) == 2
    assert results.count(("broken.types", "error")) == 2
    errors = [f for f in outcome.findings if f.category == "error"]
    assert len(errors) == 4
    conflict = next(f for f in errors if f.details["policy"] == "broken.conflict")
    assert conflict.check == "policy.error"
    assert "policy broken.conflict" in conflict.message
    assert str(tmp_path / "conflict.rego") in conflict.message
    # one stage error per failing policy, not per resource
    assert sorted(e.target for e in outcome.errors) == ["broken.conflict", "broken.types"]
    assert "(and on 1 more resources)" in outcome.errors[0].message
    assert outcome.exit_code() == 3


def test_an_evaluation_error_leaves_nothing_for_the_garbage_collector(tmp_path: Path) -> None:
    # A kept error with its traceback holds the frames that hold it: a cycle that keeps the
    # engine alive until the collector frees it from whichever thread it runs in, and a
    # regorus engine may only be dropped by the thread that made it.
    policy_set, engine = _load(
        tmp_path,
        {
            "types.rego": """
                package broken.types
                import rego.v1
                deny contains m if m := input.resource.metadata.name + 1
            """,
        },
    )
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        outcome = evaluate_policies(policy_set, inputs(ISVC, ISVC), engine=engine)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, BaseException)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert [e.result for e in outcome.evaluations] == ["error", "error"]
    assert left == []


def test_data_is_visible_to_policies(tmp_path: Path) -> None:
    write(
        tmp_path,
        "p/allowed.rego",
        """
        package allowed
        import rego.v1
        deny contains msg if {
            not startswith(input.model.uri, data.allowed_prefix)
            msg := sprintf("%s is not under %s", [input.model.uri, data.allowed_prefix])
        }
        """,
    )
    data = write(tmp_path, "data.yaml", "allowed_prefix: oci://registry.example.com/\n")
    policy_set = load_policy_files([str(tmp_path / "p")], data_files=[str(data)], hooks=())
    outcome = evaluate_policies(policy_set, inputs(ISVC), engine=load_engine(policy_set))
    (finding,) = outcome.findings
    assert finding.message.endswith("gs://models/fraud/v3 is not under oci://registry.example.com/")


def test_duration_is_recorded_for_every_evaluation(
    conventions: tuple[PolicySet, EmbeddedEngine],
) -> None:
    policy_set, engine = conventions
    outcome = evaluate_policies(policy_set, inputs(ISVC, ISVC), engine=engine)
    assert all(e.duration_ms > 0 for e in outcome.evaluations)


def test_outcome_document_is_the_design_json(conventions: tuple[PolicySet, EmbeddedEngine]) -> None:
    policy_set, engine = conventions
    document = outcome_document(evaluate_policies(policy_set, inputs(ISVC), engine=engine))
    assert set(document) == {"evaluations", "findings"}
    evaluation = next(e for e in document["evaluations"] if e["policy"] == "conv.strings")
    assert evaluation == {
        "policy": "conv.strings",
        "resource": {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "namespace": "ml",
            "name": "fraud-scorer",
        },
        "result": "fail",
        "messages": ["model gs://models/fraud/v3 is not pinned"],
    }
    finding = next(f for f in document["findings"] if f["check"] == "conv.strings")
    assert finding["category"] == "policy"
    assert finding["message"].startswith("InferenceService ml/fraud-scorer: ")
    assert finding["controls"] == ["SLSA-L3"]


@pytest.mark.parametrize(
    ("value", "messages"),
    [
        (None, []),
        (False, []),
        ([], []),
        (["a", "b"], ["a", "b"]),
        ([{"msg": "a", "x": 1}], ["a"]),
        ({"msg": "single"}, ["single"]),
        ({"k1": "a", "k2": "b"}, ["a", "b"]),
        ("just one", ["just one"]),
        (True, ["deny is true"]),
        ([{"no_msg": 1}], ['{"no_msg": 1}']),
    ],
)
def test_rule_values_become_messages(value: Any, messages: list[str]) -> None:
    assert [m.msg for m in messages_of("deny", value)] == messages


# -- another kind of policy through its hooks (how Gatekeeper plugs in) ---------------------

KIND_MODULE = RegoModule(
    source="templates/required-team.yaml",
    package="plugin.requiredteam",
    v0=True,
    line_offset=10,
    text="""package plugin.requiredteam

violation[{"msg": msg}] {
    not input.object.metadata.labels[input.params.label]
    msg := sprintf("missing label %v", [input.params.label])
}
""",
)


def _plugin_policy(name: str, label: str) -> Policy:
    return Policy(
        id=f"RequiredTeam/{name}",
        kind="gatekeeper",
        package="plugin.requiredteam",
        rules=("violation",),
        source="templates/required-team.yaml",
        severity="medium",
        constraint={"parameters": {"label": label}, "namespaces": ["ml"]},
    )


def _prepare(
    policy: Policy, input_doc: Mapping[str, Any], data: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    resource = input_doc["resource"]
    if resource["metadata"].get("namespace") not in policy.constraint["namespaces"]:
        return None
    if policy.constraint["parameters"]["label"] == "boom":
        raise PolicyEvalError("external data is not supported")
    return {"object": resource, "params": policy.constraint["parameters"]}


def _hooks(discovered: Sequence[Policy]) -> PolicyKindHooks:
    return PolicyKindHooks(
        kind="gatekeeper",
        discover=lambda files: DiscoveredPolicies(
            modules=(KIND_MODULE,), policies=tuple(discovered)
        ),
        prepare_input=_prepare,
        violation_result=lambda policy: "warn" if policy.id.endswith("dryrun") else "fail",
    )


def test_plugin_policies_get_their_own_input_and_may_not_apply(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", "package p\nimport rego.v1\ndeny contains 1 if false\n")
    policies = [
        _plugin_policy("owner", "owner"),
        _plugin_policy("team", "team"),
        _plugin_policy("owner-dryrun", "owner"),
        _plugin_policy("broken", "boom"),
    ]
    policy_set = load_policy_files([str(tmp_path)], hooks=[_hooks(policies)])
    other_ns = copy.deepcopy(ISVC)
    other_ns["metadata"]["namespace"] = "default"
    outcome = evaluate_policies(policy_set, inputs(ISVC, other_ns), engine=load_engine(policy_set))
    results = {(e.policy, e.ref.namespace if e.ref else ""): e.result for e in outcome.evaluations}
    assert results == {
        ("p", "ml"): "pass",
        ("p", "default"): "pass",
        ("RequiredTeam/owner", "ml"): "fail",
        ("RequiredTeam/team", "ml"): "pass",
        ("RequiredTeam/owner-dryrun", "ml"): "warn",
        ("RequiredTeam/broken", "ml"): "error",
    }
    owner = next(f for f in outcome.findings if f.check == "RequiredTeam/owner")
    assert (owner.severity, owner.message) == (
        "medium",
        "InferenceService ml/fraud-scorer: missing label owner",
    )
    broken = next(f for f in outcome.findings if f.category == "error")
    assert "external data is not supported" in broken.message


def test_a_policy_kind_without_hooks_is_an_error_not_a_pass(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", "package p\nimport rego.v1\ndeny contains 1 if false\n")
    base = load_policy_files([str(tmp_path)], hooks=[_hooks([_plugin_policy("owner", "owner")])])
    orphan = PolicySet(modules=base.modules, policies=base.policies, data={}, hooks=())
    outcome = evaluate_policies(orphan, inputs(ISVC), engine=load_engine(orphan))
    assert _by_policy(outcome)["RequiredTeam/owner"].result == "error"


def test_evaluate_files_names_a_missing_resource_file(tmp_path: Path) -> None:
    from auditor.errors import InputError
    from auditor.policy.evaluate import evaluate_files

    write(tmp_path, "p/p.rego", "package p\nimport rego.v1\ndeny contains 1 if false\n")
    with pytest.raises(InputError) as err:
        evaluate_files([str(tmp_path / "p")], [str(tmp_path / "nope.yaml")])
    assert err.value.file == str(tmp_path / "nope.yaml")


def test_parallel_workers_give_the_serial_outcome_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.policy.evaluate as evaluate

    files = dict(CONVENTIONS)
    files["broken.rego"] = (
        "package broken\nimport rego.v1\ndeny contains m if m := input.resource.metadata.name + 1\n"
    )
    policy_set, engine = _load(tmp_path, files)
    bodies = []
    for i in range(7):
        body = copy.deepcopy(ISVC)
        body["metadata"]["name"] = f"m{i}"
        bodies.append(body)
    serial = evaluate_policies(policy_set, inputs(*bodies), engine=engine)
    monkeypatch.setattr(evaluate, "PARALLEL_MIN_EVALUATIONS", 0)
    parallel = evaluate_policies(policy_set, inputs(*bodies), engine=engine, workers=3)

    def summary(outcome: PolicyOutcome) -> list[tuple[Any, ...]]:
        return [(e.policy, e.ref, e.result, e.messages, e.error) for e in outcome.evaluations]

    assert summary(parallel) == summary(serial)
    assert parallel.findings == serial.findings
    assert parallel.errors == serial.errors
    assert "(and on 6 more resources)" in parallel.errors[0].message


def test_a_policy_that_names_the_object_itself_is_not_prefixed_twice(tmp_path: Path) -> None:
    policy_set, engine = _load(
        tmp_path,
        {
            "named.rego": """
                package named
                import rego.v1
                deny contains "InferenceService ml/fraud-scorer: already named" if true
            """
        },
    )
    (finding,) = evaluate_policies(policy_set, inputs(ISVC), engine=engine).findings
    assert finding.message == "InferenceService ml/fraud-scorer: already named"
