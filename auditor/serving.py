"""Which model a serving resource runs, read from its kind's own fields or our annotations.

Known kinds first (their spec is what actually serves), then the `auditor.gitops.ml/model-uri`
annotation, which lets any other workload (a Deployment running a custom server) say which
model it serves. The digest a resource pins comes from a content-addressed URI
(`...@sha256:<hex>`) or else the `auditor.gitops.ml/model-digest` annotation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.model import ModelRef, Resource, ServedModel, api_group

ANNOTATION_PREFIX = "auditor.gitops.ml/"
# The group of auditor's own pseudo-kinds: a bare model directory (`Model`), the audited
# repository (`GitRepository`), which findings need a ref for although no cluster holds them.
AUDITOR_API_VERSION = ANNOTATION_PREFIX + "v1"
URI_ANNOTATION = ANNOTATION_PREFIX + "model-uri"
DIGEST_ANNOTATION = ANNOTATION_PREFIX + "model-digest"
NAME_ANNOTATION = ANNOTATION_PREFIX + "model-name"
VERSION_ANNOTATION = ANNOTATION_PREFIX + "model-version"
# where the resource's attestations are in the audited repository (a repo-relative directory)
ATTESTATIONS_ANNOTATION = ANNOTATION_PREFIX + "attestations"

# KServe v1beta1 predictor framework specs, in the order KServe documents them.
KSERVE_FRAMEWORKS: tuple[str, ...] = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "onnx",
    "triton",
    "lightgbm",
    "pmml",
    "paddle",
    "huggingface",
)

# OCI digests are lowercase hex; anything else is malformed, not "close enough".
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_URI_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # `version: 2` in YAML
    return None


def valid_digest(value: Any) -> str | None:
    """`sha256:<64 lowercase hex>` or None."""
    text = _str(value)
    return text if text is not None and _DIGEST.match(text) else None


def uri_digest(uri: str | None) -> str | None:
    """The digest a content-addressed URI pins (`oci://reg/model@sha256:<hex>`), or None."""
    if not uri:
        return None
    match = _URI_DIGEST.search(uri)
    return match[1] if match else None


def serving_annotations(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object's annotations, with its pod template's filling the gaps (a Deployment's
    model annotation often sits on the pods it creates)."""
    own, template = _annotation_sources(body)
    return {**template, **own}


def _annotation_sources(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(the object's own annotations, its pod template's)."""
    spec = _map(body.get("spec"))
    template = _map(_map(_map(spec.get("template")).get("metadata")).get("annotations"))
    return _map(_map(body.get("metadata")).get("annotations")), template


def _annotation(sources: tuple[Mapping[str, Any], Mapping[str, Any]], key: str) -> Any:
    """`serving_annotations(body).get(key)` without building the merged mapping: model_ref
    reads four keys of every object of every run."""
    own, template = sources
    return own[key] if key in own else template.get(key)


def _kserve(spec: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(storageUri, format name, format version) of an InferenceService predictor."""
    predictor = _map(spec.get("predictor"))
    model = _map(predictor.get("model"))
    if uri := _str(model.get("storageUri")):
        model_format = _map(model.get("modelFormat"))
        return uri, _str(model_format.get("name")), _str(model_format.get("version"))
    for framework in KSERVE_FRAMEWORKS:
        if uri := _str(_map(predictor.get(framework)).get("storageUri")):
            return uri, None, None
    return _str(predictor.get("storageUri")), None, None


def _seldon_v1(spec: Mapping[str, Any]) -> str | None:
    predictors = spec.get("predictors")
    if not isinstance(predictors, list):
        return None
    for predictor in predictors:
        if uri := _str(_map(_map(predictor).get("graph")).get("modelUri")):
            return uri
    return None


# the kinds whose spec names the model they serve (`_spec_uri`)
_SPEC_KINDS = frozenset({"InferenceService", "SeldonDeployment", "Model"})


def _spec_uri(body: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    kind = body.get("kind")
    if kind not in _SPEC_KINDS:
        return None, None, None
    group = api_group(str(body.get("apiVersion", "")))
    spec = _map(body.get("spec"))
    if kind == "InferenceService" and group == "serving.kserve.io":
        return _kserve(spec)
    if kind == "SeldonDeployment" and group == "machinelearning.seldon.io":
        return _seldon_v1(spec), None, None
    if kind == "Model" and group == "mlops.seldon.io":
        return _str(spec.get("storageUri")), None, None
    return None, None, None


def model_ref(body: Mapping[str, Any]) -> ModelRef | None:
    """The model `body` serves, or None when it names none.

    The URI comes from the kind's spec (KServe `spec.predictor.model.storageUri`, a framework
    spec's or the predictor's `storageUri`; Seldon v1 the first predictor graph's `modelUri`;
    Seldon v2 Model `spec.storageUri`), else the `auditor.gitops.ml/model-uri` annotation.
    The digest from a URI ending `@sha256:<hex>`, else the model-digest annotation; a
    malformed digest is None (never trusted half-way). Name and version from the annotations,
    else KServe's `modelFormat`.
    """
    annotations = _annotation_sources(body)
    uri, format_name, format_version = _spec_uri(body)
    uri = uri or _str(_annotation(annotations, URI_ANNOTATION))
    digest = uri_digest(uri) or valid_digest(_annotation(annotations, DIGEST_ANNOTATION))
    if uri is None and digest is None:
        return None
    return ModelRef(
        uri=uri,
        digest=digest,
        name=_str(_annotation(annotations, NAME_ANNOTATION)) or format_name,
        version=_str(_annotation(annotations, VERSION_ANNOTATION)) or format_version,
    )


MatchKey = tuple[str, str, str, str]
# A model shipped as an OCI image: the digest that runs is in the serving pods' statuses.
OCI_SCHEME = "oci://"


def is_oci(model: ModelRef | None) -> bool:
    return model is not None and (model.uri or "").startswith(OCI_SCHEME)


def declared_models(desired: Sequence[Resource]) -> dict[MatchKey, ModelRef | None]:
    """The model each object of Git names, by match key: read once a run, since every
    cluster's copy of a desired object has the same body."""
    return {r.ref.match_key: model_ref(r.body) for r in desired}


def served_models(
    desired: Sequence[Resource],
    live: Sequence[Resource],
    declared: Mapping[MatchKey, ModelRef | None] | None = None,
) -> dict[MatchKey, ServedModel]:
    """Every resource desired or live, by match key in key order, with the model each side
    names. `declared` (from `declared_models`) saves reading Git's side again."""
    want = {r.ref.match_key: r for r in desired}
    have = {r.ref.match_key: r for r in live}
    known = declared or {}
    out: dict[MatchKey, ServedModel] = {}
    for key in sorted(set(want) | set(have)):
        w, h = want.get(key), have.get(key)
        out[key] = ServedModel(
            desired=w,
            live=h,
            declared=(known[key] if key in known else model_ref(w.body)) if w else None,
            live_model=model_ref(h.body) if h else None,
        )
    return out


__all__ = [
    "ATTESTATIONS_ANNOTATION",
    "AUDITOR_API_VERSION",
    "DIGEST_ANNOTATION",
    "KSERVE_FRAMEWORKS",
    "NAME_ANNOTATION",
    "OCI_SCHEME",
    "URI_ANNOTATION",
    "VERSION_ANNOTATION",
    "declared_models",
    "is_oci",
    "model_ref",
    "served_models",
    "serving_annotations",
    "uri_digest",
    "valid_digest",
]
