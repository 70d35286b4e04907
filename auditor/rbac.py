"""What an audit reads from a cluster, as Kubernetes RBAC: the least-privilege roles and
bindings (`auditor deploy rbac`) and the access `auditor doctor` asks the API server about.

Both come from the same list, `resources_to_read`, so the shipped role, the doctor's checks and
the kinds the live stage lists cannot drift apart: get, list and watch on exactly the kinds in
scope (Pods only when models are verified, whose running digests they hold), never `*`, never a
write verb, Secrets only when Secrets are in scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.errors import ConfigError
from auditor.kinds import is_namespaced
from auditor.scope import Scope

READ_VERBS = ("get", "list", "watch")
DEFAULT_ROLE_NAME = "auditor-reader"
DEFAULT_ACCOUNT = ("auditor", "auditor")  # the ServiceAccount of deploy/cron: namespace, name

# The groups of kinds that a config may name without one (`scope.kinds: [Deployment]`): the
# built-in kinds and those of the model servers auditor knows (serving.py).
KNOWN_GROUPS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "ConfigMap",
            "Secret",
            "Service",
            "ServiceAccount",
            "Namespace",
            "Pod",
            "PersistentVolumeClaim",
            "LimitRange",
            "ResourceQuota",
        ),
        "",
    ),
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"), "apps"),
    **dict.fromkeys(("Job", "CronJob"), "batch"),
    "HorizontalPodAutoscaler": "autoscaling",
    "PodDisruptionBudget": "policy",
    **dict.fromkeys(("Ingress", "NetworkPolicy", "IngressClass"), "networking.k8s.io"),
    **dict.fromkeys(
        ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"), "rbac.authorization.k8s.io"
    ),
    **dict.fromkeys(
        ("InferenceService", "ServingRuntime", "ClusterServingRuntime", "InferenceGraph"),
        "serving.kserve.io",
    ),
    "SeldonDeployment": "machinelearning.seldon.io",
}
# Plurals that the English rule below gets wrong.
IRREGULAR_PLURALS: Mapping[str, str] = {"endpoints": "endpoints"}


@dataclass(frozen=True, slots=True, order=True)
class ReadAccess:
    """One kind the audit lists: its API group, resource (plural) and kind."""

    group: str
    resource: str
    kind: str
    namespaced: bool

    @property
    def qualified(self) -> str:
        """`inferenceservices.serving.kserve.io`, as kubectl and RBAC errors name it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource


def plural_of(kind: str) -> str:
    """The resource name of a kind, as kube-apiserver registers built-ins and CRDs declare
    theirs: lower case, `-y` after a consonant becomes `-ies`, `-s` gets `-es`."""
    singular = kind.lower()
    if singular in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[singular]
    if singular.endswith("y") and singular[-2:-1] not in ("a", "e", "i", "o", "u"):
        return singular[:-1] + "ies"
    if singular.endswith(("s", "x", "ch", "sh")):
        return singular + "es"
    return singular + "s"


def resources_to_read(
    scope: Scope, *, declared: Iterable[tuple[str, str]] = (), pods: bool = False
) -> list[ReadAccess]:
    """Every kind the live stage lists for `scope`, sorted. A kind named without a group
    takes the group Git declares it in, else its well-known one; `pods` adds Pods.

    Raises ConfigError for a kind named without a group that is neither.
    """
    by_kind: dict[str, set[str]] = {}
    for group, kind in declared:
        by_kind.setdefault(kind, set()).add(group)
    wanted: set[tuple[str, str]] = set()
    for selector in scope.kinds:
        if selector.group is not None:
            wanted.add((selector.group, selector.kind))
        elif selector.kind in by_kind:
            wanted.update((g, selector.kind) for g in by_kind[selector.kind])
        elif selector.kind in KNOWN_GROUPS:
            wanted.add((KNOWN_GROUPS[selector.kind], selector.kind))
        else:
            raise ConfigError(
                f"scope kind {selector.kind} names no API group, and it is not one whose group "
                "auditor knows: name it with its group (e.g. serving.kserve.io/InferenceService)",
                key="scope.kinds",
            )
    if pods:
        wanted.add(("", "Pod"))
    return sorted(
        ReadAccess(group=g, resource=plural_of(k), kind=k, namespaced=is_namespaced(g, k))
        for g, k in wanted
    )


def cluster_role(access: Iterable[ReadAccess], *, name: str = DEFAULT_ROLE_NAME) -> dict[str, Any]:
    """The ClusterRole granting get/list/watch on exactly `access`: one rule per API group."""
    by_group: dict[str, set[str]] = {}
    for item in access:
        by_group.setdefault(item.group, set()).add(item.resource)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "auditor"}},
        "rules": [
            {"apiGroups": [group], "resources": sorted(resources), "verbs": list(READ_VERBS)}
            for group, resources in sorted(by_group.items())
        ],
    }


def rbac_manifests(
    access: Sequence[ReadAccess],
    namespaces: Sequence[str] | None,
    *,
    name: str = DEFAULT_ROLE_NAME,
    account: tuple[str, str] = DEFAULT_ACCOUNT,
) -> list[dict[str, Any]]:
    """The roles and bindings that let the ServiceAccount `account` (namespace, name) read
    exactly `access`, and no more widely than the live stage reads it.

    With `namespaces` (the literal namespaces the live stage lists one by one), the
    namespaced kinds are granted by a RoleBinding in each of them; cluster-scoped kinds, and
    every kind when the scope is all namespaces (None), by a ClusterRoleBinding.
    """
    if namespaces is None:
        role = cluster_role(access, name=name)
        return [role, _binding(role, account)]
    namespaced = [a for a in access if a.namespaced]
    cluster_wide = [a for a in access if not a.namespaced]
    manifests: list[dict[str, Any]] = []
    if namespaced:
        role = cluster_role(namespaced, name=name)
        manifests.append(role)
        manifests.extend(_binding(role, account, namespace=ns) for ns in namespaces)
    if cluster_wide:
        role = cluster_role(cluster_wide, name=f"{name}-cluster")
        manifests.extend([role, _binding(role, account)])
    return manifests


def _binding(
    role: dict[str, Any], account: tuple[str, str], *, namespace: str | None = None
) -> dict[str, Any]:
    """A binding of the ClusterRole `role` to the ServiceAccount: in `namespace`, or
    cluster-wide."""
    metadata: dict[str, Any] = {"name": role["metadata"]["name"]}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(role["metadata"]["labels"])
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace is not None else "ClusterRoleBinding",
        "metadata": metadata,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}],
    }


__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_ROLE_NAME",
    "READ_VERBS",
    "ReadAccess",
    "cluster_role",
    "plural_of",
    "rbac_manifests",
    "resources_to_read",
]
