"""Generates the drift benchmark: a Git repo of N serving resources and a live snapshot.

Resources come in apps of four (InferenceService, Deployment, Service, ConfigMap), spread
over namespaces, one multi-document file per app. The live side carries what a real API
server adds (defaults, status, managedFields) and `drift_percent` of the objects drift.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import yaml

APPLY_TIME = "2026-11-18T09:00:00Z"


def _isvc(app: str, ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": app,
            "namespace": ns,
            "labels": {"app": app, "team": f"t{i % 17}"},
            "annotations": {"auditor.gitops.ml/model-uri": f"gs://models/{app}/v{i % 5}"},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 4 + i % 3,
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"gs://models/{app}/v{i % 5}",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "2Gi"},
                    },
                },
            }
        },
    }


def _deployment(app: str, ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{app}-server", "namespace": ns, "labels": {"app": app}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": f"registry.acme.io/serving/{app}:1.{i % 9}.0",
                            "args": ["--port", "8080", "--workers", str(1 + i % 4)],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [
                                {"name": "MODEL_NAME", "value": app},
                                {"name": "LOG_LEVEL", "value": "info"},
                            ],
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "512Mi"},
                                "limits": {"cpu": "1000m", "memory": "1Gi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def _service(app: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{app}-server", "namespace": ns, "labels": {"app": app}},
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def _configmap(app: str, ns: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{app}-config", "namespace": ns},
        "data": {"threshold": f"0.{50 + i % 49}", "features": "amount,merchant,velocity_1h"},
    }


def _fields(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    if (
        isinstance(value, list)
        and value
        and all(isinstance(x, dict) and "name" in x for x in value)
    ):
        return {"k:" + json.dumps({"name": x["name"]}): {".": {}, **_fields(x)} for x in value}
    return {}


def _live(obj: dict[str, Any], n: int) -> dict[str, Any]:
    live = copy.deepcopy(obj)
    md = live["metadata"]
    spec_fields = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    md.update(
        {
            "uid": f"00000000-0000-4000-8000-{n:012d}",
            "resourceVersion": str(100000 + n),
            "creationTimestamp": "2026-10-01T00:00:00Z",
            "generation": 2,
            "managedFields": [
                {
                    "apiVersion": obj["apiVersion"],
                    "fieldsType": "FieldsV1",
                    "fieldsV1": _fields(spec_fields),
                    "manager": "argocd-controller",
                    "operation": "Apply",
                    "time": APPLY_TIME,
                }
            ],
        }
    )
    kind = obj["kind"]
    if kind == "Deployment":
        spec = live["spec"]
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
        pod = spec["template"]["spec"]
        pod.update(
            {
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            }
        )
        c = pod["containers"][0]
        c.update(
            {
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        )
        c["ports"][0]["protocol"] = "TCP"
        c["resources"]["limits"]["cpu"] = "1"
        live["status"] = {
            "replicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "observedGeneration": 2,
            "conditions": [{"type": "Available", "status": "True"}],
        }
    elif kind == "Service":
        live["spec"].update(
            {
                "clusterIP": f"10.96.{n // 250 % 250}.{n % 250}",
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            }
        )
        live["spec"]["ports"][0]["protocol"] = "TCP"
    elif kind == "InferenceService":
        live["spec"]["predictor"]["model"]["protocolVersion"] = "v1"
        md.setdefault("annotations", {})["serving.kserve.io/deploymentMode"] = "Serverless"
        live["status"] = {
            "url": f"http://{md['name']}.{md['namespace']}.example.com",
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    return live


def _drift(live: dict[str, Any], rng: random.Random) -> None:
    kind = live["kind"]
    if kind == "InferenceService":
        live["spec"]["predictor"]["model"]["storageUri"] += "-hotfix"
    elif kind == "Deployment":
        live["spec"]["template"]["spec"]["containers"][0]["image"] += "-patched"
    elif kind == "Service":
        live["spec"]["ports"][0]["targetPort"] = 9090
    else:
        live["data"]["threshold"] = "0.01"
    live["metadata"]["managedFields"].append(
        {
            "apiVersion": live["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": f"2026-11-2{rng.randint(0, 2)}T0{rng.randint(0, 9)}:13:00Z",
        }
    )


def generate(
    root: Path,
    resources: int,
    drift_percent: float = 1.0,
    seed: int = 7,
    *,
    yaml_snapshot: bool = True,
) -> dict[str, Any]:
    """Writes root/repo (a committed Git repo) and root/live.json (+ live.yaml). Returns the
    counts and the planted drifts as [kind, namespace, name], sorted."""
    rng = random.Random(seed)
    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    apps = resources // 4
    live_items: list[dict[str, Any]] = []
    for i in range(apps):
        ns = f"ml-{i % 20:02d}"
        app = f"model-{i:05d}"
        objs = [
            _isvc(app, ns, i),
            _deployment(app, ns, i),
            _service(app, ns),
            _configmap(app, ns, i),
        ]
        folder = repo / "apps" / ns
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{app}.yaml", "w") as handle:
            yaml.safe_dump_all(objs, handle, sort_keys=False)
        live_items.extend(_live(o, len(live_items)) for o in objs)
    drifted = rng.sample(range(len(live_items)), int(len(live_items) * drift_percent / 100))
    for index in drifted:
        _drift(live_items[index], rng)
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench manifests"], check=True)
    snapshot = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": live_items,
    }
    (root / "live.json").write_text(json.dumps(snapshot, indent=4))
    if yaml_snapshot:
        with open(root / "live.yaml", "w") as handle:
            yaml.dump(snapshot, handle, Dumper=yaml.CSafeDumper, sort_keys=False)
    planted = sorted(
        [
            live_items[i]["kind"],
            live_items[i]["metadata"]["namespace"],
            live_items[i]["metadata"]["name"],
        ]
        for i in drifted
    )
    return {"resources": len(live_items), "drifted": len(drifted), "planted": planted}
