"""Gatekeeper policies end to end: input.review, data.inventory, match, errors, results."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.model import Resource, ResourceRef
from auditor.policy.evaluate import evaluate_files
from auditor.policy.gatekeeper import (
    build_inventory,
    gatekeeper_input,
    load_gatekeeper,
    namespaces_from,
)
from tests.policy.gatekeeper.builders import (
    EXEMPT_LIB,
    EXTERNAL_DATA_REGO,
    PRIVILEGED_REGO,
    REQUIRED_LABELS_REGO,
    UNIQUE_HOST_REGO,
    constraint_yaml,
    ingress,
    namespace,
    pod,
    template_yaml,
    write,
    write_objects,
)

# -- data.inventory -----------------------------------------------------------------------------


def test_inventory_is_keyed_by_group_version_kind_and_name_like_gatekeeper() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ml"},
    }
    ns = namespace("ml", env="prod")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
    }
    inventory = build_inventory([deployment, ns, role, pod("p")])
    assert inventory == {
        "cluster": {
            "v1": {"Namespace": {"ml": ns}},
            "rbac.authorization.k8s.io/v1": {"ClusterRole": {"r": role}},
        },
        "namespace": {
            "ml": {"apps/v1": {"Deployment": {"d": deployment}}, "v1": {"Pod": {"p": pod("p")}}}
        },
    }


def test_inventory_of_nothing_still_has_both_roots() -> None:
    assert build_inventory([]) == {"cluster": {}, "namespace": {}}


def test_inventory_uses_the_namespace_a_resource_was_resolved_to() -> None:
    """Git manifests often leave the namespace to `kubectl apply -n`; the desired stage resolves
    it on the ref, and Gatekeeper would see it on the object."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    ref = ResourceRef(cluster="c", api_version="v1", kind="ConfigMap", namespace="ml", name="cfg")
    inventory = build_inventory([Resource(ref=ref, body=body, side="desired", origin="x@1")])
    assert inventory["namespace"]["ml"]["v1"]["ConfigMap"]["cfg"]["metadata"]["namespace"] == "ml"


def test_namespaces_for_selectors_come_from_the_objects_in_scope() -> None:
    assert namespaces_from([pod("p"), namespace("ml", env="prod")]) == {
        "ml": namespace("ml", env="prod")
    }


# -- input.review -------------------------------------------------------------------------------


def test_input_is_gatekeepers_audit_review_and_the_constraint_parameters(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO))
    write(
        tmp_path / "c.yaml",
        constraint_yaml("K8sRequiredLabels", "c", {"parameters": {"labels": ["team"]}}),
    )
    (policy,) = load_gatekeeper([tmp_path]).policies
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ml"},
    }
    assert gatekeeper_input(policy, deployment) == {
        "review": {
            "uid": "",
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "", "version": "", "resource": ""},
            "name": "d",
            "namespace": "ml",
            "operation": "",  # audit and gator review without an operation
            "userInfo": {},
            "object": deployment,
            "oldObject": None,
            "options": None,
        },
        "parameters": {"labels": ["team"]},
    }


def test_cluster_scoped_review_has_no_namespace_and_parameters_default_to_empty(
    tmp_path: Path,
) -> None:
    write(tmp_path / "t.yaml", template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO))
    write(tmp_path / "c.yaml", constraint_yaml("K8sRequiredLabels", "c"))
    (policy,) = load_gatekeeper([tmp_path]).policies
    doc = gatekeeper_input(
        policy, namespace("ml"), operation="CREATE", user_info={"username": "alice"}
    )
    assert "namespace" not in doc["review"]
    assert doc["review"]["kind"] == {"group": "", "version": "v1", "kind": "Namespace"}
    assert doc["review"]["operation"] == "CREATE"
    assert doc["review"]["userInfo"] == {"username": "alice"}
    assert doc["parameters"] == {}


# -- through `auditor policy eval`'s library call ----------------------------------------------


def unique_host_library(tmp_path: Path) -> Path:
    policy = tmp_path / "policy"
    write(policy / "template.yaml", template_yaml("K8sUniqueIngressHost", UNIQUE_HOST_REGO))
    write(
        policy / "constraint.yaml",
        constraint_yaml(
            "K8sUniqueIngressHost",
            "unique-ingress-host",
            {
                "match": {
                    "kinds": [
                        {"apiGroups": ["extensions", "networking.k8s.io"], "kinds": ["Ingress"]}
                    ]
                }
            },
        ),
    )
    return policy


def test_unique_ingress_host_sees_other_ingresses_through_data_inventory(tmp_path: Path) -> None:
    policy = unique_host_library(tmp_path)
    candidate = write_objects(
        tmp_path / "new.yaml", ingress("model-api", "ml", "models.example.com")
    )
    inventory = write_objects(
        tmp_path / "inventory.yaml",
        ingress("model-api", "ml", "models.example.com"),  # the object itself: not a conflict
        ingress("legacy", "web", "models.example.com", api_version="extensions/v1beta1"),
        ingress("other", "web", "other.example.com"),
    )
    outcome = evaluate_files([str(policy)], [str(candidate)], inventory_files=[str(inventory)])
    (evaluation,) = outcome.evaluations
    assert evaluation.result == "fail"
    assert [m.msg for m in evaluation.messages] == [
        "Ingress host conflicts with Ingress web/legacy <models.example.com>"
    ]
    (finding,) = outcome.findings
    assert finding.check == "K8sUniqueIngressHost/unique-ingress-host"
    assert finding.severity == "high"
    assert finding.message.startswith("Ingress ml/model-api: Ingress host conflicts")


