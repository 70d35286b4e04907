"""`auditor policy eval` and `auditor policy test`, run as a user runs them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, run_main
from tests.policy.rego import ISVC, write, write_objects

ROOT = Path(__file__).resolve().parents[2]

PINNED = """
    # METADATA
    # title: Model storage is digest-pinned
    # custom:
    #   severity: critical
    #   controls: [SLSA-L3]
    package auditor.test.pinned

    import rego.v1

    deny contains sprintf("model %s is not digest-pinned", [input.model.uri]) if {
        input.model.digest == null
    }
"""

TEAM_V0 = """
    package legacy.team

    warn[msg] {
        not input.resource.metadata.labels.owner
        msg := "no owner label"
    }
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, "policies/pinned.rego", PINNED)
    write(tmp_path, "policies/team.rego", TEAM_V0)
    pinned = copy.deepcopy(ISVC)
    pinned["metadata"]["name"] = "pinned"
    pinned["spec"]["predictor"]["model"]["storageUri"] = "oci://r.example.com/m@sha256:" + "b" * 64
    pinned["metadata"]["labels"]["owner"] = "x"
    write_objects(tmp_path, "objects/isvc.yaml", ISVC, pinned)
    write_objects(tmp_path, "objects/pinned.json", pinned)
    return tmp_path


def test_eval_json_is_the_design_document_and_exits_1_on_deny(project: Path) -> None:
    result = run_cli(
        "policy", "eval", "--policy", "policies", "objects/isvc.yaml", "-o", "json", cwd=project
    )
    assert result.code == 1, result.err
    document = json.loads(result.out)
    assert set(document) == {"evaluations", "findings"}
    summary = {
        (e["policy"], e["resource"]["name"]): (e["result"], e["messages"])
        for e in document["evaluations"]
    }
    assert summary == {
        ("auditor.test.pinned", "fraud-scorer"): (
            "fail",
            ["model gs://models/fraud/v3 is not digest-pinned"],
        ),
        ("legacy.team", "fraud-scorer"): ("warn", ["no owner label"]),
        ("auditor.test.pinned", "pinned"): ("pass", []),
        ("legacy.team", "pinned"): ("pass", []),
    }
    deny = next(f for f in document["findings"] if f["check"] == "auditor.test.pinned")
    assert deny["severity"] == "critical"
    assert deny["controls"] == ["SLSA-L3"]
    assert deny["message"] == (
        "InferenceService ml/fraud-scorer: model gs://models/fraud/v3 is not digest-pinned"
    )
    assert deny["resource"]["name"] == "fraud-scorer"


def test_eval_exits_0_when_nothing_is_denied(project: Path) -> None:
    result = run_cli("policy", "eval", "--policy", "policies", "objects/pinned.json", cwd=project)
    assert result.code == 0, result.err
    assert "2 evaluations: 2 passed, 0 failed, 0 warned, 0 errored" in result.out


def test_eval_text_lists_what_did_not_pass(project: Path) -> None:
    result = run_cli("policy", "eval", "--policy", "policies", "objects/isvc.yaml", cwd=project)
    assert result.code == 1
    assert "FAIL  auditor.test.pinned  InferenceService ml/fraud-scorer" in result.out
    assert "deny: model gs://models/fraud/v3 is not digest-pinned" in result.out
    assert "WARN  legacy.team  InferenceService ml/fraud-scorer" in result.out


def test_eval_with_data_files(project: Path) -> None:
    write(
        project,
        "sources/allowed.rego",
        """
        package allowed
        import rego.v1
        deny contains "model source not allowed" if {
            not some_prefix_matches
        }
        some_prefix_matches if {
            some prefix in data.allowed.prefixes
            startswith(input.model.uri, prefix)
        }
        """,
    )
    write(project, "allowed.yaml", "allowed:\n  prefixes: [oci://r.example.com/]\n")
    args = ["policy", "eval", "--policy", "sources", "--data", "allowed.yaml", "-o", "json"]
    result = run_cli(*args, "objects/isvc.yaml", cwd=project)
    assert result.code == 1, result.err
    results = {e["resource"]["name"]: e["result"] for e in json.loads(result.out)["evaluations"]}
    assert results == {"fraud-scorer": "fail", "pinned": "pass"}


def test_eval_exits_3_when_a_policy_errors_and_still_runs_the_others(project: Path) -> None:
    write(
        project,
        "policies/broken.rego",
        """
        package broken
        import rego.v1
        deny contains m if m := input.resource.metadata.name + 1
        """,
    )
    result = run_cli(
        "policy", "eval", "--policy", "policies", "objects/isvc.yaml", "-o", "json", cwd=project
    )
    assert result.code == 3, result.err
    document = json.loads(result.out)
    results = {(e["policy"], e["resource"]["name"]): e["result"] for e in document["evaluations"]}
    assert results[("broken", "fraud-scorer")] == "error"
    assert results[("auditor.test.pinned", "fraud-scorer")] == "fail"
    errors = [f for f in document["findings"] if f["category"] == "error"]
    assert len(errors) == 2
    assert errors[0]["check"] == "policy.error"
    assert "broken.rego:3" in errors[0]["message"]


