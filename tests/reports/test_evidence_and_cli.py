"""`auditor report` through the real CLI: signed in-toto evidence checked by `auditor verify
evidence` (and refused once a report or the envelope changes), and `auditor audit --report`
choosing the format from the file name, refusing one it does not know before the run."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from auditor.exit_codes import ExitCode
from tests.conftest import EXAMPLES, PROJECT, run_cli
from tests.gitrepo import GitRepo
from tests.provenance.attestation_factory import make_key, private_pem
from tests.reports.builders import ThreeRuns

ATTESTATIONS = PROJECT / "attestations"


def write_keys(folder: Path) -> tuple[Path, Path]:
    key = make_key(folder, "p256", name="sign")
    private = folder / "sign.pem"
    private.write_bytes(private_pem(key))
    return private, key.pem_path


def statement_schema() -> jsonschema.Validator:
    registry: Registry = Registry()
    for name in ("in-toto-statement-v1.schema.json", "in-toto-resource-descriptor-v1.schema.json"):
        document = json.loads((ATTESTATIONS / name).read_text())
        registry = registry.with_resource(name, Resource.from_contents(document))
        registry = registry.with_resource(document["$id"], Resource.from_contents(document))
    schema = json.loads((ATTESTATIONS / "in-toto-statement-v1.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_signed_evidence_verifies_with_the_reports_it_names(
    runs: ThreeRuns, tmp_path: Path
) -> None:
    private, public = write_keys(tmp_path)
    envelope, reports = tmp_path / "evidence.intoto.json", tmp_path / "reports"
    made = run_cli(
        "report", "--store", str(runs.path), "--format", "intoto", "--sign-key", str(private),
        "--output", str(envelope), "--reports-dir", str(reports),
    )  # fmt: skip
    assert made.code == 0, made.err
    document = json.loads(envelope.read_text())
    statement = json.loads(base64.b64decode(document["payload"]))
    statement_schema().validate(statement)
    assert statement["predicate"]["run"]["id"] == "r4"
    assert statement["predicate"]["policyBundleDigest"].startswith("sha256:")
    names = {s["name"] for s in statement["subject"]}
    assert {"report.md", "report.html", "report.sarif", "report.junit.xml"} <= names
    assert any("gitCommit" in s["digest"] for s in statement["subject"])

    files = sorted(reports.iterdir())
    args = [arg for f in files for arg in ("--report", str(f))]
    verified = run_cli(
        "verify", "evidence", str(envelope), "--key", str(public), *args, "-o", "json"
    )
    assert verified.code == 0, verified.err
    assert json.loads(verified.out)["predicate"]["run"]["status"] == "complete"

    sarif = reports / "report.sarif"
    sarif.write_text(sarif.read_text().replace('"error"', '"note"'))
    changed = run_cli(
        "verify", "evidence", str(envelope), "--key", str(public), "--report", str(sarif)
    )
    assert (
        changed.code == 1
        and "report.sarif" in changed.err
        and "not one the evidence vouches for" in changed.err
    )

    document["payload"] = base64.b64encode(
        json.dumps({**statement, "predicate": {**statement["predicate"], "findings": 0}}).encode()
    ).decode()
    envelope.write_text(json.dumps(document))
    forged = run_cli("verify", "evidence", str(envelope), "--key", str(public))
    assert forged.code == 1 and "Traceback" not in forged.err


def test_evidence_needs_a_key_and_a_bad_key_is_a_usage_error(
    runs: ThreeRuns, tmp_path: Path
) -> None:
    unsigned = run_cli("report", "--store", str(runs.path), "--format", "intoto")
    assert unsigned.code == 2 and "--sign-key" in unsigned.err
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    result = run_cli(
        "report", "--store", str(runs.path), "--format", "intoto", "--sign-key", str(bad)
    )
    assert result.code == 2 and str(bad) in result.err and "Traceback" not in result.err


def test_verifying_with_a_file_that_is_no_public_key_is_a_usage_error_naming_it(
    runs: ThreeRuns, tmp_path: Path
) -> None:
    private, _ = write_keys(tmp_path)
    envelope = tmp_path / "evidence.intoto.json"
    made = run_cli(
        "report", "--store", str(runs.path), "--format", "intoto", "--sign-key", str(private),
        "--output", str(envelope),
    )  # fmt: skip
    assert made.code == 0, made.err
    not_a_key = tmp_path / "notes.pem"
    not_a_key.write_text("not a key")
    for key in (not_a_key, private):  # a private key is not the public one either
        result = run_cli("verify", "evidence", str(envelope), "--key", str(key))
        assert result.code == ExitCode.USAGE, result.err
        assert f"{key}: --key:" in result.err and "internal error" not in result.err


def test_report_of_an_unknown_run_is_a_usage_error(runs: ThreeRuns) -> None:
    result = run_cli("report", "--store", str(runs.path), "--run", "nope", "--format", "md")
    assert result.code == 2 and "no run 'nope'" in result.err


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    repo = GitRepo(tmp_path_factory.mktemp("example") / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    repo.commit("example")
    return repo.path / "examples" / "auditor.yaml"


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "policyreport", "md"])
def test_a_report_loads_no_signing_code_and_a_machine_format_no_templates(
    runs: ThreeRuns, tmp_path: Path, fmt: str
) -> None:
    """Only `--format intoto` signs: the others leave sigstore (a third of a second to
    import), the signing libraries and, but for md and html, Jinja2 unloaded."""
    out = tmp_path / f"report.{fmt}"
    script = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["auditor", "report", "--store", {str(runs.path)!r}, "--format", {fmt!r},
                    "--output", {str(out)!r}]
        try:
            runpy.run_module("auditor", run_name="__main__")
        except SystemExit as exit:
            assert not exit.code, exit.code
        heavy = ("sigstore", "securesystemslib", "in_toto", "jinja2")
        print(" ".join(name for name in heavy if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    assert done.stdout.split() == (["jinja2"] if fmt == "md" else [])


def test_audit_refuses_a_report_suffix_it_does_not_know_before_the_run(
    example: Path, tmp_path: Path
) -> None:
    store = tmp_path / "audit.db"
    result = run_cli(
        "audit",
        "--config",
        str(example),
        "--store",
        str(store),
        "--report",
        str(tmp_path / "r.txt"),
    )
    assert result.code == 2 and "r.txt" in result.err and ".sarif" in result.err
    assert not store.exists()  # refused before the run: nothing recorded


def test_audit_report_is_rendered_from_the_stored_run_in_the_format_the_name_asks(
    example: Path, tmp_path: Path
) -> None:
    store = tmp_path / "audit.db"
    for name in ("first.md", "second.sarif"):
        result = run_cli(
            "audit",
            "--config",
            str(example),
            "--store",
            str(store),
            "--report",
            str(tmp_path / name),
        )
        assert result.code == 1, result.err
    sarif = json.loads((tmp_path / "second.sarif").read_text())
    [run] = sarif["runs"]
    [stored_id] = [
        r[0]
        for r in sqlite3.connect(store).execute("SELECT id FROM runs ORDER BY started DESC LIMIT 1")
    ]
    assert run["automationDetails"]["id"].endswith(stored_id)
    assert {r["baselineState"] for r in run["results"]} == {"unchanged"}  # the second run: history
    located = [r for r in run["results"] if "physicalLocation" in r["locations"][0]]
    assert any(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".yaml")
        for r in located
    )
    assert "Summary" in (tmp_path / "first.md").read_text()


def test_audit_without_a_store_still_writes_the_report(example: Path, tmp_path: Path) -> None:
    config = example.read_text().replace("store: .auditor/audit.db\n", "")
    (example.parent / "nostore.yaml").write_text(config)
    report = tmp_path / "r.junit.xml"
    result = run_cli(
        "audit", "--config", str(example.parent / "nostore.yaml"), "--report", str(report)
    )
    assert result.code == 1, result.err
    assert report.read_text().startswith('<?xml version="1.0"')