def test_unique_ingress_host_passes_without_a_conflicting_inventory(tmp_path: Path) -> None:
    policy = unique_host_library(tmp_path)
    candidate = write_objects(
        tmp_path / "new.yaml", ingress("model-api", "ml", "models.example.com")
    )
    outcome = evaluate_files([str(policy)], [str(candidate)])
    assert [e.result for e in outcome.evaluations] == ["pass"]


def test_unmatched_kinds_are_not_evaluated_at_all(tmp_path: Path) -> None:
    policy = unique_host_library(tmp_path)
    outcome = evaluate_files([str(policy)], [str(write_objects(tmp_path / "pod.yaml", pod("p")))])
    assert outcome.evaluations == ()


def test_external_data_template_is_an_error_finding_while_others_still_run(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    write(policy / "signed/template.yaml", template_yaml("K8sSignedImages", EXTERNAL_DATA_REGO))
    write(policy / "signed/constraint.yaml", constraint_yaml("K8sSignedImages", "signed"))
    write(
        policy / "priv/template.yaml", template_yaml("K8sPriv", PRIVILEGED_REGO, libs=(EXEMPT_LIB,))
    )
    write(policy / "priv/constraint.yaml", constraint_yaml("K8sPriv", "no-privileged"))
    privileged = pod(
        "p", containers=[{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
    )
    outcome = evaluate_files([str(policy)], [str(write_objects(tmp_path / "pod.yaml", privileged))])
    results = {e.policy: e for e in outcome.evaluations}
    assert results["K8sPriv/no-privileged"].result == "fail"
    errored = results["K8sSignedImages/signed"]
    assert errored.result == "error"
    assert errored.error is not None and "external_data" in errored.error
    assert str(policy / "signed/template.yaml") in errored.error  # names the template file
    assert {f.category for f in outcome.findings} == {"policy", "error"}
    assert outcome.exit_code() == 3


def test_cel_only_template_becomes_an_error_evaluation(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    write(
        policy / "t.yaml",
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8scel}\n"
        "spec:\n  crd: {spec: {names: {kind: K8sCel}}}\n  targets:\n"
        "    - target: admission.k8s.gatekeeper.sh\n      code:\n"
        "        - engine: K8sNativeValidation\n          source: {validations: [{expression: 'true'}]}\n",
    )
    write(policy / "c.yaml", constraint_yaml("K8sCel", "cel"))
    # a Rego template beside it, as in a real library (a CEL-only path loads no Rego at all)
    write(policy / "labels.yaml", template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO))
    outcome = evaluate_files([str(policy)], [str(write_objects(tmp_path / "pod.yaml", pod("p")))])
    (evaluation,) = outcome.evaluations
    assert evaluation.policy == "K8sCel/cel"
    assert evaluation.result == "error"
    assert "CEL" in (evaluation.error or "")


@pytest.mark.parametrize(
    ("action", "result", "severity"),
    [("deny", "fail", "high"), ("warn", "warn", "medium"), ("dryrun", "warn", "info")],
)
def test_enforcement_action_sets_result_and_finding_severity(
    tmp_path: Path, action: str, result: str, severity: str
) -> None:
    policy = tmp_path / "policy"
    write(policy / "t.yaml", template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO))
    write(
        policy / "c.yaml",
        constraint_yaml(
            "K8sRequiredLabels",
            "team",
            {"enforcementAction": action, "parameters": {"labels": ["team"]}},
        ),
    )
    outcome = evaluate_files([str(policy)], [str(write_objects(tmp_path / "pod.yaml", pod("p")))])
    assert [e.result for e in outcome.evaluations] == [result]
    assert [f.severity for f in outcome.findings] == [severity]


def test_namespace_selector_uses_namespaces_from_the_inventory(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    write(policy / "t.yaml", template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO))
    write(
        policy / "c.yaml",
        constraint_yaml(
            "K8sRequiredLabels",
            "prod-team",
            {
                "match": {"namespaceSelector": {"matchLabels": {"env": "prod"}}},
                "parameters": {"labels": ["team"]},
            },
        ),
    )
    pods = write_objects(
        tmp_path / "pods.yaml", pod("a", "ml-prod"), pod("b", "ml-dev"), pod("c", "unknown")
    )
    inventory = write_objects(
        tmp_path / "ns.yaml", namespace("ml-prod", env="prod"), namespace("ml-dev", env="dev")
    )
    outcome = evaluate_files([str(policy)], [str(pods)], inventory_files=[str(inventory)])
    by_pod = {e.ref.name: e for e in outcome.evaluations if e.ref}
    assert by_pod["a"].result == "fail"
    assert "b" not in by_pod  # not selected: no evaluation
    # Gatekeeper cannot decide without the Namespace object: an error, never a silent pass
    assert by_pod["c"].result == "error"
    assert "Namespace 'unknown'" in (by_pod["c"].error or "")