def test_eval_syntax_error_exits_2_naming_the_file_and_line(project: Path) -> None:
    write(project, "policies/typo.rego", 'package typo\nimport rego.v1\n\ndeny contains "x" if {\n')
    result = run_cli("policy", "eval", "--policy", "policies", "objects/isvc.yaml", cwd=project)
    assert result.code == 2
    assert result.out == ""
    assert "policies/typo.rego:" in result.err
    assert "Traceback" not in result.err


def test_eval_accepts_inventory_files(project: Path) -> None:
    write_objects(
        project,
        "inventory.yaml",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}},
    )
    result = run_cli(
        "policy",
        "eval",
        "--policy",
        "policies",
        "--inventory",
        "inventory.yaml",
        "objects/pinned.json",
        cwd=project,
    )
    assert result.code == 0, result.err


def test_policy_test_runs_tests_and_exits_1_on_failure(project: Path) -> None:
    write(
        project,
        "policies/pinned_test.rego",
        """
        package auditor.test.pinned_test
        import rego.v1
        test_unpinned_is_denied if {
            count(data.auditor.test.pinned.deny) == 1 with input as {"model": {"uri": "gs://x", "digest": null}}
        }
        test_pinned_passes if {
            count(data.auditor.test.pinned.deny) == 0 with input as {"model": {"uri": "oci://x", "digest": "sha256:1"}}
        }
        """,
    )
    ok = run_cli("policy", "test", "policies", cwd=project)
    assert ok.code == 0, ok.out + ok.err
    assert ok.out == "PASS: 2/2\n"

    write(
        project,
        "policies/failing_test.rego",
        "package failing_test\nimport rego.v1\ntest_nope if { 1 == 2 }\n",
    )
    failed = run_cli("policy", "test", "-v", "policies", cwd=project)
    assert failed.code == 1
    assert "data.auditor.test.pinned_test.test_pinned_passes: PASS" in failed.out
    assert "data.failing_test.test_nope: FAIL" in failed.out
    assert failed.out.endswith("PASS: 2/3\nFAIL: 1/3\n")


def test_policy_test_stops_a_test_at_its_timeout_and_reports_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import run_main

    path = write(
        tmp_path,
        "slow_test.rego",
        """
        package slow_test
        import rego.v1
        test_endless if { some i in numbers.range(1, 100000); some j in numbers.range(1, 100000); i * j == -1 }
        test_quick if true
        """,
    )
    result = run_main(capsys, "policy", "test", "--timeout", "0.5", str(tmp_path))
    assert result.code == 1, result.err
    assert (
        f"data.slow_test.test_endless ({path}:3) did not finish within 0.5 s, the time budget "
        "per test (--timeout): stopped"
    ) in result.out
    assert result.out.endswith("PASS: 1/2\nERROR: 1/2\n")


def test_the_shipped_library_passes_its_own_tests() -> None:
    # CI runs the Rego unit tests of policies/ exactly as a policy author does.
    from tests.conftest import PROJECT, run_cli

    result = run_cli("policy", "test", str(PROJECT / "policies"))
    assert result.code == 0, result.out + result.err
    summary = result.out.strip().splitlines()[-1]
    passed, total = summary.removeprefix("PASS: ").split("/")
    assert passed == total and int(total) >= 100


def test_eval_on_the_vm_gives_the_interpreters_verdicts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from auditor.policy.vm import VmEngine

    # each VM run noted in a file: evaluations run in a worker process forked with the patch
    ran = tmp_path / "ran"
    run = VmEngine._run

    def noted(self: VmEngine, entry: str, count: int) -> list[Any] | None:
        with ran.open("a") as out:
            out.write(entry + "\n")
        return run(self, entry, count)

    monkeypatch.setattr(VmEngine, "_run", noted)
    files = [str(p) for p in sorted((ROOT / "examples" / "gitops" / "base").glob("[!k]*.yaml"))]
    args = ("policy", "eval", "--policy", str(ROOT / "policies"), *files, "-o", "json")
    interpreter = run_main(capsys, *args)
    assert not ran.exists()
    vm = run_main(capsys, *args[:-2], "--vm", "-o", "json")
    assert len(ran.read_text().splitlines()) >= len(files)  # every object went through the VM

    def verdicts(stdout: str) -> list[tuple[Any, ...]]:
        document = json.loads(stdout)
        return sorted(
            (e["policy"], json.dumps(e["resource"], sort_keys=True), e["result"], e.get("messages"))
            for e in document["evaluations"]
        )

    assert vm.code == interpreter.code == 1
    assert verdicts(vm.out) == verdicts(interpreter.out)
    assert any(result == "fail" for _, _, result, _ in verdicts(vm.out))
