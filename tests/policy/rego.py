"""Writing policies, objects and inputs for the policy tests: real files in a tmp directory."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from auditor.model import Resource, ResourceRef
from auditor.policy.inputs import object_input

ISVC: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "fraud-scorer", "namespace": "ml", "labels": {"team": "risk"}},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn", "version": "1"},
                "storageUri": "gs://models/fraud/v3",
            }
        }
    },
}


def write(directory: Path, name: str, text: str) -> Path:
    """Writes a file (dedented, parents created) and returns its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def write_objects(directory: Path, name: str, *objects: dict[str, Any]) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".json"):
        path.write_text(json.dumps(objects[0] if len(objects) == 1 else list(objects)))
    else:
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def resource(body: dict[str, Any], cluster: str = "") -> Resource:
    meta = body["metadata"]
    ref = ResourceRef(
        cluster=cluster,
        api_version=body["apiVersion"],
        kind=body["kind"],
        namespace=meta.get("namespace", ""),
        name=meta["name"],
    )
    return Resource(ref=ref, body=body, side="desired", origin="test.yaml")


def inputs(*bodies: dict[str, Any]) -> list[tuple[ResourceRef, dict[str, Any]]]:
    """(ref, admission input) pairs, as `auditor policy eval` builds them."""
    out = []
    for body in bodies:
        r = resource(body)
        out.append((r.ref, object_input(r)))
    return out
