"""Classification: each row of the table, and each drift class end to end on a KServe object."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.drift.classify import RULES, classify_kind, classify_path
from auditor.drift.pointer import ElementStep, Step, parse_pointer
from tests.drift.builders import isvc_desired, isvc_live, run

KSERVE = "serving.kserve.io"
SELDON = "machinelearning.seldon.io"


def steps_for(pointer: str, elements: dict[int, dict[str, Any]] | None = None) -> tuple[Step, ...]:
    """Pointer tokens as steps; numeric tokens become list elements (with `elements[i]`)."""
    out: list[Step] = []
    for i, token in enumerate(parse_pointer(pointer)):
        if token.isdigit():
            element = (elements or {}).get(i, {})
            out.append(ElementStep(token, element, element, ("name",) if element else ()))
        else:
            out.append(token)
    return tuple(out)


CASES: list[tuple[str, str, str, str]] = [
    # model
    (KSERVE, "InferenceService", "/spec/predictor/model/storageUri", "model"),
    (KSERVE, "InferenceService", "/spec/transformer/model/storage/path", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/model/modelFormat/version", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/model/modelFormat", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/sklearn/storageUri", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/tensorflow/storageUri", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/huggingface/storageUri", "model"),
    (KSERVE, "InferenceService", "/spec/predictor/storageUri", "model"),
    (KSERVE, "InferenceService", "/spec/explainer/art/storageUri", "model"),
    (KSERVE, "TrainedModel", "/spec/model/storageUri", "model"),
    (KSERVE, "InferenceService", "/metadata/annotations/auditor.gitops.ml~1model-uri", "model"),
    ("apps", "Deployment", "/metadata/annotations/auditor.gitops.ml~1model-digest", "model"),
    (
        KSERVE,
        "InferenceService",
        "/metadata/annotations/serving.kserve.io~1storage-initializer-sourceuri",
        "model",
    ),
    (SELDON, "SeldonDeployment", "/spec/predictors/0/graph/modelUri", "model"),
    (SELDON, "SeldonDeployment", "/spec/predictors/0/graph/children/1/modelUri", "model"),
    ("mlops.seldon.io", "Model", "/spec/storageUri", "model"),
    # runtime
    ("apps", "Deployment", "/spec/template/spec/containers/0/image", "runtime"),
    ("apps", "StatefulSet", "/spec/template/spec/initContainers/0/command", "runtime"),
    ("apps", "Deployment", "/spec/template/spec/containers/0/args", "runtime"),
    ("apps", "Deployment", "/spec/template/spec/containers/1", "runtime"),
    (KSERVE, "InferenceService", "/spec/predictor/containers/0/image", "runtime"),
    (KSERVE, "InferenceService", "/spec/predictor/model/runtime", "runtime"),
    (KSERVE, "InferenceService", "/spec/predictor/model/runtimeVersion", "runtime"),
    (KSERVE, "InferenceService", "/spec/predictor/model/protocolVersion", "runtime"),
    (KSERVE, "InferenceService", "/spec/predictor/sklearn/image", "runtime"),
    (KSERVE, "ServingRuntime", "/spec/containers/0/image", "runtime"),
    (KSERVE, "ClusterServingRuntime", "/spec/supportedModelFormats/0/version", "runtime"),
    (SELDON, "SeldonDeployment", "/spec/predictors/0/graph/implementation", "runtime"),
    ("mlops.seldon.io", "Server", "/spec/serverConfig", "runtime"),
    # traffic
    (KSERVE, "InferenceService", "/spec/predictor/canaryTrafficPercent", "traffic"),
    (SELDON, "SeldonDeployment", "/spec/predictors/1/traffic", "traffic"),
    ("networking.istio.io", "VirtualService", "/spec/http/0/route/1/weight", "traffic"),
    ("serving.knative.dev", "Service", "/spec/traffic/0/percent", "traffic"),
    ("gateway.networking.k8s.io", "HTTPRoute", "/spec/rules/0/backendRefs/1/weight", "traffic"),
    ("mlops.seldon.io", "Experiment", "/spec/candidates/0/weight", "traffic"),
    # scale
    ("apps", "Deployment", "/spec/replicas", "scale"),
    (KSERVE, "InferenceService", "/spec/predictor/minReplicas", "scale"),
    (KSERVE, "InferenceService", "/spec/predictor/maxReplicas", "scale"),
    (KSERVE, "InferenceService", "/spec/predictor/scaleTarget", "scale"),
    (KSERVE, "InferenceService", "/spec/predictor/scaleMetric", "scale"),
    (KSERVE, "InferenceService", "/spec/predictor/autoScaling/metrics/0/type", "scale"),
    ("autoscaling", "HorizontalPodAutoscaler", "/spec/metrics/0/resource/target", "scale"),
    ("autoscaling", "HorizontalPodAutoscaler", "/spec/maxReplicas", "scale"),
    ("keda.sh", "ScaledObject", "/spec/triggers/0/metadata/threshold", "scale"),
    (KSERVE, "InferenceService", "/metadata/annotations/autoscaling.knative.dev~1target", "scale"),
    (SELDON, "SeldonDeployment", "/spec/predictors/0/replicas", "scale"),
    # config
    ("", "ConfigMap", "/data/replicas", "config"),
    ("", "Secret", "/data/image", "config"),
    ("apps", "Deployment", "/spec/template/spec/containers/0/env/0/value", "config"),
    (
        KSERVE,
        "InferenceService",
        "/metadata/annotations/serving.kserve.io~1deploymentMode",
        "config",
    ),
    ("", "Service", "/spec/ports/0/targetPort", "config"),
    ("networking.k8s.io", "NetworkPolicy", "/spec/ingress/0/ports/0/port", "config"),
]


@pytest.mark.parametrize(("group", "kind", "pointer", "expected"), CASES)
def test_classification_table(group: str, kind: str, pointer: str, expected: str) -> None:
    assert classify_path(group, kind, steps_for(pointer)) == expected


def test_every_rule_is_exercised_by_a_case() -> None:
    def first_rule(group: str, kind: str, pointer: str) -> int | None:
        steps = steps_for(pointer)
        tokens = parse_pointer(pointer)
        return next(
            (i for i, rule in enumerate(RULES) if rule.matches(group, kind, tokens, steps)), None
        )

    hit = {first_rule(g, k, p) for g, k, p, _ in CASES} | {first_rule_env()}
    assert set(range(len(RULES))) <= hit


def first_rule_env() -> int:
    steps = steps_for("/spec/template/spec/containers/0/env/2/value", {6: {"name": "STORAGE_URI"}})
    tokens = parse_pointer("/spec/template/spec/containers/0/env/2/value")
    return next(i for i, r in enumerate(RULES) if r.matches("apps", "Deployment", tokens, steps))


def test_env_storage_uri_is_model() -> None:
    pointer = "/spec/predictor/containers/0/env/2/value"
    assert (
        classify_path(KSERVE, "InferenceService", steps_for(pointer, {5: {"name": "STORAGE_URI"}}))
        == "model"
    )
    assert (
        classify_path(KSERVE, "InferenceService", steps_for(pointer, {5: {"name": "OTHER"}}))
        == "config"
    )


@pytest.mark.parametrize(
    ("group", "kind", "expected"),
    [
        (KSERVE, "InferenceService", "model"),
        (SELDON, "SeldonDeployment", "model"),
        ("mlops.seldon.io", "Model", "model"),
        ("apps", "Deployment", "config"),
        ("", "Secret", "config"),
    ],
)
def test_whole_objects_are_classified_by_kind(group: str, kind: str, expected: str) -> None:
    assert classify_kind(group, kind) == expected
    assert classify_path(group, kind, ()) == expected


# -- each class on a realistic InferenceService, with its default severity -----------------


def edit(path: list[str], value: Any) -> Any:
    have = isvc_live()
    node = have
    for token in path[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    node[path[-1]] = value
    return run([isvc_desired()], [have]).findings


@pytest.mark.parametrize(
    ("path", "value", "drift_class", "severity"),
    [
        (["spec", "predictor", "model", "storageUri"], "gs://models/fraud/v4", "model", "critical"),
        (["spec", "predictor", "model", "modelFormat", "version"], "2", "model", "critical"),
        (
            ["metadata", "annotations", "auditor.gitops.ml/model-digest"],
            "sha256:" + "cd" * 32,
            "model",
            "critical",
        ),
        (
            ["spec", "transformer", "containers", "0", "image"],
            "ghcr.io/acme/t:9",
            "runtime",
            "high",
        ),
        (["spec", "predictor", "model", "runtime"], "kserve-mlserver", "runtime", "high"),
        (["spec", "predictor", "canaryTrafficPercent"], 10, None, None),
        (["spec", "predictor", "maxReplicas"], 20, "scale", "medium"),
        (["metadata", "annotations", "autoscaling.knative.dev/target"], "50", "scale", "medium"),
        (["spec", "predictor", "serviceAccountName"], "default", "config", "medium"),
    ],
)
def test_each_class_on_an_inference_service(
    path: list[str], value: Any, drift_class: str | None, severity: str | None
) -> None:
    findings = edit(path, value)
    if drift_class is None:  # live-only field Git does not set: not drift
        assert findings == ()
        return
    [finding] = findings
    assert (finding.drift_class, finding.severity) == (drift_class, severity)


def test_canary_traffic_change_is_traffic() -> None:
    want, have = isvc_desired(), isvc_live()
    want["spec"]["predictor"]["canaryTrafficPercent"] = 10
    have["spec"]["predictor"]["canaryTrafficPercent"] = 50
    [finding] = run([want], [have]).findings
    assert (finding.drift_class, finding.severity) == ("traffic", "high")
