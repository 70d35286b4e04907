"""`auditor admission serve` over HTTPS, with the bundled example's config and attestations:
what the API server would be told for each kind of object, through a real client."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.admission.running import Server, denial
from tests.admission.world import ExampleWorld, example_object, llm, review
from tests.conftest import run_main

ZERO_DIGEST = "sha256:" + "0" * 64


def test_signed_model_passing_every_policy_is_allowed(server: Server) -> None:
    sent = review(llm())
    response = server.validate(sent)
    assert response == {"uid": sent["request"]["uid"], "allowed": True}


def test_tampered_model_is_denied_naming_object_check_and_file(server: Server) -> None:
    # the example's fraud-scorer: signed, then one byte of model.pkl changed
    message = denial(server.validate(review(example_object("fraud-scorer"))))
    assert "InferenceService ml-prod/fraud-scorer" in message
    assert "provenance.digest_mismatch" in message
    assert "changed model.pkl" in message


def test_unsigned_model_is_denied(server: Server) -> None:
    # no attestation directory exists for this name at the commit
    message = denial(server.validate(review(llm("llm-unsigned"))))
    assert "Deployment ml-prod/llm-unsigned" in message
    assert "provenance.unsigned" in message


def test_model_signed_by_an_unknown_key_is_denied(server: Server) -> None:
    body = llm(
        "impostor",
        **{"auditor.gitops.ml/model-uri": "hf://acme/impostor-llm"},
    )
    message = denial(server.validate(review(body)))
    assert "Deployment ml-prod/impostor" in message
    assert "release-key" in message  # the authority the rule requires and that did not sign


def test_declared_digest_other_than_the_signed_one_is_denied(server: Server) -> None:
    body = llm(**{"auditor.gitops.ml/model-digest": ZERO_DIGEST})
    message = denial(server.validate(review(body)))
    assert "provenance.digest_mismatch" in message
    assert ZERO_DIGEST in message


def test_deny_rule_denies_a_verified_model(server: Server) -> None:
    body = llm()  # the signed model, its datasets as pinned; but the default service account
    del body["spec"]["template"]["spec"]["serviceAccountName"]
    message = denial(server.validate(review(body)))
    assert "auditor.serving.service_account" in message
    assert "provenance." not in message  # the model itself verified


def test_update_with_old_object_is_judged_and_warned(server: Server) -> None:
    old = llm()
    new = llm()
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:v0.6.4"
    response = server.validate(review(new, operation="UPDATE", old=old))
    assert response["allowed"] is True
    assert response["warnings"] == [
        "tests.admission.runtime_change: runtime image changes from "
        "vllm/vllm-openai:v0.6.3 to vllm/vllm-openai:v0.6.4"
    ]


def test_update_to_a_tampered_model_is_denied(server: Server) -> None:
    old = llm()
    new = llm(**{"auditor.gitops.ml/model-digest": ZERO_DIGEST})
    denial(server.validate(review(new, operation="UPDATE", old=old)))


def test_dry_run_gets_the_same_verdict(server: Server) -> None:
    tampered = example_object("fraud-scorer")
    assert "digest_mismatch" in denial(server.validate(review(tampered, dry_run=True)))
    assert server.validate(review(llm(), dry_run=True))["allowed"] is True


def test_objects_outside_the_scope_are_allowed_unjudged(server: Server) -> None:
    config_map = example_object("feature-config")
    assert server.validate(review(config_map))["allowed"] is True
    deletion = review(None, operation="DELETE", old=example_object("fraud-scorer"))
    assert server.validate(deletion)["allowed"] is True


def test_bad_bodies_get_400_or_413_and_the_server_keeps_serving(server: Server) -> None:
    cases: list[tuple[bytes, int]] = [
        (b"this is not json", 400),
        (b"\xff\xfe\x00", 400),
        (b"[1, 2, 3]", 400),
        (json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), 400),
        (json.dumps({**review(llm()), "request": {"uid": "x"}}).encode(), 400),
        (b"[" * 100_000 + b"]" * 100_000, 413),  # over admission.max_body_bytes (64 KiB)
        (b"[" * 30_000 + b"]" * 30_000, 400),  # within it, nested past any parser
        (json.dumps(review(llm())).encode() + b" " * 70_000, 413),
    ]
    for body, status in cases:
        reply = server.post_raw(body)
        assert reply.status_code == status, (body[:40], reply.text)
        assert "error" in reply.json()
    assert server.session.get(f"{server.base}/healthz", timeout=10).text == "ok\n"
    assert server.validate(review(llm()))["allowed"] is True


def test_concurrent_clients_each_get_their_own_answer(server: Server) -> None:
    cases: list[tuple[dict[str, Any], bool]] = [
        (llm(), True),
        (example_object("fraud-scorer"), False),
        (llm("llm-unsigned"), False),
        (example_object("feature-config"), True),
    ] * 10

    def send(case: tuple[dict[str, Any], bool]) -> tuple[str, str, bool, bool]:
        sent = review(case[0])
        response = server.validate(sent)
        return sent["request"]["uid"], response["uid"], response["allowed"], case[1]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, cases))
    assert all(uid == echoed for uid, echoed, _, _ in answers)
    assert [allowed for *_, allowed, _ in answers] == [want for *_, want in answers]


def test_health_readiness_and_metrics(server: Server) -> None:
    server.validate(review(llm()))
    server.validate(review(llm()))
    assert server.session.get(f"{server.base}/readyz", timeout=10).status_code == 200
    text = server.session.get(f"{server.base}/metrics", timeout=10).text
    assert 'auditor_admission_decisions_total{operation="CREATE",result="allow"}' in text
    assert 'auditor_admission_cache_lookups_total{result="hit"}' in text
    assert "auditor_admission_decision_seconds_bucket" in text


def test_object_named_only_by_generate_name_is_judged_not_refused(server: Server) -> None:
    body = llm()
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "llm-"
    message = denial(server.validate(review(body)))
    assert "Deployment ml-prod/llm-*" in message
    assert "provenance.unsigned" in message  # judged: no attestations for an unnamed object


# Last in this module, the last to use the shared server: it stops it (a test after it would
# start a new one).
def test_sigterm_writes_every_decision_to_the_store(
    server: Server, world: ExampleWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = []
    try:
        for _ in range(10):
            for body, dry_run in ((llm(), False), (example_object("fraud-scorer"), True)):
                document = review(body, dry_run=dry_run)
                response = server.validate(document)
                sent.append((document["request"]["uid"], response["allowed"], dry_run))
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.log.read_text()
    # the store holds every earlier test's decisions too: these are the newest
    result = run_main(
        capsys, "admission", "decisions", "--store", str(world.store), "--limit", "1000",
        "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = {row["uid"]: row for row in json.loads(result.out)["decisions"]}
    assert {uid for uid, _, _ in sent} <= set(rows)
    head = world.repo.head()
    for uid, allowed, dry_run in sent:
        row = rows[uid]
        assert (row["allowed"], row["dry_run"]) == (allowed, dry_run)
        assert row["commit_sha"] == head
        assert row["user"] == "alice@example.com"
        assert row["namespace"] == "ml-prod"
        assert row["latency_ms"] > 0
        if not allowed:
            assert row["result"] == "deny"
            assert any(r["check"] == "provenance.digest_mismatch" for r in row["reasons"])
    assert sum(not allowed for _, allowed, _ in sent) == 10
