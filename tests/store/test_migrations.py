"""Migrations from every earlier schema: a store written by an earlier auditor, opened by this
one, reads back exactly as the same runs written by this auditor into a new store: every
run's report, every finding's history, the views people query."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.config import load_config
from auditor.errors import ConfigError
from auditor.model import PolicyMessage
from auditor.pipeline import run_pipeline
from auditor.reports.render import render
from auditor.store import ResourceRecord, Store
from auditor.store.migrations import LATEST_VERSION
from tests.conftest import EXAMPLES
from tests.gitrepo import GitRepo
from tests.reports import builders
from tests.store.factories import make_run, ref
from tests.store.legacy import legacy_store, write_run, write_run_v3


def plan() -> list[dict[str, Any]]:
    """Four runs with findings that come and go, evaluations with messages, an incomplete run."""
    runs = []
    for index, (run_id, status, findings) in enumerate(
        [
            ("r1", "complete", [builders.MODEL, builders.REPLICAS]),
            ("r2", "complete", [builders.MODEL, builders.REPLICAS, builders.HOSTILE]),
            ("r3", "incomplete", [builders.MODEL, builders.HOSTILE, builders.UNSIGNED]),
            ("r4", "complete", [builders.HOSTILE, builders.UNSIGNED, builders.POLICY]),
        ]
    ):
        evaluation = builders._evaluations(index == 3)
        evaluation[1] = evaluation[1].__class__(
            "auditor.x",
            ref("ranker"),
            "warn",
            (PolicyMessage("warn", "<b>hm</b>", {"k": [1, None]}),),
            1.5,
        )
        runs.append(
            {
                "run": make_run(run_id, minutes=60 * index, status=status),  # type: ignore[arg-type]
                "resources": [
                    r.__class__(r.ref, r.status, r.origin, r.body_digest)
                    for r in builders._resources()
                ],
                "findings": findings,
                "errors": [builders.StageError("live", "forbidden")]
                if status == "incomplete"
                else [],
                "evaluations": evaluation,
                "exit_code": 1,
            }
        )
    return runs


def legacy_store_with_plan(path: Path, version: int) -> Any:
    """A store of schema `version`, written as that version wrote it, holding every run of
    the plan."""
    db = legacy_store(path, version)
    for entry in plan():
        write_run(db, version, **entry)
    return db


def _decoded(value: Any) -> Any:
    """JSON columns compared as values: a view may build them without spaces."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def observed(path: Path, run_ids: tuple[str, ...] = ("r1", "r2", "r3", "r4")) -> dict[str, Any]:
    with Store.open(path) as store:
        reports = {}
        for run_id in run_ids:
            report = store.report(run_id)
            assert report is not None
            reports[run_id] = json.loads(render(report, "json"))
        prints = sorted(
            row["fingerprint"] for row in store.db.query("SELECT fingerprint FROM finding_history")
        )
        views = {
            view: sorted(
                json.dumps({k: _decoded(v) for k, v in dict(row).items()}, sort_keys=True)
                for row in store.db.query(f"SELECT * FROM {view}")
            )
            for view in (
                "findings",
                "resources",
                "evaluations",
                "finding_history",
                "open_findings",
                "policy_summary",
            )
        }
        return {
            "reports": reports,
            "history": {p: store.finding_history(p) for p in prints},
            "views": views,
            "integrity": store.db.execute("PRAGMA integrity_check").fetchone()[0],
        }


