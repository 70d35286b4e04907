"""The policy input document: one per resource, the same at audit and admission time.

Its shape is a contract with every policy author (DESIGN "Policy input and output"; published
as `policies/input.schema.json`): every key is always present, so a policy never has to guard
against a missing `provenance` or `model` object, only against null values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from auditor.model import Finding, ModelRef, Resource
from auditor.serving import model_ref

Context = Literal["audit", "admission"]


def _body(resource: Resource | None) -> dict[str, Any] | None:
    if resource is None:
        return None
    body = resource.body
    return body if isinstance(body, dict) else dict(body)


def model_json(model: ModelRef | None) -> dict[str, str | None] | None:
    if model is None:
        return None
    return {"uri": model.uri, "digest": model.digest, "name": model.name, "version": model.version}


def provenance_json(provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    """The provenance object with every key present: unverified and empty until the
    provenance stage says otherwise (fail closed: a policy reading `verified` sees false)."""
    given = dict(provenance or {})
    signature = dict(given.pop("signature", None) or {})
    out: dict[str, Any] = {
        "signature": {
            **signature,
            "verified": bool(signature.get("verified", False)),
            "signers": list(signature.get("signers") or []),
        },
        "datasets": list(given.pop("datasets", None) or []),
        "evaluation": dict(given.pop("evaluation", None) or {}),
    }
    out.update(given)  # whatever else the provenance stage adds, policies may read
    return out


def git_json(git: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if git is None:
        return None
    return {
        "repo": git.get("repo"),
        "commit": git.get("commit"),
        "path": git.get("path"),
    }


def build_input(
    *,
    resource: Resource | None,
    desired: Resource | None,
    live: Resource | None,
    drift: Sequence[Finding],
    git: Mapping[str, Any] | None,
    cluster: str,
    context: Context,
    model: ModelRef | None,
    provenance: Mapping[str, Any] | None,
    request: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The input document for one resource.

    `resource` is the object the policy judges: given explicitly, or the live body when the
    object is live, else the desired body. `drift` holds that resource's drift findings (their
    JSON form); `git` is `{repo, commit, path}` (path: the file in Git) or null when the
    object does not come from Git (admission, `policy eval`).
    """
    subject = resource or live or desired
    return {
        "resource": _body(subject),
        "desired": _body(desired),
        "live": _body(live),
        "drift": [finding.to_json() for finding in drift],
        "model": model_json(model),
        "provenance": provenance_json(provenance),
        "git": git_json(git),
        "cluster": {"name": cluster},
        "context": context,
        # the admission request (operation, userInfo, oldObject) at admission time, else null
        "request": dict(request) if request is not None else None,
    }


def object_input(
    resource: Resource,
    *,
    context: Context = "admission",
    request: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The input for a single object judged on its own (admission, `auditor policy eval`):
    it is both the resource and the desired state; nothing is live, no drift, no Git."""
    return build_input(
        resource=resource,
        desired=resource,
        live=None,
        drift=(),
        git=None,
        cluster=resource.ref.cluster,
        context=context,
        model=model_ref(resource.body),
        provenance=None,
        request=request,
    )


__all__ = ["Context", "build_input", "git_json", "model_json", "object_input", "provenance_json"]
