"""Migrations from every earlier schema: a store written by an earlier auditor, opened by this
one, reads back exactly as the same runs written by this auditor into a new store: every
run's report, every finding's history, the views people query."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from auditor.model import PolicyMessage
from auditor.reports.render import render
from auditor.store import Store
from auditor.store.migrations import LATEST_VERSION
from tests.reports import builders
from tests.store.factories import make_run, ref
from tests.store.legacy import legacy_store, write_run


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


def _decoded(value: Any) -> Any:
    """JSON columns compared as values: a view may build them without spaces."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def observed(path: Path) -> dict[str, Any]:
    with Store.open(path) as store:
        reports = {}
        for run_id in ("r1", "r2", "r3", "r4"):
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
    db = legacy_store(old, version)
    for entry in plan():
        write_run(db, version, **entry)
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
