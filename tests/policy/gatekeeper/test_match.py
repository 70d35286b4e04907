"""Constraint `spec.match` semantics, criterion by criterion, as Gatekeeper's pkg/mutation/match."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.policy.gatekeeper_match import MatchError, match_any, match_object, wildcard_matches
from tests.policy.gatekeeper.builders import namespace, pod

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "fraud-scorer", "namespace": "ml-prod", "labels": {"tier": "serving"}},
}
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "fraud", "namespace": "kube-system"},
}
CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "model-reader", "labels": {"tier": "serving"}},
}
NS_PROD = namespace("ml-prod", env="prod")

Case = tuple[dict[str, Any], dict[str, Any], bool]


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("kube-system", "kube-system", True),
        ("kube-system", "kube-public", False),
        ("kube-*", "kube-public", True),
        ("kube-*", "my-kube-public", False),
        ("*-system", "gatekeeper-system", True),
        ("*-system", "system-x", False),
        ("*prod*", "ml-prod-eu", True),
        ("*", "anything", True),
        ("ml*prod", "ml-prod", False),  # a `*` in the middle is literal, as in Gatekeeper
    ],
)
def test_wildcard_is_a_prefix_suffix_or_infix_glob(pattern: str, name: str, expected: bool) -> None:
    assert wildcard_matches(pattern, name) is expected


KINDS_CASES: list[Case] = [
    ({"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}, DEPLOYMENT, True),
    ({"kinds": [{"apiGroups": [""], "kinds": ["Deployment"]}]}, DEPLOYMENT, False),
    ({"kinds": [{"apiGroups": ["*"], "kinds": ["Deployment"]}]}, DEPLOYMENT, True),
    ({"kinds": [{"apiGroups": ["apps"], "kinds": ["*"]}]}, DEPLOYMENT, True),
    ({"kinds": [{"apiGroups": ["apps"], "kinds": ["StatefulSet"]}]}, DEPLOYMENT, False),
    (
        {
            "kinds": [
                {"apiGroups": [""], "kinds": ["Pod"]},
                {"apiGroups": ["apps"], "kinds": ["Deployment"]},
            ]
        },
        DEPLOYMENT,
        True,
    ),
    ({"kinds": [{"kinds": ["Deployment"]}]}, DEPLOYMENT, True),  # no apiGroups: any group
    ({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, pod("p"), True),
    ({"kinds": [{"apiGroups": ["serving.kserve.io"], "kinds": ["InferenceService"]}]}, ISVC, True),
]

NAMESPACE_CASES: list[Case] = [
    ({"namespaces": ["ml-prod"]}, DEPLOYMENT, True),
    ({"namespaces": ["ml-*"]}, DEPLOYMENT, True),
    ({"namespaces": ["*-prod"]}, DEPLOYMENT, True),
    ({"namespaces": ["default"]}, DEPLOYMENT, False),
    ({"excludedNamespaces": ["kube-*"]}, ISVC, False),
    ({"excludedNamespaces": ["*-system"]}, ISVC, False),
    ({"excludedNamespaces": ["kube-*"]}, DEPLOYMENT, True),
    # namespace criteria never exclude a cluster-scoped object (Gatekeeper's namespacesMatch)
    ({"namespaces": ["ml-prod"]}, CLUSTER_ROLE, True),
    ({"excludedNamespaces": ["*"]}, CLUSTER_ROLE, True),
    # a Namespace is matched by its own name
    ({"namespaces": ["ml-*"]}, NS_PROD, True),
    ({"excludedNamespaces": ["ml-prod"]}, NS_PROD, False),
]

LABEL_CASES: list[Case] = [
    ({"labelSelector": {"matchLabels": {"tier": "serving"}}}, DEPLOYMENT, True),
    ({"labelSelector": {"matchLabels": {"tier": "batch"}}}, DEPLOYMENT, False),
    ({"labelSelector": {}}, DEPLOYMENT, True),  # an empty selector selects everything
    (
        {
            "labelSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["serving", "x"]}]
            }
        },
        DEPLOYMENT,
        True,
    ),
    (
        {
            "labelSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]
            }
        },
        DEPLOYMENT,
        False,
    ),
    (
        {
            "labelSelector": {
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]
            }
        },
        DEPLOYMENT,
        True,
    ),
    (
        {
            "labelSelector": {
                "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["serving"]}]
            }
        },
        DEPLOYMENT,
        False,
    ),
    (
        {
            "labelSelector": {
                "matchExpressions": [{"key": "absent", "operator": "NotIn", "values": ["x"]}]
            }
        },
        DEPLOYMENT,
        True,
    ),
    (
        {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}},
        DEPLOYMENT,
        True,
    ),
    (
        {"labelSelector": {"matchExpressions": [{"key": "absent", "operator": "Exists"}]}},
        DEPLOYMENT,
        False,
    ),
    (
        {"labelSelector": {"matchExpressions": [{"key": "absent", "operator": "DoesNotExist"}]}},
        DEPLOYMENT,
        True,
    ),
    (
        {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}},
        DEPLOYMENT,
        False,
    ),
    (
        {
            "labelSelector": {
                "matchLabels": {"tier": "serving"},
                "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
            }
        },
        DEPLOYMENT,
        False,  # matchLabels AND matchExpressions
    ),
]

NAME_SCOPE_SOURCE_CASES: list[Case] = [
    ({"name": "fraud-scorer"}, DEPLOYMENT, True),
    ({"name": "fraud-*"}, DEPLOYMENT, True),
    ({"name": "*-scorer"}, DEPLOYMENT, True),
    ({"name": "other"}, DEPLOYMENT, False),
    ({"name": ""}, DEPLOYMENT, True),
    ({"scope": "*"}, CLUSTER_ROLE, True),
    ({"scope": "Cluster"}, CLUSTER_ROLE, True),
    ({"scope": "Cluster"}, DEPLOYMENT, False),
    ({"scope": "Cluster"}, NS_PROD, True),  # a Namespace is cluster-scoped
    ({"scope": "Namespaced"}, DEPLOYMENT, True),
    ({"scope": "Namespaced"}, CLUSTER_ROLE, False),
    ({"scope": "Namespaced"}, NS_PROD, False),
    ({"scope": "cluster"}, DEPLOYMENT, True),  # unknown scope values match all, as in Gatekeeper
    ({"source": "All"}, DEPLOYMENT, True),
    ({"source": "Original"}, DEPLOYMENT, True),  # what Git and the cluster hold
    ({"source": "Generated"}, DEPLOYMENT, False),  # only generator expansions
    ({}, DEPLOYMENT, True),
]


@pytest.mark.parametrize(
    ("match", "obj", "expected"),
    KINDS_CASES + NAMESPACE_CASES + LABEL_CASES + NAME_SCOPE_SOURCE_CASES,
)
def test_match_criterion(match: dict[str, Any], obj: dict[str, Any], expected: bool) -> None:
    assert match_object(match, obj, NS_PROD if obj is DEPLOYMENT else None) is expected


NS_SELECTOR = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}


@pytest.mark.parametrize(
    ("obj", "ns", "expected"),
    [
        (DEPLOYMENT, NS_PROD, True),
        (DEPLOYMENT, namespace("ml-prod", env="dev"), False),
        (NS_PROD, None, True),  # a Namespace is selected on its own labels
        (namespace("dev", env="dev"), None, False),
        (CLUSTER_ROLE, None, True),  # cluster-scoped objects pass a namespaceSelector
    ],
)
def test_namespace_selector_reads_the_namespace_object(
    obj: dict[str, Any], ns: dict[str, Any] | None, expected: bool
) -> None:
    assert match_object(NS_SELECTOR, obj, ns) is expected


def test_namespace_selector_without_the_namespace_object_is_an_error_not_a_pass() -> None:
    with pytest.raises(MatchError, match="needs Namespace 'ml-prod'"):
        match_object(NS_SELECTOR, DEPLOYMENT, None)


def test_all_criteria_must_hold() -> None:
    match = {
        "kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}],
        "namespaces": ["ml-*"],
        "labelSelector": {"matchLabels": {"tier": "serving"}},
        "namespaceSelector": {"matchLabels": {"env": "prod"}},
    }
    assert match_object(match, DEPLOYMENT, NS_PROD)
    assert not match_object({**match, "name": "other"}, DEPLOYMENT, NS_PROD)


def test_old_object_matches_when_the_new_one_does_not() -> None:
    relabelled = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "labels": {}}}  # type: ignore[dict-item]
    match = {"labelSelector": {"matchLabels": {"tier": "serving"}}}
    assert match_any(match, [relabelled, DEPLOYMENT], NS_PROD)
    assert not match_any(match, [relabelled, None], NS_PROD)


@pytest.mark.parametrize(
    "match",
    [
        {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
        {
            "labelSelector": {
                "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]
            }
        },
        {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}},
        {"source": "Mutated"},
        {"kinds": "Pod"},
    ],
)
def test_malformed_criteria_raise(match: dict[str, Any]) -> None:
    with pytest.raises(MatchError):
        match_object(match, DEPLOYMENT, NS_PROD)
