"""Reading AdmissionReview v1 from untrusted bytes, and the response the API server gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.admission.review import (
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    ReviewError,
    parse_review,
    review_response,
)
from auditor.model import AdmissionDecision, DecisionReason
from tests.admission.world import llm, review


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_a_create_review_is_read_with_its_user_and_object() -> None:
    sent = review(llm(), dry_run=True)
    request = parse_review(body(sent))
    assert (request.uid, request.group, request.version, request.kind) == (
        sent["request"]["uid"],
        "apps",
        "v1",
        "Deployment",
    )
    assert (request.namespace, request.name, request.operation) == (
        "ml-prod",
        "llm-server",
        "CREATE",
    )
    assert request.user == "alice@example.com"
    assert request.dry_run is True
    assert request.object == sent["request"]["object"]
    assert request.old_object is None


def test_the_policy_request_carries_old_object_for_gatekeeper_review() -> None:
    old = llm()
    request = parse_review(body(review(llm(), operation="UPDATE", old=old)))
    document = request.to_policy_json()
    assert document["oldObject"] == old
    assert document["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert document["operation"] == "UPDATE"


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    document = review(llm())
    target = document
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return document


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "not JSON"),
        (b'"a string"', "the body is not an object"),
        (body({**review(llm()), "apiVersion": "admission.k8s.io/v1beta1"}), "not an admission"),
        (body({**review(llm()), "kind": "Pod"}), "not an admission"),
        (body({**review(llm()), "request": None}), "request is not an object"),
        (body(_without(("request", "uid"))), "request.uid"),
        (body(_without(("request", "kind"))), "request.kind"),
        (body(_without(("request", "operation"))), "request.operation"),
        (
            body({**review(llm()), "request": {**review(llm())["request"], "operation": "PATCH"}}),
            "PATCH",
        ),
        (
            body({**review(llm()), "request": {**review(llm())["request"], "dryRun": "yes"}}),
            "dryRun",
        ),
        (
            body({**review(llm()), "request": {**review(llm())["request"], "object": [1]}}),
            "request.object",
        ),
    ],
)
def test_what_is_not_an_admission_review_is_refused_saying_why(raw: bytes, why: str) -> None:
    with pytest.raises(ReviewError, match=why):
        parse_review(raw)


def test_a_denial_echoes_the_uid_with_403_naming_object_check_and_reason() -> None:
    request = parse_review(body(review(llm())))
    reasons = (DecisionReason("provenance.unsigned", "no signature by release-key"),)
    response = review_response(AdmissionDecision(request, "deny", reasons))["response"]
    assert response["uid"] == request.uid
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"] == (
        "auditor denied Deployment ml-prod/llm-server: "
        "provenance.unsigned: no signature by release-key"
    )


def test_warnings_stay_within_the_api_servers_limits() -> None:
    request = parse_review(body(review(llm())))
    warnings = tuple(f"w{i} " + "x" * 1000 for i in range(40))
    response = review_response(AdmissionDecision(request, "allow", warnings=warnings))["response"]
    assert response["allowed"] is True and "status" not in response
    assert len(response["warnings"]) == MAX_WARNINGS
    assert all(len(w) <= MAX_WARNING_CHARS for w in response["warnings"])
    assert response["warnings"][-1] == f"... and {40 - MAX_WARNINGS + 1} more warnings"
