"""The bundled example audits to exactly the drift its README promises, and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, PROJECT, run_cli
from tests.gitrepo import GitRepo

EXPECTED = {
    # (check, kind, name, path): (class, changed_by manager or None)
    ("drift.changed", "InferenceService", "fraud-scorer", "/spec/predictor/model/storageUri"): (
        "model",
        "kubectl-edit",
    ),
    ("drift.changed", "InferenceService", "fraud-scorer", "/spec/predictor/minReplicas"): (
        "scale",
        "kubectl-patch",
    ),
    ("drift.changed", "InferenceService", "recommender", "/spec/predictor/canaryTrafficPercent"): (
        "traffic",
        "kubectl-patch",
    ),
    ("drift.changed", "Deployment", "llm-server", "/spec/template/spec/containers/0/image"): (
        "runtime",
        "kubectl-set",
    ),
    ("drift.changed", "ConfigMap", "fraud-features", "/data/threshold"): ("config", "kubectl-edit"),
    ("drift.changed", "Secret", "llm-gateway-key", "/data/api-key"): ("config", "kubectl-edit"),
    ("drift.missing", "Service", "llm-server-metrics", ""): (None, None),
    ("drift.unmanaged", "Deployment", "fraud-scorer-hotfix", ""): (None, None),
}
SECRET_VALUES = ("example-not-a-real-key-1111", "example-rotated-by-hand-2222")


@pytest.fixture(scope="module")
def example_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ committed to a fresh repository exactly as it is in the working tree.

    The example audits its own repository at HEAD (`repo: ..`): a copy makes the test see
    the example's files as they are now, committed or not, with the same relative layout.
    """
    repo = GitRepo(tmp_path_factory.mktemp("example-repo") / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    repo.commit("example")
    return repo.path / "examples" / "auditor.yaml"


@pytest.fixture(scope="module")
def example_run(
    tmp_path_factory: pytest.TempPathFactory, example_config: Path
) -> tuple[object, Path, Path]:
    work = tmp_path_factory.mktemp("example")
    store = work / "audit.db"
    report = work / "report.md"
    result = run_cli(
        "-vv",
        "audit",
        "--config",
        str(example_config),
        "--store",
        str(store),
        "--report",
        str(report),
        "-o",
        "json",
    )
    return result, store, report


def test_example_audit_exits_1_with_findings(example_run: tuple) -> None:
    result, _, _ = example_run
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert doc["status"] == "drifted"
    assert doc["run"]["status"] == "complete"
    assert len(doc["commit"]) == 40


def test_example_reports_each_drift_class_with_attribution(example_run: tuple) -> None:
    result, _, _ = example_run
    doc = json.loads(result.out)
    found = {}
    for f in doc["findings"]:
        if f["category"] != "drift" or f["check"] == "drift.removed":
            continue
        key = (f["check"], f["resource"]["kind"], f["resource"]["name"], f["path"])
        manager = f["changed_by"]["manager"] if f["changed_by"] else None
        found[key] = (f["class"] if f["check"] == "drift.changed" else None, manager)
    assert found == EXPECTED
    model = next(f for f in doc["findings"] if f["class"] == "model")
    assert model["changed_by"] == {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": "2026-11-20T02:13:00Z",
    }
    assert model["severity"] == "critical"
    assert model["expected"] == "gs://acme-models/fraud-scorer/v3"
    assert model["actual"] == "gs://acme-models/fraud-scorer/v4"
    assert model["resource"] == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "namespace": "ml-prod",
        "name": "fraud-scorer",
    }


def test_example_reports_env_removed_from_git_still_live(example_run: tuple) -> None:
    result, _, _ = example_run
    doc = json.loads(result.out)
    removed = [f for f in doc["findings"] if f["check"] == "drift.removed"]
    assert len(removed) == 1
    assert removed[0]["resource"]["name"] == "llm-server"
    assert removed[0]["path"].startswith("/spec/template/spec/containers/0/env/")
    assert removed[0]["actual"] == {"name": "LEGACY_TOKENIZER", "value": "1"}


