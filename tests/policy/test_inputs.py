"""The input document: the DESIGN shape, published as policies/input.schema.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.model import Finding, ModelRef, Resource
from auditor.policy.inputs import build_input, object_input
from tests.policy.rego import ISVC, resource

POLICIES = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((POLICIES / "input.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _live(body: dict[str, Any]) -> Resource:
    live = copy.deepcopy(body)
    live["status"] = {"url": "http://fraud-scorer.ml"}
    r = resource(live, cluster="prod-eu")
    return Resource(ref=r.ref, body=live, side="live", origin="prod-eu")


def _audit_input() -> dict[str, Any]:
    desired = resource(ISVC, cluster="prod-eu")
    live = _live(ISVC)
    drift = Finding(
        category="drift",
        check="drift.changed",
        severity="critical",
        ref=desired.ref,
        path="/spec/predictor/model/storageUri",
        message="InferenceService ml/fraud-scorer: storageUri differs",
        expected="gs://models/fraud/v3",
        actual="gs://models/fraud/v4",
        drift_class="model",
    )
    return build_input(
        resource=None,
        desired=desired,
        live=live,
        drift=[drift],
        git={"repo": "https://git.example.com/ml.git", "commit": "a" * 40, "path": "ml/isvc.yaml"},
        cluster="prod-eu",
        context="audit",
        model=ModelRef(uri="gs://models/fraud/v3", digest=None, name="fraud", version="3"),
        provenance={"signature": {"verified": True, "signers": [{"authority": "release-key"}]}},
    )


def test_audit_input_has_the_design_shape_and_validates(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = _audit_input()
    validator.validate(doc)
    assert list(doc) == [
        "resource",
        "desired",
        "live",
        "drift",
        "model",
        "provenance",
        "git",
        "cluster",
        "context",
        "request",  # the admission request; null at audit time
    ]
    assert doc["request"] is None
    assert doc["resource"]["status"] == {"url": "http://fraud-scorer.ml"}  # live wins
    assert "status" not in doc["desired"]
    assert doc["drift"][0]["check"] == "drift.changed"
    assert doc["drift"][0]["class"] == "model"
    assert doc["model"] == {
        "uri": "gs://models/fraud/v3",
        "digest": None,
        "name": "fraud",
        "version": "3",
    }
    assert doc["git"]["commit"] == "a" * 40
    assert doc["cluster"] == {"name": "prod-eu"}
    # given keys kept, missing ones filled
    assert doc["provenance"] == {
        "signature": {"verified": True, "signers": [{"authority": "release-key"}]},
        "datasets": [],
        "evaluation": {},
    }
    json.dumps(doc)  # plain JSON all the way down


def test_resource_is_desired_when_nothing_is_live(
    validator: jsonschema.Draft202012Validator,
) -> None:
    desired = resource(ISVC)
    doc = build_input(
        resource=None,
        desired=desired,
        live=None,
        drift=(),
        git=None,
        cluster="c",
        context="audit",
        model=None,
        provenance=None,
    )
    validator.validate(doc)
    assert doc["resource"] == ISVC and doc["live"] is None and doc["model"] is None


def test_provenance_is_null_safe_and_unverified_by_default(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = object_input(resource(ISVC))
    validator.validate(doc)
    assert doc["provenance"] == {
        "signature": {"verified": False, "signers": []},
        "datasets": [],
        "evaluation": {},
    }


def test_object_input_is_the_admission_form(validator: jsonschema.Draft202012Validator) -> None:
    doc = object_input(resource(ISVC))
    validator.validate(doc)
    assert doc["resource"] == doc["desired"] == ISVC
    assert (doc["live"], doc["drift"], doc["git"], doc["context"]) == (None, [], None, "admission")
    assert doc["model"] == {
        "uri": "gs://models/fraud/v3",
        "digest": None,
        "name": "sklearn",
        "version": "1",
    }


def test_the_published_example_validates(validator: jsonschema.Draft202012Validator) -> None:
    example = json.loads((POLICIES / "examples" / "input.json").read_text())
    validator.validate(example)
    assert example["context"] == "audit"


def test_the_schema_rejects_a_malformed_digest(validator: jsonschema.Draft202012Validator) -> None:
    doc = object_input(resource(ISVC))
    doc["model"]["digest"] = "sha256:XYZ"
    assert not validator.is_valid(doc)
