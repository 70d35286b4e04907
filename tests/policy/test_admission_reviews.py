"""`auditor policy eval` reads AdmissionReview documents: the operation, userInfo and
oldObject reach Gatekeeper's `input.review` and the DESIGN input's `request`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_cli
from tests.policy.gatekeeper.builders import constraint_yaml, template_yaml

IMMUTABLE_MODEL_REGO = """
package k8simmutablemodel

violation[{"msg": msg}] {
  input.review.operation == "UPDATE"
  old := input.review.oldObject.spec.predictor.model.storageUri
  new := input.review.object.spec.predictor.model.storageUri
  old != new
  msg := sprintf("storageUri is immutable: %v -> %v (by %v)", [old, new, input.review.userInfo.username])
}
"""

NO_DELETE_REGO = """\
package acme.no_delete

import rego.v1

deny contains msg if {
  input.request.operation == "DELETE"
  msg := sprintf("%s may not be deleted", [input.resource.metadata.name])
}
"""


def isvc(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "fraud", "namespace": "ml"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    }


def review(operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {
                "group": "serving.kserve.io",
                "version": "v1beta1",
                "kind": "InferenceService",
            },
            "operation": operation,
            "userInfo": {"username": "alice@acme.io"},
            "object": obj,
            "oldObject": old,
        },
    }


def policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    root.mkdir()
    (root / "template.yaml").write_text(template_yaml("K8sImmutableModel", IMMUTABLE_MODEL_REGO))
    (root / "constraint.yaml").write_text(
        constraint_yaml(
            "K8sImmutableModel",
            "immutable-model",
            {"match": {"kinds": [{"apiGroups": ["serving.kserve.io"], "kinds": ["*"]}]}},
        )
    )
    (root / "no_delete.rego").write_text(NO_DELETE_REGO)
    return root


def evaluate(tmp_path: Path, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "review.yaml"
    path.write_text(yaml.safe_dump(document))
    result = run_cli("policy", "eval", "--policy", str(policies(tmp_path)), str(path), "-o", "json")
    return result.code, json.loads(result.out)


def messages(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {e["policy"]: e["messages"] for e in doc["evaluations"] if e["messages"]}


def test_an_update_review_carries_the_old_object_and_user(tmp_path: Path) -> None:
    code, doc = evaluate(tmp_path, review("UPDATE", isvc("gs://m/v4"), isvc("gs://m/v3")))
    assert code == 1
    assert messages(doc) == {
        "K8sImmutableModel/immutable-model": [
            "storageUri is immutable: gs://m/v3 -> gs://m/v4 (by alice@acme.io)"
        ]
    }


def test_a_create_review_has_no_old_object_to_compare(tmp_path: Path) -> None:
    code, doc = evaluate(tmp_path, review("CREATE", isvc("gs://m/v4"), None))
    assert code == 0
    assert messages(doc) == {}


def test_a_delete_review_judges_the_old_object(tmp_path: Path) -> None:
    code, doc = evaluate(tmp_path, review("DELETE", None, isvc("gs://m/v3")))
    assert code == 1
    assert messages(doc) == {"acme.no_delete": ["fraud may not be deleted"]}


def test_a_plain_object_has_a_null_request(tmp_path: Path) -> None:
    code, doc = evaluate(tmp_path, isvc("gs://m/v4"))
    assert code == 0
    assert {e["result"] for e in doc["evaluations"]} == {"pass"}
