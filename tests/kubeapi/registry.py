"""The resource types the test API server serves, described as discovery describes them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

READ_WRITE_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
SUBRESOURCE_VERBS: tuple[str, ...] = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """`deployments/status`: listed in discovery, never listable; clients must skip it."""

    name: str  # "status", "scale", "log"
    kind: str
    group: str | None = None  # set when the subresource returns another group's kind (Scale)
    version: str | None = None
    verbs: tuple[str, ...] = SUBRESOURCE_VERBS


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = READ_WRITE_VERBS
    subresources: tuple[Subresource, ...] = ()
    # Custom resources are served as unstructured JSON: their list items keep apiVersion and
    # kind, where built-in lists drop them.
    custom: bool = False
    singular: str = field(default="")

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def qualified(self) -> str:
        """`inferenceservices.serving.kserve.io`, `pods`: how the API server names a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[dict[str, Any]]:
        """This type's entries of an APIResourceList, subresources included."""
        main: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular_name,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
            "storageVersionHash": _storage_hash(self),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        for sub in self.subresources:
            entry: dict[str, Any] = {
                "name": f"{self.plural}/{sub.name}",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                entry["group"] = sub.group
                entry["version"] = sub.version
            entries.append(entry)
        return entries


def _storage_hash(rtype: ResourceType) -> str:
    text = f"{rtype.group}/{rtype.version}/{rtype.kind}".encode()
    return hashlib.sha256(text).digest()[:8].hex()


SCALE = Subresource("scale", kind="Scale", group="autoscaling", version="v1")


def _status(kind: str) -> Subresource:
    return Subresource("status", kind=kind)


def _core(kind: str, plural: str, **kw: Any) -> ResourceType:
    return ResourceType(group="", version="v1", kind=kind, plural=plural, **kw)


def _crd(group: str, version: str, kind: str, plural: str, **kw: Any) -> ResourceType:
    kw.setdefault("subresources", (_status(kind),))
    return ResourceType(group=group, version=version, kind=kind, plural=plural, custom=True, **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        subresources=(_status("Namespace"), Subresource("finalize", kind="Namespace")),
    ),
    _core("ConfigMap", "configmaps", short_names=("cm",)),
    _core("Secret", "secrets"),
    _core(
        "Service",
        "services",
        short_names=("svc",),
        categories=("all",),
        subresources=(_status("Service"), Subresource("proxy", kind="ServiceProxyOptions")),
    ),
    _core(
        "ServiceAccount",
        "serviceaccounts",
        short_names=("sa",),
        subresources=(
            Subresource(
                "token",
                kind="TokenRequest",
                group="authentication.k8s.io",
                version="v1",
                verbs=("create",),
            ),
        ),
    ),
    _core(
        "Pod",
        "pods",
        short_names=("po",),
        categories=("all",),
        subresources=(
            _status("Pod"),
            Subresource("log", kind="Pod", verbs=("get",)),
            Subresource("exec", kind="PodExecOptions", verbs=("create", "get")),
        ),
    ),
    _core("Endpoints", "endpoints", short_names=("ep",), singular="endpoints"),
    _core(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short_names=("pvc",),
        subresources=(_status("PersistentVolumeClaim"),),
    ),
    _core("Node", "nodes", namespaced=False, short_names=("no",), subresources=(_status("Node"),)),
    _core(
        "PersistentVolume",
        "persistentvolumes",
        namespaced=False,
        short_names=("pv",),
        subresources=(_status("PersistentVolume"),),
    ),
    # create-only, as on a real server: discovery lists it but it cannot be listed
    _core("Binding", "bindings", verbs=("create",)),
    ResourceType(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        categories=("all",),
        subresources=(_status("Deployment"), SCALE),
    ),
    ResourceType(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        categories=("all",),
        subresources=(_status("StatefulSet"), SCALE),
    ),
    ResourceType(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        categories=("all",),
        subresources=(_status("ReplicaSet"), SCALE),
    ),
    ResourceType(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        short_names=("ds",),
        categories=("all",),
        subresources=(_status("DaemonSet"),),
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        categories=("all",),
        subresources=(_status("HorizontalPodAutoscaler"),),
    ),
    ResourceType(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        categories=("all",),
        subresources=(_status("HorizontalPodAutoscaler"),),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        short_names=("ing",),
        subresources=(_status("Ingress"),),
    ),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    ResourceType("batch", "v1", "Job", "jobs", categories=("all",), subresources=(_status("Job"),)),
    ResourceType(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        short_names=("cj",),
        categories=("all",),
        subresources=(_status("CronJob"),),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=(_status("CustomResourceDefinition"),),
    ),
    _crd(
        "serving.kserve.io",
        "v1beta1",
        "InferenceService",
        "inferenceservices",
        short_names=("isvc",),
    ),
    _crd("serving.kserve.io", "v1alpha1", "ServingRuntime", "servingruntimes"),
    _crd(
        "serving.kserve.io",
        "v1alpha1",
        "ClusterServingRuntime",
        "clusterservingruntimes",
        namespaced=False,
    ),
    _crd("serving.kserve.io", "v1alpha1", "InferenceGraph", "inferencegraphs", short_names=("ig",)),
    _crd("serving.kserve.io", "v1alpha1", "TrainedModel", "trainedmodels", short_names=("tm",)),
    _crd(
        "machinelearning.seldon.io",
        "v1",
        "SeldonDeployment",
        "seldondeployments",
        short_names=("sdep",),
    ),
    _crd("mlops.seldon.io", "v1alpha1", "Model", "models", short_names=("mlm",)),
)

# The version a group's discovery prefers when it serves several; else its first.
PREFERRED_VERSIONS: dict[str, str] = {"autoscaling": "v2", "serving.kserve.io": "v1beta1"}
