"""AdmissionReview v1 in and out: the request read from untrusted bytes, the response written.

The body comes from the network: anything that is not an `admission.k8s.io/v1`
`AdmissionReview` with a request that names its uid, kind and operation is a `ReviewError`
(HTTP 400), never an exception further in. The response echoes the request's uid and says
`allowed`; a denial carries `status: {code: 403, message}` naming the object, each check and
its reason; warnings go in `warnings`, within the API server's limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from auditor.model import AdmissionDecision, AdmissionRequest

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
# The API server keeps at most 4 KiB of warnings per response and shortens longer ones;
# a warning past these bounds would be cut where auditor cannot choose.
MAX_WARNINGS = 16
MAX_WARNING_CHARS = 240
# The message is shown to the user by kubectl and logged by the API server.
MAX_MESSAGE_CHARS = 4000


class ReviewError(ValueError):
    """The body is not an AdmissionReview v1 request: answered with HTTP 400."""


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReviewError(f"{where} is not an object")
    return value


def _text(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ReviewError(f"{where} is missing or not a string")
    return value


def _optional_object(value: Any, where: str) -> Mapping[str, Any] | None:
    return None if value is None else _mapping(value, where)


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1 body; ReviewError saying what is wrong."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
        raise ReviewError(f"the body is not JSON: {str(exc)[:200]}") from None
    review = _mapping(data, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != KIND:
        raise ReviewError(f"the body is not an {API_VERSION} {KIND}")
    request = _mapping(review.get("request"), "request")
    kind = _mapping(request.get("kind"), "request.kind")
    operation = _text(request.get("operation"), "request.operation")
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation {operation[:40]!r} is not one of {OPERATIONS}")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun is not a boolean")
    user_info = request.get("userInfo") or {}
    return AdmissionRequest(
        uid=_text(request.get("uid"), "request.uid"),
        group=_text(kind.get("group"), "request.kind.group", required=False),
        version=_text(kind.get("version"), "request.kind.version"),
        kind=_text(kind.get("kind"), "request.kind.kind"),
        namespace=_text(request.get("namespace"), "request.namespace", required=False),
        name=_text(request.get("name"), "request.name", required=False),
        operation=operation,
        user_info=_mapping(user_info, "request.userInfo"),
        object=_optional_object(request.get("object"), "request.object"),
        old_object=_optional_object(request.get("oldObject"), "request.oldObject"),
        dry_run=dry_run,
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def review_response(decision: AdmissionDecision) -> dict[str, Any]:
    """The AdmissionReview the API server expects back for `decision`."""
    response: dict[str, Any] = {"uid": decision.request.uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": _shorten(decision.message(), MAX_MESSAGE_CHARS),
        }
    warnings = [_shorten(w, MAX_WARNING_CHARS) for w in decision.warnings[:MAX_WARNINGS]]
    if len(decision.warnings) > MAX_WARNINGS:
        warnings[-1] = f"... and {len(decision.warnings) - MAX_WARNINGS + 1} more warnings"
    if warnings:
        response["warnings"] = warnings
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


__all__ = ["API_VERSION", "KIND", "ReviewError", "parse_review", "review_response"]
