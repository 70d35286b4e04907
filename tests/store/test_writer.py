"""Recording runs: round trips, incomplete runs, and runs that die before they finish."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.model import StageError
from auditor.store import ResourceRecord, Store, new_run_id
from tests.store.factories import make_finding, make_record, make_run, ref


def integrity(store: Store) -> str:
    return store.db.execute("PRAGMA integrity_check").fetchone()[0]


def test_new_run_ids_sort_by_time_and_differ_within_a_second() -> None:
    now = datetime(2026, 11, 23, 16, 56, tzinfo=UTC)
    first, second = new_run_id(now), new_run_id(now)
    assert re.fullmatch(r"20261123T165600Z-[0-9a-f]{8}", first)
    assert first != second
    assert new_run_id(now.replace(minute=57)) > max(first, second)


def test_a_run_reads_back_with_its_resources_findings_and_errors(store: Store) -> None:
    run = make_run("r1", counts={"resources": 2, "drifted": 1, "in_sync": 1})
    finding = make_finding()
    store.record_run(
        run,
        resources=[make_record("fraud-scorer"), make_record("churn", "in_sync")],
        findings=[finding],
        errors=[StageError("provenance", "no bundle", target="ml/fraud-scorer", cluster="prod-eu")],
        exit_code=1,
        config_path="/etc/auditor/auditor.yaml",
    )

    row = store.run("r1")
    assert row is not None
    assert row["status"] == "complete"
    assert row["started"] == "2026-11-23T16:56:00.000000Z"
    assert row["finished"] == "2026-11-23T16:56:42.000000Z"
    assert row["exit_code"] == 1
    assert row["trigger"] == "cron"
    assert row["git_commit"] == run.git_commit
    assert row["config_path"] == "/etc/auditor/auditor.yaml"
    assert row["counts"] == {"resources": 2, "drifted": 1, "in_sync": 1}
    assert row["clusters"] == [cluster.to_json() for cluster in run.clusters]
    assert row["auditor_version"]

    [stored] = store.findings("r1")
    assert stored["fingerprint"] == finding.fingerprint
    assert (stored["category"], stored["check_id"], stored["severity"], stored["class"]) == (
        "drift",
        "drift.changed",
        "critical",
        "model",
    )
    assert (stored["kind"], stored["namespace"], stored["name"], stored["path"]) == (
        "InferenceService",
        "ml",
        "fraud-scorer",
        "/spec/predictor/model/storageUri",
    )
    assert stored["expected"] == finding.expected and stored["actual"] == finding.actual
    assert stored["details"] == dict(finding.details)
    assert stored["controls"] == ["SOC2-CC8.1"]
    assert stored["changed_by_manager"] == "kubectl-edit"
    assert stored["changed_by_time"] == "2026-11-23T02:13:00Z"

    assert [(r["name"], r["status"], r["body_digest"]) for r in store.resources("r1")] == [
        ("churn", "in_sync", "sha256:" + "ab" * 32),
        ("fraud-scorer", "drifted", "sha256:" + "ab" * 32),
    ]
    [error] = store.errors("r1")
    assert {k: error[k] for k in ("stage", "cluster", "target", "message")} == {
        "stage": "provenance",
        "cluster": "prod-eu",
        "target": "ml/fraud-scorer",
        "message": "no bundle",
    }


JSON_VALUES: list[Any] = [
    None,
    "null",
    "",
    "gs://models/fraud/v3",
    "ünïcödé ✓",
    0,
    -3,
    2.5,
    True,
    False,
    [],
    {},
    ["a", 1, None, [True]],
    {"containers": [{"name": "kserve", "resources": {"limits": {"cpu": "1"}}}], "n": None},
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=lambda value: json.dumps(value)[:30])
def test_expected_and_actual_round_trip_exactly_as_plain_json(store: Store, value: Any) -> None:
    store.record_run(
        make_run("r1"), findings=[make_finding(expected=value, actual=[value])], exit_code=1
    )
    [stored] = store.findings("r1")
    assert stored["expected"] == value and type(stored["expected"]) is type(value)
    assert stored["actual"] == [value]
    raw = store.db.execute("SELECT expected, json_valid(expected) FROM findings").fetchone()
    assert raw == (json.dumps(value, ensure_ascii=False), 1)


def test_an_incomplete_run_is_recorded_with_its_errors(store: Store) -> None:
    run = make_run("r1", status="incomplete")
    errors = [
        StageError("live", "cluster unreachable: connection refused", cluster="prod-us"),
        StageError("live", "forbidden", target="inferenceservices.serving.kserve.io in ml"),
    ]
    store.record_run(run, findings=[make_finding()], errors=errors, exit_code=3)
    latest = store.run("latest")
    assert latest is not None
    assert (latest["id"], latest["status"], latest["exit_code"]) == ("r1", "incomplete", 3)
    assert [(e["stage"], e["cluster"], e["target"], e["message"]) for e in store.errors("r1")] == [
        ("live", "prod-us", "", "cluster unreachable: connection refused"),
        ("live", "", "inferenceservices.serving.kserve.io in ml", "forbidden"),
    ]


def test_begin_run_commits_a_running_unfinished_row_at_once(store: Store, store_path: Path) -> None:
    store.begin_run(make_run("r1"), config_path="auditor.yaml")
    with Store.open(store_path) as other:  # another process sees it already
        row = other.run("r1")
    assert row is not None
    assert (row["status"], row["finished"], row["exit_code"]) == ("running", None, None)
    assert store.run("latest") is None  # an unfinished run is never "the latest run"


def test_an_exception_inside_finish_run_rolls_everything_back(store: Store) -> None:
    run = make_run("r1")
    store.begin_run(run)
    good = [make_finding(f"model-{n}") for n in range(300)]
    not_json = make_finding("broken", expected={"when": datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match=r"InferenceService ml/broken.*expected is not JSON"):
        store.finish_run(
            run,
            resources=[make_record()],
            findings=[*good, not_json],
            errors=[StageError("policy", "boom")],
            exit_code=1,
        )
    row = store.run("r1")
    assert row is not None
    assert (row["status"], row["finished"], row["exit_code"]) == ("running", None, None)
    for table in ("findings", "resources", "errors", "run_findings", "run_resources"):
        assert store.db[table].count == 0, table
    assert integrity(store) == "ok"
    # The store is still usable: the failure did not leave a transaction open.
    store.record_run(make_run("r2", minutes=1), findings=good, exit_code=1)
    assert len(store.findings("r2")) == 300


def test_finish_run_refuses_a_run_that_was_never_begun_or_is_already_finished(
    store: Store,
) -> None:
    with pytest.raises(ValueError, match="never begun"):
        store.finish_run(make_run("r1"), resources=[], findings=[], errors=[], exit_code=0)
    store.record_run(make_run("r1"), findings=[make_finding()], exit_code=1)
    with pytest.raises(ValueError, match="already finished"):
        store.finish_run(
            make_run("r1"), resources=[], findings=[make_finding()], errors=[], exit_code=0
        )
    assert len(store.findings("r1")) == 1
    with pytest.raises(ValueError, match="already in the store"):
        store.begin_run(make_run("r1"))


def test_a_run_finished_without_a_finish_time_is_stamped_now(store: Store) -> None:
    run = dataclasses.replace(make_run("r1"), finished=None)
    store.record_run(run, exit_code=0)
    row = store.run("r1")
    assert row is not None and row["finished"] is not None and row["finished"].endswith("Z")


def test_a_resource_record_with_an_unknown_status_names_the_resource() -> None:
    with pytest.raises(ValueError, match=r"InferenceService ml/fraud-scorer.*'drift'"):
        ResourceRecord(ref(), "drift", "cluster")


def test_deleting_a_run_deletes_its_rows(store: Store) -> None:
    store.record_run(
        make_run("r1"),
        resources=[make_record()],
        findings=[make_finding()],
        errors=[StageError("live", "forbidden")],
        exit_code=3,
    )
    store.db.execute("DELETE FROM runs WHERE id = 'r1'")
    for table in ("run_findings", "run_resources", "run_evaluations", "errors", "findings"):
        assert store.db[table].count == 0, table


def test_a_write_lock_held_past_the_busy_timeout_is_a_store_error(tmp_path: Path) -> None:
    import sqlite3

    from auditor.errors import StoreError

    path = tmp_path / "locked.db"
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        store = Store.open(path, busy_timeout=0.2)
        with pytest.raises(StoreError) as caught:
            store.begin_run(make_run(new_run_id(datetime.now(UTC))))
        assert str(path) in caught.value.diagnostics()
        assert caught.value.exit_code == 3
        store.close()
    finally:
        holder.rollback()
        holder.close()
