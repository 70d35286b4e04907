"""Git's InferenceService as KServe's mutating webhook stores it.

KServe's defaulter (pkg/apis/serving/v1beta1/inference_service_defaults.go) does not only
add defaults, it rewrites two things Git commonly says:
- a per-framework predictor (`sklearn:`, `pytorch:`, ...) becomes `model:` with
  `modelFormat.name` set to the framework, and the framework key is deleted;
- the first container of a custom predictor, transformer or explainer is renamed
  `kserve-container`.
Comparing Git's spelling with the stored one would report every such object as drifted
(Argo CD's server-side diff, which runs the webhook, reports nothing). So the desired body
is rewritten the same way, but only where the live object shows the webhook did it:
KServe versions differ (before 0.8 the framework key stayed) and ModelMesh skips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KSERVE = "serving.kserve.io"
CONTAINER_NAME = "kserve-container"  # constants.InferenceServiceContainerName
# The per-framework predictor keys and the model format name each becomes (constants.SupportedModel*).
FRAMEWORKS: tuple[str, ...] = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)
_COMPONENTS = ("predictor", "transformer", "explainer")


def admitted_view(
    group: str, kind: str, desired: Mapping[str, Any], live: Mapping[str, Any]
) -> Mapping[str, Any]:
    """`desired` as the webhook would have stored it; `desired` itself when nothing applies.

    Never mutates its inputs: changed maps are copied on the way down.
    """
    if group != KSERVE or kind != "InferenceService":
        return desired
    dspec, lspec = desired.get("spec"), live.get("spec")
    if not isinstance(dspec, Mapping) or not isinstance(lspec, Mapping):
        return desired
    spec: dict[str, Any] | None = None
    for component in _COMPONENTS:
        want, have = dspec.get(component), lspec.get(component)
        if not isinstance(want, Mapping) or not isinstance(have, Mapping):
            continue
        rewritten = _component(component, want, have)
        if rewritten is not want:
            spec = spec if spec is not None else dict(dspec)
            spec[component] = rewritten
    if spec is None:
        return desired
    return {**desired, "spec": spec}


def _component(name: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> Mapping[str, Any]:
    out: dict[str, Any] | None = None
    if name == "predictor" and "model" not in want and isinstance(have.get("model"), Mapping):
        for framework in FRAMEWORKS:
            spec = want.get(framework)
            if isinstance(spec, Mapping) and framework not in have:
                out = {k: v for k, v in want.items() if k != framework}
                # the framework's fields move under model unchanged (PredictorExtensionSpec)
                out["model"] = {"modelFormat": {"name": framework}, **spec}
                break
    containers = want.get("containers")
    renamed = _renamed(containers, have.get("containers"))
    if renamed is not None:
        out = out if out is not None else dict(want)
        out["containers"] = renamed
    return out if out is not None else want


def _renamed(want: Any, have: Any) -> list[Any] | None:
    """Git's containers with the first one named as the webhook names it, if live shows it."""
    if not isinstance(want, list) or not want or not isinstance(have, list) or not have:
        return None
    first, live_first = want[0], have[0]
    if not isinstance(first, Mapping) or not isinstance(live_first, Mapping):
        return None
    name = first.get("name")
    if name == CONTAINER_NAME or live_first.get("name") != CONTAINER_NAME:
        return None
    if name and any(isinstance(c, Mapping) and c.get("name") == name for c in have):
        return None  # Git's name is live: nothing was renamed
    return [{**first, "name": CONTAINER_NAME}, *want[1:]]
