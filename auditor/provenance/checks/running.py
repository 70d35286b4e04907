"""The image digest the serving pods of an OCI model actually run, against the one Git declares.

For a model shipped as an OCI image (KServe modelcars, `oci://` storage) the digest that runs
is the one the kubelet pulled: `status.containerStatuses[].imageID` of the serving pods. Pods
are found the way the controllers label them: KServe's `serving.kserve.io/inferenceservice`,
Seldon's `seldon-deployment-id`, else the workload's own `spec.selector`. Pure functions of
`Resource`s: the live reader or the snapshot supplies the pods.

A pod running another digest is `provenance.running_digest_mismatch`; no pod that says (scaled
to zero, pods not read) is `provenance.running_digest_unknown`, worth seeing but not an alarm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor import checks
from auditor.model import Finding, ModelRef, Resource, ResourceRef, api_group
from auditor.serving import is_oci

KSERVE_LABEL = "serving.kserve.io/inferenceservice"
SELDON_LABEL = "seldon-deployment-id"
MODELCAR_CONTAINER = "modelcar"  # the container name KServe gives a modelcar

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")
_PULL_PREFIXES = ("docker-pullable://", "docker://", "oci://", "containerd://")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def image_repository(reference: str) -> str:
    """`registry.acme.io/models/recs` for `oci://registry.acme.io/models/recs@sha256:…`,
    `…/recs:v2`, or `docker-pullable://…/recs@sha256:…`; Docker Hub's implicit prefixes
    (`docker.io/`, `library/`) are dropped so both spellings compare equal."""
    text = reference.strip()
    for prefix in _PULL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.split("@", 1)[0]
    head, _, last = text.rpartition("/")
    if ":" in last:  # a tag; a colon before the last slash is a registry port
        last = last.split(":", 1)[0]
    text = f"{head}/{last}" if head else last
    for implicit in ("docker.io/", "index.docker.io/"):
        if text.startswith(implicit):
            text = text[len(implicit) :]
    return text.removeprefix("library/")


def image_digest(reference: str) -> str | None:
    """The `sha256:…` a pulled image reference pins (`…@sha256:<hex>`), or None."""
    match = _DIGEST.search(reference.strip())
    return match[1] if match else None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against pod labels.

    An empty selector selects nothing here: a workload with no selector must not claim every
    pod of its namespace.
    """
    match_labels = _map(selector.get("matchLabels"))
    expressions = _list(selector.get("matchExpressions"))
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for item in expressions:
        expression = _map(item)
        key, operator = str(expression.get("key", "")), expression.get("operator")
        values = [str(v) for v in _list(expression.get("values"))]
        present = key in labels
        if operator == "In" and not (present and str(labels[key]) in values):
            return False
        if operator == "NotIn" and present and str(labels[key]) in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # unknown operator: select nothing rather than guess
    return True


def serving_pods(subject: Resource, pods: Sequence[Resource]) -> list[Resource]:
    """The pods that serve `subject` (an InferenceService, a SeldonDeployment, or a workload
    with a pod selector), in its namespace, sorted by name."""
    body = subject.body
    namespace = subject.ref.namespace
    name = subject.ref.name
    group = api_group(str(body.get("apiVersion", "")))
    kind = body.get("kind")
    if kind == "InferenceService" and group == "serving.kserve.io":
        selector: Mapping[str, Any] = {"matchLabels": {KSERVE_LABEL: name}}
    elif kind == "SeldonDeployment" and group == "machinelearning.seldon.io":
        selector = {"matchLabels": {SELDON_LABEL: name}}
    else:
        selector = _map(_map(body.get("spec")).get("selector"))
    out = [
        pod
        for pod in pods
        if pod.ref.namespace == namespace
        and selector_matches(selector, _map(_map(pod.body.get("metadata")).get("labels")))
    ]
    return sorted(out, key=lambda p: p.ref.name)


@dataclass(frozen=True, slots=True)
class RunningImage:
    """One model container of one pod: the image it asked for and the digest it runs."""

    pod: str
    container: str
    image: str
    digest: str | None  # None while the image is not pulled yet

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "container": self.container,
            "image": self.image,
            "digest": self.digest,
        }


def running_images(pod: Resource, repository: str) -> list[RunningImage]:
    """The containers of `pod` that run the model image `repository` (or KServe's modelcar)."""
    status = _map(pod.body.get("status"))
    out: list[RunningImage] = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in _list(status.get(key)):
            entry = _map(item)
            image = str(entry.get("image") or "")
            image_id = str(entry.get("imageID") or "")
            is_model = (
                entry.get("name") == MODELCAR_CONTAINER
                or (image and image_repository(image) == repository)
                or (image_id and image_repository(image_id) == repository)
            )
            if is_model:
                out.append(
                    RunningImage(
                        pod=pod.ref.name,
                        container=str(entry.get("name") or ""),
                        image=image,
                        digest=image_digest(image_id),
                    )
                )
    return out


@dataclass(frozen=True, slots=True)
class RunningCheck:
    """What the serving pods of an OCI model run, and whether that is Git's digest."""

    document: Mapping[str, Any]  # the policy input's `running`: {checked, images}
    finding: Finding | None  # running_digest_mismatch or running_digest_unknown

    @property
    def mismatch(self) -> bool:
        return self.finding is not None and self.finding.check == checks.RUNNING_DIGEST_MISMATCH


def check_running(
    ref: ResourceRef, live: Resource | None, declared: ModelRef, pods: Sequence[Resource]
) -> RunningCheck | None:
    """The running digest of a live OCI model Git pins; None for any other model, whose
    running bytes no pod status names."""
    if live is None or not is_oci(declared) or not declared.digest:
        return None
    repository = image_repository(declared.uri or "")
    serving = serving_pods(live, pods)
    images = [image for pod in serving for image in running_images(pod, repository)]
    known = [i for i in images if i.digest is not None]
    document = {"checked": bool(known), "images": [i.to_json() for i in images]}
    path = "/status/containerStatuses"
    if not known:
        why = (
            f"no serving pod of it was found in {ref.namespace}"
            if not serving
            else f"none of its {len(serving)} pod(s) reports the digest of a {repository} container"
        )
        unknown = checks.finding(
            checks.RUNNING_DIGEST_UNKNOWN,
            ref,
            path,
            f"{ref.display()}: the running digest of {declared.uri} could not be checked: {why}",
            expected=declared.digest,
        )
        return RunningCheck(document, unknown)
    wrong = [i for i in known if i.digest != declared.digest]
    if not wrong:
        return RunningCheck(document, None)
    where = ", ".join(f"{i.pod}/{i.container} runs {i.digest}" for i in wrong[:5])
    mismatch = checks.finding(
        checks.RUNNING_DIGEST_MISMATCH,
        ref,
        path,
        f"{ref.display()}: Git declares {declared.digest}, but {where}",
        expected=declared.digest,
        actual=sorted({str(i.digest) for i in wrong}),
        details={"pods": [i.to_json() for i in wrong]},
    )
    return RunningCheck(document, mismatch)


__all__ = [
    "KSERVE_LABEL",
    "SELDON_LABEL",
    "RunningCheck",
    "RunningImage",
    "check_running",
    "image_digest",
    "image_repository",
    "running_images",
    "selector_matches",
    "serving_pods",
]