@pytest.mark.parametrize("version", range(1, LATEST_VERSION))
def test_a_store_of_every_earlier_schema_reads_back_as_one_written_today(
    tmp_path: Path, version: int
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    db = legacy_store_with_plan(old, version)
    db.close()
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == version

    with Store.open(new) as store:
        for entry in plan():
            if version < 2:  # version 1 kept no evaluations
                entry = {**entry, "evaluations": []}
            store.record_run(**entry)
    migrated = observed(old)
    assert migrated["integrity"] == "ok"
    assert migrated == observed(new)
    with sqlite3.connect(old) as conn:
        assert (
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST_VERSION
        )


def test_a_migrated_store_takes_new_runs_and_keeps_their_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = legacy_store(path, 2)
    for entry in plan()[:2]:
        write_run(db, 2, **entry)
    db.close()
    with Store.open(path) as store:
        store.record_run(make_run("r9", minutes=500), findings=[builders.MODEL], exit_code=1)
        history = store.finding_history(builders.MODEL.fingerprint)
        assert history is not None and history["runs_seen"] == 3 and history["status"] == "open"
        replicas = store.finding_history(builders.REPLICAS.fingerprint)
        assert replicas is not None and replicas["status"] == "resolved"


def audited_example(tmp_path: Path) -> list[dict[str, Any]]:
    """The example audit run for real (Git repo, snapshot, shipped policies), recorded as three
    nightly runs: the same results, the first and third complete, the second incomplete."""
    repo = GitRepo(tmp_path / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    repo.commit("example")
    result = run_pipeline(load_config(str(repo.path / "examples" / "auditor.yaml")), run_id="x")
    assert result.findings and result.evaluations and result.attestations
    records = [
        ResourceRecord(s.ref, s.status, s.desired_origin or "", line=s.desired_line)
        for s in result.statuses
    ]
    runs = []
    for index, status in enumerate(("complete", "incomplete", "complete")):
        started = result.run.started + timedelta(days=index)
        runs.append(
            {
                "run": dataclasses.replace(
                    result.run,
                    id=f"r{index + 1}",
                    status=status,
                    started=started,
                    finished=started + timedelta(minutes=3),
                ),
                "resources": records,
                # the second night saw all but the last finding, the third all of them
                "findings": result.findings[:-1] if index == 1 else result.findings,
                "errors": result.errors,
                "evaluations": result.evaluations,
                "attestations": result.attestations,
                "policies": result.policies,
                "exit_code": 1,
            }
        )
    return runs


def test_a_version_3_store_of_a_real_audit_reads_back_as_one_written_today(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    runs = audited_example(tmp_path)
    db = legacy_store(old, 3)
    for entry in runs:
        write_run_v3(db, **entry)
    db.close()
    with Store.open(new) as store:
        for entry in runs:
            store.record_run(**entry)
    migrated, today = observed(old, ("r1", "r2", "r3")), observed(new, ("r1", "r2", "r3"))
    assert migrated["integrity"] == "ok"
    assert migrated["views"]["finding_history"]  # history was there to compare
    assert migrated == today
    # and the migrated store goes on: the same night again keeps one history per finding
    with Store.open(old) as store:
        store.record_run(**{**runs[0], "run": dataclasses.replace(runs[0]["run"], id="r4")})
        assert store.db.execute("SELECT COUNT(*) FROM finding_states").fetchone()[0] == len(
            {f.fingerprint for f in runs[0]["findings"]}
        )
        report = store.report("r4")
        assert report is not None and not any(f.new for f in report.findings)


def test_a_version_6_store_finds_its_finding_contents_again_without_their_digests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = legacy_store(path, 6)
    runs = plan()
    for entry in runs[:2]:
        write_run(db, 6, **entry)
    stored = db.execute("SELECT COUNT(*) FROM finding_contents").fetchone()[0]
    db.close()
    with Store.open(path) as store:
        columns = {c.name for c in store.db.table("finding_contents").columns}
        assert "digest" not in columns and {"finding", "object", "message"} <= columns
        # the second night again: every content is the one version 6 stored
        again = {**runs[1], "run": make_run("r9", minutes=500)}
        store.record_run(**again)
        assert store.db.execute("SELECT COUNT(*) FROM finding_contents").fetchone()[0] == stored

        def rows(run_id: str) -> list[dict[str, Any]]:
            return [
                {k: v for k, v in row.items() if k != "run_id"} for row in store.findings(run_id)
            ]

        assert rows("r9") == rows("r2")
        # a changed finding is a new content of the same finding
        changed = dataclasses.replace(builders.MODEL, message="changed")
        store.record_run(make_run("r10", minutes=600), findings=[changed], exit_code=1)
        assert store.db.execute("SELECT COUNT(*) FROM finding_contents").fetchone()[0] == (
            stored + 1
        )
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_pruned_store_keeps_the_history_of_its_pruned_runs_in_its_older_reports(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = legacy_store_with_plan(path, 7)
    # what `auditor prune` of version 7 left: the first run gone, the history kept
    db.execute("PRAGMA foreign_keys = ON")
    with db.conn:
        db.execute("DELETE FROM runs WHERE id = 'r1'")
    db.close()
    with Store.open(path) as store:
        r2 = store.report("r2")
        assert r2 is not None
        model = next(f for f in r2.findings if f.finding.fingerprint == builders.MODEL.fingerprint)
        # seen by r1 (pruned) and r2, open since r1, as it stood at the end of r2
        first = make_run("r1", minutes=0).started
        assert (model.history.runs_seen, model.history.first_seen) == (2, first)
        assert model.history.open_since == first


def _schema_and_rows(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        return {
            "version": conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0],
            "schema": sorted(conn.execute("SELECT type, name, sql FROM sqlite_master")),
            "fingerprints": conn.execute("SELECT * FROM fingerprints ORDER BY id").fetchall(),
            "open": sorted(map(repr, conn.execute("SELECT * FROM open_findings"))),
        }


def test_a_version_8_store_whose_migration_fails_is_left_as_it_was_and_migrates_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = legacy_store_with_plan(path, 8)
    # the fault: the name version 9 makes its new `fingerprints` under is taken
    db.execute("CREATE TABLE fingerprints_v9 (taken INTEGER)")
    db.close()
    before = _schema_and_rows(path)
    assert before["version"] == 8 and before["open"]
    with pytest.raises(ConfigError, match="schema version 9") as info:
        Store.open(path)
    assert info.value.file == str(path)
    assert _schema_and_rows(path) == before  # views, table, its index and rows: all as they were

    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE fingerprints_v9")
    with Store.open(path) as store:
        names = {i.name: i for i in store.db.table("fingerprints").indexes}
        assert names["fingerprints_fingerprint"].unique and "fingerprints_open" in names
        assert not [n for n in names if n.startswith("sqlite_autoindex")]
    after = _schema_and_rows(path)
    assert after["version"] == LATEST_VERSION
    assert after["fingerprints"] == before["fingerprints"] and after["open"] == before["open"]
