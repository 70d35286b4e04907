"""What the pipeline knows about kinds without asking a cluster: scope and plural names.

Live mode learns namespaced-ness from discovery; snapshot and Git-only runs use this table,
which covers the built-in cluster-scoped kinds and those of the ML-serving operators.
"""

from __future__ import annotations

import re

CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("serving.kserve.io", "ClusterServingRuntime"),
        ("serving.kserve.io", "ClusterStorageContainer"),
        ("serving.kserve.io", "LocalModelCache"),
        ("serving.kserve.io", "LocalModelNode"),
        ("serving.kserve.io", "LocalModelNodeGroup"),
        ("templates.gatekeeper.sh", "ConstraintTemplate"),
        ("kyverno.io", "ClusterPolicy"),
    }
)


def is_namespaced(group: str, kind: str) -> bool:
    """Whether a kind is namespaced, for runs that have no discovery to ask."""
    if group == "constraints.gatekeeper.sh":
        return False
    return (group, kind) not in CLUSTER_SCOPED


def parse_kind(text: str) -> tuple[str | None, str]:
    """`Deployment`, `apps/Deployment`, `apps/v1/Deployment` or `core/Secret` -> (group, kind).

    A bare kind matches every group (None); `core/Secret`, `v1/Secret` or `/Secret` name the
    core group ("").
    """
    parts = text.split("/")
    kind = parts[-1]
    if len(parts) == 1:
        return None, kind
    group = parts[0]
    if len(parts) == 2 and re.fullmatch(r"v\d+((alpha|beta)\d+)?", group):
        group = ""  # `v1/Secret`: a core apiVersion, not a group
    if group == "core":
        group = ""
    return group, kind
