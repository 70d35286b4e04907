"""Realistic desired manifests and the live objects a cluster makes of them.

Live objects carry what a real API server, KServe's webhook and controllers add: server
defaults, canonical quantities, metadata, managedFields and status. Tests start from these
and change only what they are about.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from auditor.config import DriftSettings
from auditor.drift import compute_drift
from auditor.model import DriftResult, Resource
from auditor.objects import to_resource
from auditor.redact import LAST_APPLIED
from auditor.scope import Scope

CLUSTER = "prod-eu"
COMMIT = "3f1c2a9"
APPLIED_AT = "2026-11-19T18:00:00Z"
EDITED_AT = "2026-11-20T02:13:00Z"


def desired(body: dict[str, Any], path: str = "apps/ml/manifests.yaml") -> Resource:
    return to_resource(
        copy.deepcopy(body),
        source=path,
        line=1,
        side="desired",
        cluster=CLUSTER,
        origin=f"{path}@{COMMIT}",
        namespace=body["metadata"].get("namespace", "") if _namespaced(body) else "",
    )


def live(body: dict[str, Any]) -> Resource:
    return to_resource(
        copy.deepcopy(body), source="cluster", line=1, side="live", cluster=CLUSTER, origin=CLUSTER
    )


def _namespaced(body: dict[str, Any]) -> bool:
    return body["kind"] not in ("Namespace", "ClusterRole")


def run(
    want: list[dict[str, Any]],
    have: list[dict[str, Any]],
    settings: DriftSettings | None = None,
    scope: Scope | None = None,
) -> DriftResult:
    """compute_drift over plain bodies, scope derived from Git as a run does by default."""
    d = [desired(b) for b in want]
    lv = [live(b) for b in have]
    return compute_drift(
        d, lv, scope=scope or Scope.from_desired(d), settings=settings or DriftSettings()
    )


def server_metadata(body: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    """The metadata the API server adds to every object."""
    meta = body["metadata"]
    meta.pop("creationTimestamp", None)
    meta.update(
        {
            "uid": "6c1f4f5e-9a4b-4d1e-9a55-0c2a0d7f1b11",
            "resourceVersion": "918273",
            "generation": generation,
            "creationTimestamp": "2026-10-01T09:00:00Z",
        }
    )
    return body


def fields_v1(value: Any) -> dict[str, Any]:
    """The field set server-side apply records for an applied manifest (test helper)."""
    out: dict[str, Any] = {}
    if not isinstance(value, dict):
        return out
    for key, sub in value.items():
        if sub is None or key in ("apiVersion", "kind", "status"):
            continue
        token = f"f:{key}"
        if isinstance(sub, dict):
            out[token] = {".": {}, **fields_v1(sub)} if sub else {}
        elif isinstance(sub, list) and sub and all(isinstance(e, dict) for e in sub):
            keys = _list_keys(key, sub)
            if keys is None:
                out[token] = {}
                continue
            items: dict[str, Any] = {".": {}}
            for element in sub:
                k = {f: element.get(f, "TCP" if f == "protocol" else None) for f in keys}
                token_k = "k:" + json.dumps(k, sort_keys=True, separators=(",", ":"))
                items[token_k] = {".": {}, **fields_v1(element)}
            out[token] = items
        else:
            out[token] = {}
    return out


def _list_keys(field: str, elements: list[dict[str, Any]]) -> tuple[str, ...] | None:
    if field in ("containers", "initContainers", "env", "volumes", "imagePullSecrets"):
        return ("name",)
    if field == "volumeMounts":
        return ("mountPath",)
    if field == "ports" and "containerPort" in elements[0]:
        return ("containerPort", "protocol")
    if field == "ports":
        return ("port", "protocol")
    return None


def managed(
    manager: str,
    fields: dict[str, Any],
    *,
    operation: str = "Apply",
    time: str = APPLIED_AT,
    subresource: str | None = None,
) -> dict[str, Any]:
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def applied_by_argocd(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """Adds the managedFields of Argo CD applying `want` server-side, plus a status writer."""
    have["metadata"]["managedFields"] = [
        managed("argocd-controller", fields_v1(want)),
        managed(
            "kube-controller-manager",
            {"f:status": {".": {}}},
            operation="Update",
            subresource="status",
        ),
    ]
    return have


def last_applied(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """Adds the annotation `kubectl apply` (client-side) writes."""
    text = json.dumps(want, sort_keys=True, separators=(",", ":"))
    have["metadata"].setdefault("annotations", {})[LAST_APPLIED] = text
    have["metadata"]["managedFields"] = [
        managed("kubectl-client-side-apply", fields_v1(have), operation="Update", time=APPLIED_AT)
    ]
    return have


# --------------------------------------------------------------------------------------
# Deployment


def deployment_desired() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "fraud-api",
            "namespace": "ml",
            "labels": {"app": "fraud-api", "team": "risk"},
            "creationTimestamp": None,
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "fraud-api"}},
            "template": {
                "metadata": {"labels": {"app": "fraud-api"}, "creationTimestamp": None},
                "spec": {
                    "serviceAccountName": "fraud-api",
                    "containers": [
                        {
                            "name": "api",
                            "image": "ghcr.io/acme/fraud-api:1.4.2",
                            "args": ["--port", "8080", "--workers", "4"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "MODEL_NAME", "value": "fraud"},
                            ],
                            "resources": {
                                "requests": {"cpu": "0.5", "memory": "1024Mi"},
                                "limits": {"cpu": 1, "memory": "1Gi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/fraud"}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "fraud-config"}}],
                },
            },
        },
    }


def deployment_live(want: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the API server stores for `deployment_desired()`: defaults, canonical quantities."""
    want = want or deployment_desired()
    body = copy.deepcopy(want)
    server_metadata(body)
    body["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "7"}
    spec = body["spec"]
    spec.update(
        {
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        }
    )
    template = spec["template"]
    template["metadata"].pop("creationTimestamp", None)
    pod = template["spec"]
    pod.update(
        {
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
            "serviceAccount": pod.get("serviceAccountName", "default"),
        }
    )
    for container in pod["containers"]:
        container.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        resources = container.get("resources", {})
        for group in ("requests", "limits"):
            if group in resources:
                resources[group] = {k: _canonical(v) for k, v in resources[group].items()}
        probe = container.get("readinessProbe")
        if probe:
            probe["httpGet"].setdefault("scheme", "HTTP")
            probe.update(
                {
                    "failureThreshold": 3,
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "timeoutSeconds": 1,
                }
            )
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            volume["configMap"].setdefault("defaultMode", 420)
    body["status"] = {
        "availableReplicas": spec["replicas"],
        "observedGeneration": 3,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ],
    }
    return applied_by_argocd(want, body)


