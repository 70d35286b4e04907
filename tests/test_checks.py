"""The check registry: every check id auditor emits is registered once, and config's
`severity.checks` reaches every category (it was read by drift only)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from auditor import checks
from auditor.config import load_config
from auditor.model import ProvenanceResult, ResourceRef
from auditor.pipeline import run_pipeline
from tests.conftest import EXAMPLES, PROJECT
from tests.gitrepo import GitRepo

GOLDEN = PROJECT / "tests" / "cli" / "golden" / "example_audit.json"


def test_every_check_the_example_emits_is_registered_with_its_severity() -> None:
    findings = json.loads(GOLDEN.read_text())["stdout_json"]["findings"]
    emitted = {f["check"] for f in findings if f["category"] != "policy"}
    assert emitted, "the golden record holds drift and provenance findings"
    for finding in findings:
        if finding["category"] == "policy":
            continue  # a policy's id is its check; its severity comes from METADATA
        entry = checks.check(finding["check"])
        assert entry.category == finding["category"]
        if finding["check"] not in (checks.DRIFT_CHANGED, checks.DRIFT_REMOVED):
            assert entry.severity == finding["severity"], finding["check"]


def test_every_check_id_written_in_the_code_is_registered() -> None:
    # a literal check id outside the registry is a check nobody can configure or document
    literal = re.compile(r"[\"'](?:drift|provenance|policy)\.[a-z_]+[\"']")
    unknown = set()
    for path in (PROJECT / "auditor").rglob("*.py"):
        for found in literal.findall(path.read_text()):
            check_id = found.strip("\"'")
            if check_id not in checks.CHECKS and not check_id.startswith(
                ("provenance.attestations", "policy.enabled")
            ):
                unknown.add(f"{path.relative_to(PROJECT)}: {check_id}")
    assert not unknown, sorted(unknown)


def test_the_not_configured_reason_is_the_registered_id() -> None:
    # model.py sits below checks.py, so it spells the id out; the two must agree
    assert ProvenanceResult.not_configured().reasons[0].check == checks.NOT_CONFIGURED


def test_every_registered_check_has_a_title_and_help() -> None:
    for entry in checks.CHECKS.values():
        assert entry.title and entry.help.endswith("."), entry.id
        assert entry.id.split(".")[0] in ("drift", "provenance", "policy")


def test_overrides_leave_other_checks_alone() -> None:
    finding = checks.finding(checks.UNSIGNED, ref=_ref(), path="/provenance/signature", message="m")
    assert finding.severity == "high" and finding.category == "provenance"
    (same,) = checks.apply_overrides([finding], {"drift.missing": "low"})
    assert same == finding
    (lowered,) = checks.apply_overrides([finding], {checks.UNSIGNED: "low"})
    assert lowered == dataclasses.replace(finding, severity="low")


@pytest.fixture(scope="module")
def example_with_overrides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = GitRepo(tmp_path_factory.mktemp("overrides") / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    config = repo.path / "examples" / "auditor.yaml"
    config.write_text(
        config.read_text()
        + "severity:\n  checks:\n"
        + "    provenance.digest_mismatch: low\n"
        + "    auditor.provenance.model_signed: info\n"
        + "    drift.missing: medium\n"
    )
    repo.commit("example with severity overrides")
    return config


def test_severity_overrides_reach_drift_provenance_and_policy(
    example_with_overrides: Path,
) -> None:
    result = run_pipeline(load_config(example_with_overrides))
    by_check: dict[str, set[str]] = {}
    for finding in result.findings:
        by_check.setdefault(finding.check, set()).add(finding.severity)
    assert by_check["provenance.digest_mismatch"] == {"low"}
    assert by_check["auditor.provenance.model_signed"] == {"info"}
    assert by_check["drift.missing"] == {"medium"}
    # and nothing else moved: the dataset mismatch keeps its registered severity
    assert by_check["provenance.dataset_mismatch"] == {"high"}
    assert result.run.counts["info"] >= 2


def _ref() -> ResourceRef:
    return ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "scorer")