def test_example_summary_counts(example_run: tuple) -> None:
    doc = json.loads(example_run[0].out)
    # Git: Namespace, 2 InferenceServices, Deployment, 2 Services, HPA, Secret, ConfigMap = 9,
    # plus the unmanaged hotfix Deployment.
    assert doc["summary"] == {
        "resources": 10,
        "in_sync": 3,
        "drifted": 5,
        "missing": 1,
        "unmanaged": 1,
    }


def test_example_secret_values_never_leave_the_process(example_run: tuple) -> None:
    result, store, report = example_run
    secret = next(
        f for f in json.loads(result.out)["findings"] if f["resource"]["kind"] == "Secret"
    )
    assert secret["expected"].startswith("hmac-sha256:") and secret["actual"].startswith(
        "hmac-sha256:"
    )
    dump = "\n".join(sqlite3.connect(store).iterdump())
    for value in SECRET_VALUES:
        for where, text in (
            ("stdout", result.out),
            ("stderr/logs", result.err),
            ("store", dump),
            ("report", report.read_text()),
        ):
            assert value not in text, f"secret value leaked to {where}"


def test_example_policies_judge_every_resource_and_fail_closed_on_unsigned_models(
    example_run: tuple,
) -> None:
    result, store, _ = example_run
    doc = json.loads(result.out)
    counts = doc["run"]["counts"]
    assert counts["policy_fail"] > 0 and counts["policy_pass"] > 0 and counts["policy_error"] == 0
    unsigned = {
        f["resource"]["name"]
        for f in doc["findings"]
        if f["check"] == "auditor.provenance.model_signed"
    }
    # llm-server serves the signed model Git declares, the recommender the image its signed
    # provenance names; the fraud scorer's signed files were changed (and it serves v4
    # anyway), the hotfix is not in Git: they fail closed
    assert unsigned == {"fraud-scorer", "fraud-scorer-hotfix"}
    db = sqlite3.connect(store)
    evaluated, passed = db.execute(
        "select sum(evaluated), sum(passed) from policy_summary where run_id = ?",
        (doc["run"]["id"],),
    ).fetchone()
    assert evaluated == sum(counts[f"policy_{r}"] for r in ("pass", "fail", "warn", "error"))
    assert passed == counts["policy_pass"]


def test_example_run_is_stored(example_run: tuple) -> None:
    result, store, _ = example_run
    doc = json.loads(result.out)
    db = sqlite3.connect(store)
    status, commit = db.execute(
        "select status, git_commit from runs where id = ?", (doc["run"]["id"],)
    ).fetchone()
    assert (status, commit) == ("complete", doc["commit"])
    stored = db.execute(
        "select count(*) from findings where run_id = ?", (doc["run"]["id"],)
    ).fetchone()[0]
    assert stored == len(doc["findings"])


def test_example_report_written(example_run: tuple) -> None:
    text = example_run[2].read_text()
    assert "fraud-scorer" in text and "kubectl-edit" in text and "critical" in text


def test_example_provenance_one_verified_one_tampered_one_dataset_mismatch(
    example_run: tuple,
) -> None:
    result, store, _ = example_run
    doc = json.loads(result.out)
    found = sorted(
        (f["check"], f["resource"]["name"], f["path"])
        for f in doc["findings"]
        if f["category"] == "provenance"
    )
    assert found == [
        # the recommender's provenance names clicks data other than dvc.lock pins
        (
            "provenance.dataset_mismatch",
            "recommender",
            "/provenance/datasets/data~1clicks.parquet",
        ),
        # one byte of the fraud scorer's model.pkl changed after signing
        ("provenance.digest_mismatch", "fraud-scorer", "/provenance/signature/model.sig"),
    ]
    tampered = next(f for f in doc["findings"] if f["check"] == "provenance.digest_mismatch")
    assert tampered["severity"] == "critical" and "changed model.pkl" in tampered["message"]
    rows = (
        sqlite3.connect(store)
        .execute(
            "select name, attestation, verified, reason, authority from attestations "
            "where run_id = ? order by name, attestation",
            (doc["run"]["id"],),
        )
        .fetchall()
    )
    assert rows == [
        ("fraud-scorer", "model-signature", 0, "provenance.digest_mismatch", None),
        ("fraud-scorer", "slsa-provenance", 1, None, "release-key"),
        ("llm-server", "model-signature", 1, None, "release-key"),
        ("llm-server", "slsa-provenance", 1, None, "release-key"),
        # an OCI model: its provenance, signed by the release key, names its image digest
        ("recommender", "image-signature", 1, None, "release-key"),
        ("recommender", "slsa-provenance", 0, "provenance.dataset_mismatch", "release-key"),
    ]
    # the verified model passes the shipped signature policy
    passed = (
        sqlite3.connect(store)
        .execute(
            "select result from evaluations where run_id = ? and name = 'llm-server' "
            "and policy = 'auditor.provenance.model_signed'",
            (doc["run"]["id"],),
        )
        .fetchone()
    )
    assert passed == ("pass",)


