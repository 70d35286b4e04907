"""Small, realistic objects for tests that need a cluster's contents."""

from __future__ import annotations

import base64
from typing import Any


def configmap(name: str, namespace: str = "ml", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"model": name},
    }


def deployment(name: str, namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "server", "image": f"ghcr.io/acme/{name}:1.0"}]},
            },
        },
    }


def inference_service(name: str, namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"gs://acme-models/{name}/v3",
                }
            }
        },
    }


def secret(name: str, value: str, namespace: str = "ml") -> dict[str, Any]:
    encoded = base64.b64encode(value.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"token": encoded},
    }
