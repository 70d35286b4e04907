"""Which live objects Git does not declare are "unmanaged" (a manual deployment).

Objects the cluster or another object creates are never unmanaged: anything with
ownerReferences (ReplicaSets, Pods, KServe's Deployments), and what Kubernetes and the
common add-ons put in every namespace.
"""

from __future__ import annotations

from collections.abc import Mapping

from auditor.model import Resource

# Created by the API server or its controllers in every namespace.
SYSTEM_OBJECTS: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("", "ConfigMap", "kube-root-ca.crt"),
        ("", "ConfigMap", "istio-ca-root-cert"),  # Istio's CA bundle, with KServe on Istio
        ("", "ConfigMap", "openshift-service-ca.crt"),
        ("", "ServiceAccount", "default"),
    }
)
# Kinds whose objects controllers derive from others, never declared in Git.
DERIVED_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Endpoints"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
    }
)
# Secret types written by controllers (token controller, Helm's release storage).
DERIVED_SECRET_TYPES: frozenset[str] = frozenset(
    {"kubernetes.io/service-account-token", "helm.sh/release.v1"}
)


def can_be_unmanaged(resource: Resource) -> bool:
    """False for objects that another object or the cluster itself created."""
    ref = resource.ref
    body = resource.body
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("ownerReferences"):
        return False
    if (ref.group, ref.kind) in DERIVED_KINDS:
        return False
    if (ref.group, ref.kind, ref.name) in SYSTEM_OBJECTS:
        return False
    return not (
        ref.group == "" and ref.kind == "Secret" and body.get("type") in DERIVED_SECRET_TYPES
    )