@pytest.mark.parametrize(
    "command", ["audit", "report", "findings", "runs", "history", "policy eval"]
)
def test_every_command_that_prints_refuses_a_closed_stdout_in_one_line(
    command: str, example_config: Path, example_run: tuple
) -> None:
    # `auditor ... >&-`: one line naming stdout and exit 2, as `auditor drift` does; never
    # "internal error" (exit 4), and nothing opened that descriptor 1 could then point into
    result, store, _ = example_run
    fingerprint = json.loads(result.out)["findings"][0]["fingerprint"]
    arguments = {
        "audit": ["audit", "--config", str(example_config), "--store", str(store)],
        "report": ["report", "--store", str(store), "--format", "md"],
        "findings": ["findings", "--store", str(store)],
        "runs": ["runs", "--store", str(store)],
        "history": ["history", "--store", str(store), fingerprint],
        "policy eval": ["policy", "eval", "--policy", str(PROJECT / "policies"),
                        str(EXAMPLES / "gitops" / "base" / "llm-server.yaml")],
    }[command]  # fmt: skip
    runs_before = sqlite3.connect(store).execute("select count(*) from runs").fetchone()
    done = subprocess.run(
        [sys.executable, "-m", "auditor", *arguments],
        stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("auditor: error: stdout is closed"), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert sqlite3.connect(store).execute("select count(*) from runs").fetchone() == runs_before


def test_a_closed_stderr_discards_diagnostics_and_keeps_the_store_whole(
    example_config: Path, tmp_path: Path
) -> None:
    # `auditor audit 2>&-`: the audit runs as it would with its diagnostics sent to /dev/null
    # (same exit code, same output), and descriptor 2 is never the store's, so nothing that
    # writes to stderr can write into the store
    store = tmp_path / "closed.db"
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "-v", "audit", "--config", str(example_config),
         "--store", str(store), "-o", "json"],
        stdout=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-500:]
    document = json.loads(done.stdout)
    assert document["run"]["status"] == "complete"
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("select status from runs").fetchall() == [("complete",)]


def test_example_signatures_are_reproducible_with_the_committed_script() -> None:
    script = (EXAMPLES / "tools" / "sign_examples.py").read_text()
    assert "EXAMPLE-ONLY" in script
    assert (EXAMPLES / "keys" / "EXAMPLE-ONLY-release.pub").is_file()


def test_example_text_output_groups_by_resource(tmp_path: Path, example_config: Path) -> None:
    result = run_cli("audit", "--config", str(example_config), "--store", str(tmp_path / "a.db"))
    assert result.code == 1
    assert "InferenceService ml-prod/fraud-scorer" in result.out
    assert "changed by kubectl-edit Update at 2026-11-20T02:13:00Z" in result.out
    assert "\x1b[" not in result.out  # no colour codes when not on a terminal


def test_readme_first_command_runs_the_example() -> None:
    readme = (PROJECT / "README.md").read_text()
    assert "auditor audit --config examples/auditor.yaml" in readme.split("```")[1]
    assert shutil.which("git")
