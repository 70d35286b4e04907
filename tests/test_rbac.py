"""The kinds an audit reads, as RBAC: exactly the scope, plural names as the API server
registers them, nothing to write."""

from __future__ import annotations

import pytest

from auditor.errors import ConfigError
from auditor.rbac import cluster_role, plural_of, rbac_manifests, resources_to_read
from auditor.scope import KindSelector, Scope


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("InferenceService", "inferenceservices"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Gateway", "gateways"),
        ("Endpoints", "endpoints"),
        ("ConfigMap", "configmaps"),
        ("HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ],
)
def test_plural_of_a_kind_is_its_resource_name(kind: str, plural: str) -> None:
    assert plural_of(kind) == plural


def scope(*kinds: str) -> Scope:
    return Scope(kinds=tuple(KindSelector.parse(k) for k in kinds))


def test_a_kind_without_a_group_takes_the_group_git_declares_it_in() -> None:
    [access] = resources_to_read(scope("Widget"), declared=[("example.com", "Widget")])
    assert (access.group, access.resource) == ("example.com", "widgets")


def test_a_well_known_kind_needs_no_group() -> None:
    [access] = resources_to_read(scope("Deployment"))
    assert access.qualified == "deployments.apps"


def test_an_unknown_kind_without_a_group_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="Widget"):
        resources_to_read(scope("Widget"))


def test_pods_only_when_asked_and_secrets_only_in_scope() -> None:
    plain = {a.resource for a in resources_to_read(scope("apps/Deployment"))}
    assert plain == {"deployments"}
    with_pods = {a.resource for a in resources_to_read(scope("apps/Deployment"), pods=True)}
    assert with_pods == {"deployments", "pods"}
    with_secrets = {a.resource for a in resources_to_read(scope("core/Secret"))}
    assert with_secrets == {"secrets"}


def test_the_role_has_one_read_only_rule_per_group() -> None:
    role = cluster_role(resources_to_read(scope("apps/Deployment", "v1/Service", "ConfigMap")))
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps", "services"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
    ]


def test_listed_namespaces_get_role_bindings_and_cluster_kinds_a_role_of_their_own() -> None:
    access = resources_to_read(scope("apps/Deployment", "core/Namespace"))
    manifests = rbac_manifests(access, ["ml", "ml-staging"], account=("ops", "reader"))
    shape = [(m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")) for m in manifests]
    assert shape == [
        ("ClusterRole", "auditor-reader", None),
        ("RoleBinding", "auditor-reader", "ml"),
        ("RoleBinding", "auditor-reader", "ml-staging"),
        ("ClusterRole", "auditor-reader-cluster", None),
        ("ClusterRoleBinding", "auditor-reader-cluster", None),
    ]
    assert manifests[0]["rules"][0]["resources"] == ["deployments"]
    assert manifests[3]["rules"][0]["resources"] == ["namespaces"]
    assert manifests[1]["subjects"] == [
        {"kind": "ServiceAccount", "name": "reader", "namespace": "ops"}
    ]


def test_every_namespace_in_scope_is_one_cluster_wide_binding() -> None:
    manifests = rbac_manifests(resources_to_read(scope("apps/Deployment")), None)
    assert [m["kind"] for m in manifests] == ["ClusterRole", "ClusterRoleBinding"]
