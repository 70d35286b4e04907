"""Git's object as the cluster stores it: KServe's webhook rewrites, other API versions."""

from __future__ import annotations

import copy
from typing import Any

from auditor.drift.kserve import admitted_view
from auditor.drift.versions import served_view

KSERVE = "serving.kserve.io"


def isvc(predictor: dict[str, Any], **components: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{KSERVE}/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": {"predictor": predictor, **components},
    }


def test_framework_predictor_becomes_model_when_live_shows_it() -> None:
    want = isvc({"minReplicas": 1, "tensorflow": {"storageUri": "gs://m", "runtimeVersion": "2.6"}})
    have = isvc({"minReplicas": 1, "model": {"modelFormat": {"name": "tensorflow"}, "name": ""}})
    before = copy.deepcopy(want)
    view = admitted_view(KSERVE, "InferenceService", want, have)
    assert view["spec"]["predictor"] == {
        "minReplicas": 1,
        "model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": "gs://m",
            "runtimeVersion": "2.6",
        },
    }
    assert want == before  # inputs are never mutated


def test_framework_key_kept_live_is_left_alone() -> None:
    # ModelMesh, or KServe before the model schema: no rewrite happened
    want = isvc({"sklearn": {"storageUri": "gs://m"}})
    have = isvc({"sklearn": {"storageUri": "gs://m", "name": "kserve-container"}})
    assert admitted_view(KSERVE, "InferenceService", want, have) is want


def test_other_kinds_are_left_alone() -> None:
    want = isvc({"sklearn": {"storageUri": "gs://m"}})
    have = isvc({"model": {"modelFormat": {"name": "sklearn"}}})
    assert admitted_view(KSERVE, "TrainedModel", want, have) is want


def test_first_container_renamed_only_when_live_shows_it() -> None:
    containers = [{"name": "kfserving-container", "image": "t:1"}, {"name": "agent"}]
    want = isvc({"model": {}}, transformer={"containers": containers})
    renamed = isvc(
        {"model": {}},
        transformer={"containers": [{"name": "kserve-container", "image": "t:1"}]},
    )
    view = admitted_view(KSERVE, "InferenceService", want, renamed)
    assert [c["name"] for c in view["spec"]["transformer"]["containers"]] == [
        "kserve-container",
        "agent",
    ]
    kept = isvc({"model": {}}, transformer={"containers": containers})
    assert admitted_view(KSERVE, "InferenceService", want, kept) is want


def test_unnamed_custom_predictor_container_gets_the_webhooks_name() -> None:
    want = isvc({"containers": [{"image": "codait/max-object-detector"}]})
    have = isvc({"containers": [{"name": "kserve-container", "image": "other"}]})
    view = admitted_view(KSERVE, "InferenceService", want, have)
    assert view["spec"]["predictor"]["containers"] == [
        {"image": "codait/max-object-detector", "name": "kserve-container"}
    ]


def hpa(api_version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "HorizontalPodAutoscaler", "spec": spec}


def test_hpa_v1_target_becomes_a_v2_cpu_metric() -> None:
    ref = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
    want = hpa("autoscaling/v1", {"scaleTargetRef": ref, "maxReplicas": 4})
    view = served_view(want, hpa("autoscaling/v2", {}))
    assert view["apiVersion"] == "autoscaling/v2"
    assert view["spec"] == {
        "scaleTargetRef": ref,
        "maxReplicas": 4,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ],
    }


def test_same_version_is_left_alone() -> None:
    want = hpa("autoscaling/v1", {"targetCPUUtilizationPercentage": 50})
    assert served_view(want, hpa("autoscaling/v1", {})) is want
