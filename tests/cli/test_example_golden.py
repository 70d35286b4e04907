"""The example audit's whole observable behaviour, pinned: stdout JSON, exit code, and every
row of every store table, compared with `golden/example_audit.json`.

Refactors of the joins between stages must leave all of it unchanged. What legitimately
varies between runs (run id, clock times, the commit of the test repository, temporary paths)
is replaced by placeholders before comparing. When a change is meant to alter what the example
produces, regenerate with `AUDITOR_UPDATE_GOLDEN=1 pytest tests/cli/test_example_golden.py`
and review the diff of the golden file like any other change.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, PROJECT, run_cli
from tests.gitrepo import GitRepo

GOLDEN = Path(__file__).parent / "golden" / "example_audit.json"
# The clock's times carry microseconds; the example's own (managedFields) never do.
# Secret values are keyed digests under a key made per run: equal within a run, never across.
SECRET_DIGEST = re.compile(r"hmac-sha256:[0-9a-f]{64}")
CLOCK_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(\+00:00|Z)")
# ... and as reports show them to people, to the minute.
REPORT_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
# Clock columns: everything else (changed_by_time, say) comes from the example's data.
CLOCK_KEYS = {
    "started",
    "finished",
    "applied_at",
    "first_seen",
    "last_seen",
    "open_since",
    "resolved_at",
}
# Integer row ids depend on insertion order only, which the other columns already pin.
ROW_ID_KEYS = {"id"}
TIMING_KEYS = {"duration_ms", "duration_us"}
# Content keys hash what they key, temporary paths included: the content is compared instead.
DIGEST_KEYS = {"digest", "trust_policy_digest"}


def _scrub(value: Any, subs: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
        value = REPORT_TIME.sub("<time>", CLOCK_TIME.sub("<time>", value))
        return SECRET_DIGEST.sub("<secret digest>", value)
    if isinstance(value, list):
        return [_scrub(v, subs) for v in value]
    if isinstance(value, dict):
        return {
            k: ("<time>" if k in CLOCK_KEYS and v else _scrub(v, subs)) for k, v in value.items()
        }
    return value


def _decoded(value: Any) -> Any:
    """JSON columns compared as values, so key order in a column is not a difference; bytes
    (fingerprints the store keeps as 16 bytes) as hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _store_rows(store: Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(store)
    db.row_factory = sqlite3.Row
    tables = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        rows = [
            {
                k: "<ms>" if k in TIMING_KEYS else _decoded(row[k])
                for k in row.keys()  # noqa: SIM118
                if not (k in ROW_ID_KEYS and isinstance(row[k], int)) and k not in DIGEST_KEYS
            }
            for row in db.execute(f'SELECT * FROM "{table}"')
        ]
        out[table] = rows
    db.close()
    return out


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repo = GitRepo(tmp_path_factory.mktemp("golden-repo") / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    repo.commit("example")
    work = tmp_path_factory.mktemp("golden")
    store, report = work / "audit.db", work / "report.md"
    config = repo.path / "examples" / "auditor.yaml"
    result = run_cli(
        "audit", "--config", str(config), "--store", str(store), "--report", str(report)
    )
    json_result = run_cli(
        "audit", "--config", str(config), "--store", str(work / "2.db"), "-o", "json"
    )
    document = json.loads(json_result.out)
    commit = document["commit"]
    run_id = document["run"]["id"]
    rows = _store_rows(store)
    stored_id = rows["runs"][0]["id"]
    subs = [
        (stored_id, "<run>"),
        (run_id, "<run>"),
        (str(work), "<work>"),
        (str(repo.path), "<repo>"),
        # the shipped policy library is read from wherever the project is checked out
        (str(PROJECT), "<project>"),
        (commit, "<commit>"),
        (commit[:12], "<commit>"),
        (commit[:7], "<commit>"),
    ]
    for table in rows.values():
        for row in table:
            for key in list(row):
                if key in CLOCK_KEYS and row[key]:
                    row[key] = "<time>"
    scrubbed = _scrub(
        {
            "exit_code": result.code,
            "json_exit_code": json_result.code,
            "stdout_json": document,
            "report_md": report.read_text(),
            "store": rows,
        },
        subs,
    )
    # Rows in an order of their scrubbed text: sorted before, a row holding the commit would
    # move with the commit's hash, which changes with every file of the project.
    for table_rows in scrubbed["store"].values():
        table_rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return scrubbed


def test_example_audit_is_exactly_the_golden_record(observed: dict[str, Any]) -> None:
    text = json.dumps(observed, indent=1, sort_keys=True, default=str) + "\n"
    if os.environ.get("AUDITOR_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    golden = json.loads(GOLDEN.read_text())
    for key in ("exit_code", "json_exit_code", "stdout_json", "report_md"):
        assert observed[key] == golden[key], key
    assert sorted(observed["store"]) == sorted(golden["store"])
    for table, rows in golden["store"].items():
        assert observed["store"][table] == rows, f"store table {table}"


def test_golden_record_pins_findings_and_fingerprints(observed: dict[str, Any]) -> None:
    # Guards against a golden file that was regenerated empty: the example has findings of
    # every category, each with a fingerprint the store keeps.
    findings = observed["stdout_json"]["findings"]
    assert {f["category"] for f in findings} == {"drift", "provenance", "policy"}
    stored = {r["fingerprint"] for r in observed["store"]["findings"]}
    assert {f["fingerprint"] for f in findings} == stored
    assert observed["exit_code"] == 1
