"""The model a serving resource runs, read from its kind or from auditor annotations."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.model import ModelRef
from auditor.serving import KSERVE_FRAMEWORKS, model_ref

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
ISVC_API = "serving.kserve.io/v1beta1"


def isvc(predictor: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "m", "namespace": "ml"}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": ISVC_API,
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


def deployment(annotations: dict[str, str], on_template: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "d", "namespace": "ml"}
    template: dict[str, Any] = {"spec": {"containers": [{"name": "s", "image": "s:1"}]}}
    if on_template:
        template["metadata"] = {"annotations": annotations}
    else:
        meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"template": template},
    }


CASES: list[tuple[str, dict[str, Any], ModelRef | None]] = [
    (
        "kserve model with modelFormat",
        isvc(
            {
                "model": {
                    "modelFormat": {"name": "sklearn", "version": "1.3"},
                    "storageUri": "gs://b/m",
                }
            }
        ),
        ModelRef(uri="gs://b/m", digest=None, name="sklearn", version="1.3"),
    ),
    (
        "kserve oci uri pinned by digest",
        isvc({"model": {"storageUri": f"oci://r.example.com/models/m@{DIGEST}"}}),
        ModelRef(uri=f"oci://r.example.com/models/m@{DIGEST}", digest=DIGEST),
    ),
    *[
        (
            f"kserve {framework} predictor",
            isvc({framework: {"storageUri": f"s3://b/{framework}"}}),
            ModelRef(uri=f"s3://b/{framework}", digest=None),
        )
        for framework in KSERVE_FRAMEWORKS
    ],
    (
        "kserve predictor storageUri shorthand",
        isvc({"storageUri": "pvc://models/m", "containers": [{"name": "kserve-container"}]}),
        ModelRef(uri="pvc://models/m", digest=None),
    ),
    (
        "kserve with digest annotation",
        isvc({"model": {"storageUri": "gs://b/m"}}, {"auditor.gitops.ml/model-digest": DIGEST}),
        ModelRef(uri="gs://b/m", digest=DIGEST),
    ),
    (
        "a digest in the uri wins over the annotation",
        isvc(
            {"model": {"storageUri": f"oci://r/m@{DIGEST}"}},
            {"auditor.gitops.ml/model-digest": "sha256:" + "f" * 64},
        ),
        ModelRef(uri=f"oci://r/m@{DIGEST}", digest=DIGEST),
    ),
    (
        "malformed digest annotation is no digest",
        isvc(
            {"model": {"storageUri": "gs://b/m"}}, {"auditor.gitops.ml/model-digest": "sha256:abc"}
        ),
        ModelRef(uri="gs://b/m", digest=None),
    ),
    (
        "uppercase hex is malformed",
        isvc({"model": {"storageUri": "oci://r/m@sha256:" + HEX.upper()}}),
        ModelRef(uri="oci://r/m@sha256:" + HEX.upper(), digest=None),
    ),
    (
        "name and version annotations win over modelFormat",
        isvc(
            {
                "model": {
                    "modelFormat": {"name": "sklearn", "version": "1"},
                    "storageUri": "gs://b/m",
                }
            },
            {"auditor.gitops.ml/model-name": "fraud", "auditor.gitops.ml/model-version": "3.2"},
        ),
        ModelRef(uri="gs://b/m", digest=None, name="fraud", version="3.2"),
    ),
    (
        "seldon v1: first predictor graph modelUri",
        {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": {"name": "s"},
            "spec": {
                "predictors": [
                    {"graph": {"name": "router"}},
                    {"graph": {"modelUri": "gs://b/first"}},
                    {"graph": {"modelUri": "gs://b/second"}},
                ]
            },
        },
        ModelRef(uri="gs://b/first", digest=None),
    ),
    (
        "seldon v2 Model storageUri",
        {
            "apiVersion": "mlops.seldon.io/v1alpha1",
            "kind": "Model",
            "metadata": {"name": "s"},
            "spec": {"storageUri": f"gs://b/m@{DIGEST}"},
        },
        ModelRef(uri=f"gs://b/m@{DIGEST}", digest=DIGEST),
    ),
    (
        "annotation on any object",
        deployment(
            {"auditor.gitops.ml/model-uri": "s3://b/m", "auditor.gitops.ml/model-version": "7"}
        ),
        ModelRef(uri="s3://b/m", digest=None, version="7"),
    ),
    (
        "annotation on the pod template",
        deployment(
            {"auditor.gitops.ml/model-uri": "s3://b/m", "auditor.gitops.ml/model-digest": DIGEST},
            on_template=True,
        ),
        ModelRef(uri="s3://b/m", digest=DIGEST),
    ),
    ("a deployment without model annotations", deployment({"team": "x"}), None),
    (
        "a kserve object that is not an InferenceService",
        {**isvc({}), "kind": "ServingRuntime"},
        None,
    ),
    (
        "an InferenceService of another group",
        {**isvc({"storageUri": "gs://x"}), "apiVersion": "v1"},
        None,
    ),
    ("garbage spec", {"apiVersion": ISVC_API, "kind": "InferenceService", "spec": "oops"}, None),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(b, e) for _, b, e in CASES], ids=[c[0] for c in CASES]
)
def test_model_ref(body: dict[str, Any], expected: ModelRef | None) -> None:
    assert model_ref(body) == expected


def test_served_models_read_each_side_once_and_name_the_judged_model() -> None:
    from auditor.model import Resource, ResourceRef
    from auditor.serving import served_models

    def isvc(uri: str, side: str) -> Resource:
        body = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "scorer", "namespace": "ml"},
            "spec": {"predictor": {"model": {"storageUri": uri}}},
        }
        ref = ResourceRef("prod", body["apiVersion"], "InferenceService", "ml", "scorer")
        return Resource(ref=ref, body=body, side=side, origin="x")  # type: ignore[arg-type]

    served = served_models([isvc("gs://m/v3", "desired")], [isvc("gs://m/v4", "live")])
    (only,) = served.values()
    assert only.declared is not None and only.declared.uri == "gs://m/v3"
    assert only.live_model is not None and only.live_model.uri == "gs://m/v4"
    # a policy judges the live object, so its input names the model that runs
    assert only.model == only.live_model and only.subject.side == "live"
    assert only.serves_a_model