_CANONICAL = {"0.5": "500m", "1024Mi": "1Gi", 1: "1", "1000m": "1", "2048Mi": "2Gi"}


def _canonical(value: Any) -> Any:
    """The API server rewrites quantities in canonical form ("0.5" -> "500m")."""
    return _CANONICAL.get(value, value if isinstance(value, str) else str(value))


# --------------------------------------------------------------------------------------
# Service


def service_desired() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "fraud-api", "namespace": "ml", "labels": {"app": "fraud-api"}},
        "spec": {
            "selector": {"app": "fraud-api"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "8080"},
                {"name": "grpc", "port": 9000, "targetPort": 9000},
            ],
        },
    }


def service_live(want: dict[str, Any] | None = None) -> dict[str, Any]:
    want = want or service_desired()
    body = copy.deepcopy(want)
    server_metadata(body, generation=1)
    spec = body["spec"]
    spec.update(
        {
            "clusterIP": "10.96.12.34",
            "clusterIPs": ["10.96.12.34"],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None",
            "type": "ClusterIP",
        }
    )
    for port in spec["ports"]:
        port["protocol"] = "TCP"
        port["targetPort"] = int(port["targetPort"])
    body["status"] = {"loadBalancer": {}}
    return applied_by_argocd(want, body)


# --------------------------------------------------------------------------------------
# ConfigMap and Secret


def configmap_desired() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "fraud-config", "namespace": "ml"},
        "data": {"threshold": "0.92", "features.yaml": "amount: float\ncountry: str\n"},
    }


def configmap_live(want: dict[str, Any] | None = None) -> dict[str, Any]:
    want = want or configmap_desired()
    return applied_by_argocd(want, server_metadata(copy.deepcopy(want), generation=0))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --------------------------------------------------------------------------------------
# KServe InferenceService


def isvc_desired() -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "fraud-scorer",
            "namespace": "ml",
            "annotations": {
                "auditor.gitops.ml/model-digest": "sha256:" + "ab" * 32,
                "autoscaling.knative.dev/target": "10",
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 4,
                "serviceAccountName": "fraud-scorer",
                "model": {
                    "modelFormat": {"name": "sklearn", "version": "1"},
                    "runtime": "kserve-sklearnserver",
                    "storageUri": "gs://models/fraud/v3",
                    "resources": {"requests": {"cpu": "1000m", "memory": "2048Mi"}},
                },
            },
            "transformer": {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "ghcr.io/acme/fraud-transformer:2.0.1",
                        "args": ["--model_name", "fraud-scorer"],
                    }
                ]
            },
        },
    }


def isvc_live(want: dict[str, Any] | None = None) -> dict[str, Any]:
    """What KServe's webhook and controller make of `isvc_desired()`."""
    want = want or isvc_desired()
    body = copy.deepcopy(want)
    server_metadata(body, generation=2)
    body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    body["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    model = body["spec"]["predictor"]["model"]
    model["name"] = "kserve-container"
    model["protocolVersion"] = "v1"
    model["resources"] = {
        "requests": {k: _canonical(v) for k, v in model["resources"]["requests"].items()},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    for container in body["spec"]["transformer"]["containers"]:
        container["resources"] = {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        }
    body["status"] = {
        "url": "https://fraud-scorer.ml.example.com",
        "observedGeneration": 2,
        "conditions": [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "components": {"predictor": {"latestReadyRevision": "fraud-scorer-predictor-00002"}},
        "modelStatus": {"states": {"activeModelState": "Loaded"}},
    }
    return applied_by_argocd(want, body)
