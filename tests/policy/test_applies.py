"""Policies judge the kinds they apply to: declared in METADATA (`custom.matchers.kinds`) or by
a Gatekeeper constraint's `match.kinds`; a policy whose kinds are not declared judges every
kind. A policy is never skipped on an object it could fire on."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from auditor.policy import gatekeeper
from auditor.policy.applies import ANY_GROUP, applies, kinds_from_entries
from auditor.policy.engine import PolicyLoadError
from auditor.policy.evaluate import evaluate_policies, load_engine
from auditor.policy.loader import load_policy_files
from tests.policy.rego import ISVC, inputs, write

POLICIES = Path(__file__).resolve().parents[2] / "policies"

ALWAYS_DENIES = """
    {metadata}package p.{name}
    import rego.v1
    deny contains "denied" if true
"""
DEPLOYMENTS_ONLY = """# METADATA
    # custom:
    #   matchers:
    #     kinds:
    #       - apiGroups: [apps]
    #         kinds: [Deployment]
    """

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "server", "namespace": "ml"},
    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "s:latest"}]}}},
}
CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "ml"},
    "data": {"threshold": "0.5"},
}
# a kind nobody declares: a CRD of the user's own
WIDGET: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w", "namespace": "ml"},
}


def results(tmp_path: Path, *bodies: dict[str, Any]) -> list[tuple[str, str, str]]:
    policy_set = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    outcome = evaluate_policies(policy_set, inputs(*bodies), engine=load_engine(policy_set))
    return [(e.policy, e.ref.kind if e.ref else "", e.result) for e in outcome.evaluations]


def test_a_policy_restricted_to_deployments_is_not_evaluated_on_other_kinds(
    tmp_path: Path,
) -> None:
    write(tmp_path, "d.rego", ALWAYS_DENIES.format(metadata=DEPLOYMENTS_ONLY, name="d"))
    assert results(tmp_path, CONFIGMAP, DEPLOYMENT, WIDGET) == [("p.d", "Deployment", "fail")]


def test_a_policy_without_declared_kinds_fires_on_every_kind(tmp_path: Path) -> None:
    write(tmp_path, "any.rego", ALWAYS_DENIES.format(metadata="", name="any"))
    assert results(tmp_path, CONFIGMAP, DEPLOYMENT, WIDGET) == [
        ("p.any", "ConfigMap", "fail"),
        ("p.any", "Deployment", "fail"),
        ("p.any", "Widget", "fail"),
    ]


def test_a_policy_that_reads_the_kind_at_run_time_still_runs_everywhere(tmp_path: Path) -> None:
    # nothing declared: whatever the rule reads, it is evaluated on every object
    write(
        tmp_path,
        "dyn.rego",
        """
        package p.dyn
        import rego.v1
        watched := {"ConfigMap", "Widget"}
        deny contains sprintf("%s is watched", [input.resource.kind]) if {
            watched[input.resource.kind]
        }
        """,
    )
    assert results(tmp_path, CONFIGMAP, DEPLOYMENT, WIDGET) == [
        ("p.dyn", "ConfigMap", "fail"),
        ("p.dyn", "Deployment", "pass"),
        ("p.dyn", "Widget", "fail"),
    ]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"apiGroups": ["apps"], "kinds": ["Deployment"]}], {("apps", "Deployment")}),
        ([{"kinds": ["Deployment"]}], {(ANY_GROUP, "Deployment")}),
        ([{"apiGroups": ["*"], "kinds": ["Pod"]}], {(ANY_GROUP, "Pod")}),
        ([{"apiGroups": [""], "kinds": ["Pod", "Service"]}], {("", "Pod"), ("", "Service")}),
        ([{"apiGroups": ["apps"], "kinds": ["*"]}], None),
        ([{"apiGroups": ["apps"]}], None),  # no kinds named: every kind, as Gatekeeper reads it
        ([], None),
        (None, None),
        ("Deployment", None),  # malformed: never narrows
    ],
)
def test_kinds_are_read_as_gatekeeper_reads_match_kinds(entries: Any, expected: Any) -> None:
    kinds = kinds_from_entries(entries)
    assert (set(kinds) if kinds is not None else None) == expected


def test_any_group_matches_the_kind_in_every_group() -> None:
    kinds = kinds_from_entries([{"kinds": ["Service"]}])
    assert applies(kinds, "", "Service")
    assert applies(kinds, "serving.knative.dev", "Service")
    assert not applies(kinds, "", "ConfigMap")
    assert applies(None, "anything.example.com", "Anything")


def test_matchers_of_an_enclosing_package_apply_to_its_subpackages(tmp_path: Path) -> None:
    write(
        tmp_path,
        "root.rego",
        """
        # METADATA
        # scope: subpackages
        # custom:
        #   matchers:
        #     kinds: [{apiGroups: [apps], kinds: [Deployment]}]
        package p
        """,
    )
    write(tmp_path, "child.rego", ALWAYS_DENIES.format(metadata="", name="child"))
    assert results(tmp_path, CONFIGMAP, DEPLOYMENT) == [("p.child", "Deployment", "fail")]


@pytest.mark.parametrize(
    "matchers",
    [
        "#   matchers: {kinds: Deployment}",
        "#   matchers: {kinds: [{apiGroups: apps, kinds: [Deployment]}]}",
        "#   matchers: {kinds: [{group: apps, kinds: [Deployment]}]}",
        "#   matchers: {namespaces: [ml]}",
    ],
)
def test_malformed_matchers_are_a_load_error_naming_the_file_and_line(
    tmp_path: Path, matchers: str
) -> None:
    write(
        tmp_path,
        "bad.rego",
        f"# METADATA\n# custom:\n{matchers}\npackage p.bad\nimport rego.v1\ndeny contains 1 if true\n",
    )
    with pytest.raises(PolicyLoadError) as raised:
        load_policy_files([str(tmp_path)], hooks=())
    assert raised.value.file == str(tmp_path / "bad.rego")
    assert raised.value.line == 1
    assert "custom.matchers" in raised.value.message


def test_matchers_on_a_rule_are_refused_a_policy_is_evaluated_whole(tmp_path: Path) -> None:
    write(
        tmp_path,
        "rule.rego",
        """
        package p.rule
        import rego.v1
        # METADATA
        # custom:
        #   matchers: {kinds: [{kinds: [Deployment]}]}
        deny contains 1 if true
        """,
    )
    with pytest.raises(PolicyLoadError, match="belongs on the package"):
        load_policy_files([str(tmp_path)], hooks=())


CONSTRAINT_TEMPLATE = """
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8salwaysdeny}
spec:
  crd: {spec: {names: {kind: K8sAlwaysDeny}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8salwaysdeny
        violation[{"msg": "denied"}] { true }
"""


def test_a_constraint_judges_the_kinds_its_match_names(tmp_path: Path) -> None:
    write(tmp_path, "template.yaml", CONSTRAINT_TEMPLATE)
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sAlwaysDeny",
        "metadata": {"name": "deployments"},
        "spec": {"match": {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}},
    }
    write(tmp_path, "constraint.yaml", json.dumps(constraint))
    policy_set = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    (policy,) = policy_set.policies
    assert policy.kinds == frozenset({("apps", "Deployment")})
    assert results(tmp_path, CONFIGMAP, DEPLOYMENT) == [
        ("K8sAlwaysDeny/deployments", "Deployment", "fail")
    ]


def test_a_constraint_without_match_kinds_judges_every_kind(tmp_path: Path) -> None:
    write(tmp_path, "template.yaml", CONSTRAINT_TEMPLATE)
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sAlwaysDeny",
        "metadata": {"name": "all"},
        "spec": {},
    }
    write(tmp_path, "constraint.yaml", json.dumps(constraint))
    assert [kind for _, kind, _ in results(tmp_path, CONFIGMAP, DEPLOYMENT, WIDGET)] == [
        "ConfigMap",
        "Deployment",
        "Widget",
    ]


# -- the shipped library -------------------------------------------------------------------


def _shipped() -> Any:
    return load_policy_files([str(POLICIES)], hooks=(gatekeeper.HOOKS,))


def _classes() -> dict[str, str]:
    """lib/serving.rego's kind table, `group/Kind` -> class, as the engine reads it."""
    policy_set = _shipped()
    engine = load_engine(policy_set)
    value = engine.evaluate("data.auditor.lib.serving.kind_classes", {})
    assert isinstance(value, dict) and value
    return value


def _keys(classes: dict[str, str], wanted: set[str]) -> frozenset[tuple[str, str]]:
    return frozenset(
        tuple(key.split("/", 1))  # type: ignore[misc]
        for key, cls in classes.items()
        if cls in wanted
    )


def test_shipped_policies_declare_exactly_the_kinds_the_serving_library_reads() -> None:
    # If lib/serving.rego learns a kind, the policies that read its pods must learn it too:
    # this fails until their METADATA names it.
    classes = _classes()
    pods = _keys(
        classes, {"isvc", "serving_runtime", "seldon_deployment", "seldon_server", "workload"}
    )
    workloads = _keys(classes, {"workload"})
    by_id = {p.id: p.kinds for p in _shipped().policies}
    for policy in (
        "auditor.runtime.image_tags",
        "auditor.runtime.resources",
        "auditor.serving.pod_security",
        "auditor.serving.service_account",
    ):
        assert by_id[policy] == pods, policy
    for policy in ("auditor.serving.readiness_probe", "auditor.model.uri_annotation"):
        assert by_id[policy] == workloads, policy
    assert by_id["auditor.serving.canary_bounds"] == frozenset(
        {
            ("serving.kserve.io", "InferenceService"),
            ("machinelearning.seldon.io", "SeldonDeployment"),
        }
    )
    # a model can be named on any object (the model-uri annotation), drift on any kind
    for policy in (
        "auditor.drift.model_runtime",
        "auditor.model.allowed_sources",
        "auditor.model.digest_pinned",
        "auditor.provenance.model_signed",
        "auditor.provenance.datasets_declared",
    ):
        assert by_id[policy] is None, policy


def test_restricted_shipped_policies_would_not_fire_on_other_kinds_anyway(tmp_path: Path) -> None:
    # Evaluated with their kinds ignored, on objects of kinds outside them that carry what
    # would make them fire on a Deployment (a privileged :latest container without
    # resources, a canary over bounds), the restricted policies all pass: the declaration
    # only saves work.
    import dataclasses

    policy_set = _shipped()
    restricted = [p for p in policy_set.policies if p.kinds is not None]
    everywhere = dataclasses.replace(
        policy_set, policies=tuple(dataclasses.replace(p, kinds=None) for p in restricted)
    )
    engine = load_engine(everywhere)
    bad_pod = copy.deepcopy(DEPLOYMENT["spec"])
    bad_pod["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    bad_pod["template"]["spec"]["hostNetwork"] = True
    bad_pod["predictor"] = copy.deepcopy(ISVC["spec"]["predictor"])
    bad_pod["predictor"]["canaryTrafficPercent"] = 90
    disguised = []
    for api_version, kind in [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("example.com/v1", "Deployment"),  # a Deployment of another group
        ("serving.kserve.io/v1alpha1", "TrainedModel"),
    ]:
        body = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "x", "namespace": "prod"},
            "spec": copy.deepcopy(bad_pod),
        }
        disguised.append(body)
    outcome = evaluate_policies(everywhere, inputs(*disguised), engine=engine)
    assert len(outcome.evaluations) == len(restricted) * len(disguised)
    assert {e.result for e in outcome.evaluations} == {"pass"}
    # and the same content as a real Deployment does fire (the test objects are bad enough)
    real = copy.deepcopy(DEPLOYMENT)
    real["spec"] = copy.deepcopy(bad_pod)
    real["metadata"]["annotations"] = {"auditor.gitops.ml/model-uri": "gs://m/v1"}
    fired = evaluate_policies(everywhere, inputs(real), engine=engine)
    assert "fail" in {e.result for e in fired.evaluations}


def test_parallel_workers_give_the_serial_outcome_over_many_mixed_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inputs sorted by kind, as the pipeline gives them, over several chunks per worker
    import auditor.policy.evaluate as evaluate

    write(tmp_path, "d.rego", ALWAYS_DENIES.format(metadata=DEPLOYMENTS_ONLY, name="d"))
    write(tmp_path, "any.rego", ALWAYS_DENIES.format(metadata="", name="any"))
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    engine = load_engine(policy_set)
    bodies = []
    for template in (CONFIGMAP, DEPLOYMENT, WIDGET):
        for i in range(40):
            body = copy.deepcopy(template)
            body["metadata"]["name"] = f"{template['kind'].lower()}-{i}"
            bodies.append(body)
    serial = evaluate_policies(policy_set, inputs(*bodies), engine=engine)
    monkeypatch.setattr(evaluate, "PARALLEL_MIN_EVALUATIONS", 0)
    monkeypatch.setattr(evaluate, "CHUNK_INPUTS", 7)
    parallel = evaluate_policies(policy_set, inputs(*bodies), engine=engine, workers=2, timeout=60)
    assert [(e.policy, e.ref, e.result) for e in parallel.evaluations] == [
        (e.policy, e.ref, e.result) for e in serial.evaluations
    ]
    assert parallel.findings == serial.findings
    assert len(serial.evaluations) == 40 * 3 + 40  # p.any everywhere, p.d on Deployments
