"""Decisions in the store: the batch writer never blocks a response, and what it wrote reads
back through `auditor admission decisions`."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.admission.writer import DecisionWriter
from auditor.admit import StoreSink
from auditor.model import AdmissionDecision, AdmissionRequest, DecisionReason
from auditor.store import Store
from auditor.store.migrations import LATEST_VERSION
from tests.conftest import CliResult, run_main


def decision(uid: str, result: str = "allow", **kwargs: object) -> AdmissionDecision:
    request = AdmissionRequest(
        uid=uid,
        group="apps",
        version="v1",
        kind="Deployment",
        namespace="ml-prod",
        name="llm-server",
        operation="CREATE",
        user_info={"username": "alice@example.com"},
        object={"data": {"password": "hunter2"}},
    )
    return AdmissionDecision(
        request,
        result,  # type: ignore[arg-type]
        time=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        latency_ms=3.5,
        commit="a" * 40,
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_decision_submitted_is_written_by_close(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = DecisionWriter(lambda: StoreSink(str(path)), capacity=100, batch=7)
    reasons = (DecisionReason("provenance.unsigned", "no signature by release-key"),)
    for i in range(30):
        assert writer.submit(decision(f"u{i}", "deny" if i % 3 else "allow", reasons=reasons))
    writer.close()
    with Store.open(path) as store:
        rows = store.decisions()
    assert {r["uid"] for r in rows} == {f"u{i}" for i in range(30)}
    denied = [r for r in rows if not r["allowed"]]
    assert len(denied) == 20
    assert denied[0]["reasons"] == [
        {"check": "provenance.unsigned", "message": "no signature by release-key"}
    ]
    assert rows[0]["commit_sha"] == "a" * 40 and rows[0]["user"] == "alice@example.com"


def test_a_locked_store_drops_what_overflows_the_queue_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    dropped: list[int] = []
    writer = DecisionWriter(
        lambda: StoreSink(str(path)),
        capacity=5,
        batch=1,
        on_error=lambda kind, n: dropped.append(n) if kind == "dropped" else None,
    )
    accepted = [writer.submit(decision(f"u{i}")) for i in range(50)]
    holder.execute("COMMIT")
    holder.close()
    writer.close()
    assert sum(dropped) == accepted.count(False) > 0
    with Store.open(path) as store:
        stored = {r["uid"] for r in store.decisions(limit=100)}
    assert stored == {f"u{i}" for i, ok in enumerate(accepted) if ok}


def test_the_store_keeps_no_object_bodies(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as store:
        store.record_decisions([decision("u1")])
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "hunter2" not in dump
    assert f'INSERT INTO "schema_version" VALUES({LATEST_VERSION},' in dump
    assert "denied_admissions" in dump


def test_decisions_command_lists_denials_with_their_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.db"
    reasons = (DecisionReason("auditor.serving.service_account", "runs as default"),)
    with Store.open(path) as store:
        store.record_decisions([decision("ok"), decision("no", "deny", reasons=reasons)])

    def run_cli(*args: str) -> CliResult:
        return run_main(capsys, *args)

    shown = run_cli("admission", "decisions", "--store", str(path), "--denied")
    assert shown.code == 0, shown.err
    assert "DENY" in shown.out and "Deployment ml-prod/llm-server" in shown.out
    assert "auditor.serving.service_account: runs as default" in shown.out
    assert "ALLOW" not in shown.out
    as_json = json.loads(run_cli("admission", "decisions", "--store", str(path), "-o", "json").out)
    assert [d["uid"] for d in as_json["decisions"]] == ["no", "ok"]
    missing = run_cli("admission", "decisions", "--store", str(tmp_path / "none.db"))
    assert missing.code == 2 and "no store at this path" in missing.err
