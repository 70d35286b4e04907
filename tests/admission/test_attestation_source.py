"""The attestations' Git clone: refreshed in the background, each decision naming its commit."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from auditor.admission.review import parse_review
from auditor.admit import AttestationSource, Decider
from auditor.config import Config, load_config
from tests.admission.world import NS, ExampleWorld, llm, review


def decide(decider: Decider, body: dict[str, Any]) -> Any:
    return decider(parse_review(json.dumps(review(body)).encode()))


def read_example(tmp_path: Path, key: Any) -> tuple[ExampleWorld, Config, AttestationSource]:
    """The example repository, its config, and its attestations read once at HEAD."""
    world = ExampleWorld(tmp_path, key)
    config = load_config(world.config)
    source = AttestationSource(config)
    assert source.refresh() is True
    return world, config, source


def test_a_new_commit_is_picked_up_in_the_background_and_recorded(
    tmp_path: Path, impostor_key: Any
) -> None:
    world, config, source = read_example(tmp_path, impostor_key)
    source.start(0.1)
    decider = Decider(config, policies=None, attestations=source)
    try:
        first = world.repo.head()
        before = decide(decider, llm("llm-copy"))
        assert (before.result, before.commit) == ("deny", first)  # no attestations for it yet
        # the same signed model's attestations, committed for a second name
        attestations = world.examples / "gitops/attestations" / NS
        shutil.copytree(attestations / "llm-server", attestations / "llm-copy")
        world.repo.git("add", "-A")
        world.repo.git("commit", "-q", "-m", "attest llm-copy")
        second = world.repo.head()
        deadline = time.monotonic() + 30
        while source.commit != second and time.monotonic() < deadline:
            time.sleep(0.05)
        after = decide(decider, llm("llm-copy"))
        assert after.commit == second
        assert after.result == "deny"  # signed, but its datasets are pinned for llm-server only
        assert [r.check for r in after.reasons] == ["provenance.dataset_mismatch"]
    finally:
        decider.close()


def test_a_failed_refresh_keeps_the_last_good_commit(tmp_path: Path, impostor_key: Any) -> None:
    world, config, source = read_example(tmp_path, impostor_key)
    good = source.commit
    shutil.rmtree(world.repo.path / ".git")  # the repository is gone
    source.start(0.05)
    try:
        deadline = time.monotonic() + 30
        while not source.last_error and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "not a Git repository" in source.last_error
        assert source.commit == good
        decider = Decider(config, policies=None, attestations=source)
        assert decider.ready == (True, "")
    finally:
        source.close()


def test_the_cached_path_answers_only_what_the_caches_hold(
    tmp_path: Path, impostor_key: Any
) -> None:
    _, config, source = read_example(tmp_path, impostor_key)
    calls: list[str] = []
    decider = Decider(config, policies=None, attestations=source)
    verify = decider._verify_with_stage  # what it verifies with when given no verifier

    def counting(resource: Any, files: Any) -> Any:
        calls.append(resource.ref.name)
        return verify(resource, files)

    decider._verify = counting
    try:
        request = parse_review(json.dumps(review(llm())).encode())
        assert decider.cached(request) is None  # nothing verified yet: the full path decides
        first = decider(request)
        again = decider.cached(request)
        assert again is not None
        assert (first.result, first.cache) == ("allow", "miss")
        assert (again.result, again.cache, again.commit) == ("allow", "hit", first.commit)
        assert calls == ["llm-server"]  # verified once
        tampered = parse_review(json.dumps(review(llm("other"))).encode())
        assert decider.cached(tampered) is None
    finally:
        decider.close()
