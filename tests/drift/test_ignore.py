"""Ignore rules: kinds, names and namespaces by glob; JSON pointers; HPA-owned replicas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from auditor.config import DriftSettings, IgnoreRule
from auditor.drift.ignore import IgnoreMatcher
from auditor.model import ResourceRef
from tests.drift.builders import (
    configmap_desired,
    deployment_desired,
    deployment_live,
    run,
    server_metadata,
)


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


def drifted_deployment() -> dict[str, Any]:
    have = deployment_live()
    have["spec"]["replicas"] = 5
    pod(have)["containers"][0]["image"] = "ghcr.io/acme/fraud-api:debug"
    have["metadata"]["labels"]["team"] = "fraud"
    return have


def paths_with(*rules: IgnoreRule) -> list[str]:
    settings = DriftSettings(ignore=rules)
    return [f.path for f in run([deployment_desired()], [drifted_deployment()], settings).findings]


ALL = ["/metadata/labels/team", "/spec/replicas", "/spec/template/spec/containers/0/image"]


def test_without_rules_everything_is_reported() -> None:
    assert paths_with() == ALL


@pytest.mark.parametrize(
    "rule",
    [
        IgnoreRule(kind="Deployment", pointers=("/spec/replicas",)),
        IgnoreRule(kind="apps/Deployment", pointers=("/spec/replicas",)),
        IgnoreRule(kind="apps/v1/Deployment", pointers=("/spec/replicas",)),
        IgnoreRule(kind="Deploy*", name="fraud-*", namespace="m?", pointers=("/spec/replicas",)),
        IgnoreRule(pointers=("/spec/replicas",)),
    ],
)
def test_rules_match_kinds_names_and_namespaces_by_glob(rule: IgnoreRule) -> None:
    assert paths_with(rule) == [p for p in ALL if p != "/spec/replicas"]


@pytest.mark.parametrize(
    "rule",
    [
        IgnoreRule(kind="StatefulSet", pointers=("/spec/replicas",)),
        IgnoreRule(kind="core/Deployment", pointers=("/spec/replicas",)),
        IgnoreRule(kind="Deployment", name="other", pointers=("/spec/replicas",)),
        IgnoreRule(kind="Deployment", namespace="prod", pointers=("/spec/replicas",)),
    ],
)
def test_rules_that_do_not_match_ignore_nothing(rule: IgnoreRule) -> None:
    assert paths_with(rule) == ALL


def test_pointer_ignores_everything_under_it() -> None:
    assert paths_with(IgnoreRule(pointers=("/spec/template",))) == ALL[:2]


def test_wildcard_segment_matches_any_element() -> None:
    rule = IgnoreRule(pointers=("/spec/template/spec/containers/*/image",))
    assert paths_with(rule) == ALL[:2]


def test_wildcard_does_not_match_a_partial_path() -> None:
    rule = IgnoreRule(pointers=("/spec/template/spec/containers/*/image/extra",))
    assert paths_with(rule) == ALL


def test_escaped_pointers_match_annotation_keys() -> None:
    want = deployment_desired()
    want["metadata"]["annotations"] = {"acme.io/owner": "risk"}
    have = deployment_live()
    have["metadata"]["annotations"]["acme.io/owner"] = "fraud"
    rule = IgnoreRule(pointers=("/metadata/annotations/acme.io~1owner",))
    assert run([want], [have], DriftSettings(ignore=(rule,))).findings == ()


def test_rule_without_pointers_ignores_the_whole_object() -> None:
    assert paths_with(IgnoreRule(kind="Deployment", name="fraud-api")) == []


def test_whole_object_rule_silences_missing_and_unmanaged() -> None:
    rules = (IgnoreRule(kind="ConfigMap"),)
    stray = server_metadata(copy.deepcopy(configmap_desired()))
    stray["metadata"]["name"] = "hand-made"
    result = run([configmap_desired()], [stray], DriftSettings(ignore=rules))
    assert result.findings == ()
    assert result.summary.unmanaged == 0 and result.summary.missing == 0


def test_ignored_paths_apply_to_removed_fields() -> None:
    before = deployment_desired()
    pod(before)["nodeSelector"] = {"pool": "gpu"}
    have = deployment_live(before)
    assert [f.check for f in run([deployment_desired()], [have]).findings] == ["drift.removed"]
    rule = IgnoreRule(pointers=("/spec/template/spec/nodeSelector",))
    assert run([deployment_desired()], [have], DriftSettings(ignore=(rule,))).findings == ()


# -- HPA ------------------------------------------------------------------------------------


def hpa(target: str = "fraud-api", kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "fraud-api", "namespace": "ml"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
            "minReplicas": 2,
            "maxReplicas": 10,
        },
    }


def hpa_live(body: dict[str, Any]) -> dict[str, Any]:
    return server_metadata(copy.deepcopy(body))


def scaled_deployment() -> dict[str, Any]:
    have = deployment_live()
    have["spec"]["replicas"] = 7
    return have


def test_replicas_of_an_hpa_target_declared_in_git_are_not_drift() -> None:
    result = run([deployment_desired(), hpa()], [scaled_deployment(), hpa_live(hpa())])
    assert result.findings == ()


def test_replicas_of_an_hpa_target_that_exists_only_live_are_not_drift() -> None:
    result = run([deployment_desired()], [scaled_deployment(), hpa_live(hpa())])
    assert [f.check for f in result.findings] == []


def test_hpa_of_another_object_does_not_hide_replicas() -> None:
    result = run(
        [deployment_desired(), hpa("other")], [scaled_deployment(), hpa_live(hpa("other"))]
    )
    assert [f.path for f in result.findings] == ["/spec/replicas"]


def test_hpa_replicas_rule_can_be_turned_off() -> None:
    settings = DriftSettings(ignore_hpa_replicas=False)
    result = run([deployment_desired(), hpa()], [scaled_deployment(), hpa_live(hpa())], settings)
    assert [f.path for f in result.findings] == ["/spec/replicas"]


def test_matcher_answers_per_ref() -> None:
    matcher = IgnoreMatcher(
        [
            IgnoreRule(
                kind="InferenceService", name="fraud-*", pointers=("/spec/predictor/minReplicas",)
            )
        ]
    )
    isvc = ResourceRef("c", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud-scorer")
    other = ResourceRef("c", "serving.kserve.io/v1beta1", "InferenceService", "ml", "churn")
    assert matcher.for_ref(isvc).ignores(("spec", "predictor", "minReplicas"))
    assert not matcher.for_ref(isvc).ignores(("spec", "predictor", "maxReplicas"))
    assert not matcher.for_ref(other).ignores(("spec", "predictor", "minReplicas"))


def test_rules_of_an_aggregated_cluster_role_are_the_controllers() -> None:
    # Argo CD's default `resource.compareoptions: ignoreAggregatedRoles: true`
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "kubeflow-admin"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "true"}}]},
        "rules": [],
    }
    have = copy.deepcopy(role)
    have["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    assert run([role], [have]).findings == ()
    plain = {k: v for k, v in role.items() if k != "aggregationRule"}
    [finding] = run([plain], [{k: v for k, v in have.items() if k != "aggregationRule"}]).findings
    assert finding.path == "/rules"


def test_aggregated_role_rules_are_compared_when_the_option_is_off() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "kubeflow-admin"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "true"}}]},
        "rules": [],
    }
    have = copy.deepcopy(role)
    have["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    settings = DriftSettings(ignore_aggregated_roles=False)
    [finding] = run([role], [have], settings=settings).findings
    assert finding.path == "/rules"
