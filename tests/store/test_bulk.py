"""A store's first run of findings builds the indexes of the tables it fills after its rows:
the store ends with the same indexes, answers the same, and a run that fails keeps them."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from auditor.model import ClusterInfo, Evaluation
from auditor.store import Store
from auditor.store.bulk import TABLES
from tests.store.factories import make_finding, make_record, make_run

FINDINGS = [make_finding(f"model-{n}", severity=("high", "low")[n % 2]) for n in range(2500)]


def indexes(store: Store) -> list[tuple[str, str, str]]:
    return sorted(
        store.db.execute(
            "SELECT tbl_name, name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index'"
        ).fetchall()
    )


def statements(store: Store, run_id: str, minutes: int) -> list[str]:
    """The statements recording a run sends, in order."""
    sent: list[str] = []
    store.db.conn.set_trace_callback(sent.append)
    try:
        store.record_run(
            make_run(run_id, minutes=minutes),
            resources=[make_record()],
            findings=FINDINGS,
            evaluations=[Evaluation("auditor.x", FINDINGS[0].ref, "pass")],
            exit_code=1,
        )
    finally:
        store.db.conn.set_trace_callback(None)
    return sent


def test_the_first_run_drops_the_indexes_of_the_tables_it_fills_and_makes_them_again(
    store: Store,
) -> None:
    before = indexes(store)
    assert {table for table, _, sql in before if sql} >= set(TABLES)
    sent = statements(store, "r1", 0)
    dropped = [s for s in sent if s.startswith("DROP INDEX")]
    made = [s for s in sent if s.startswith("CREATE") and " INDEX " in s]
    assert len(dropped) == len(made) == len([i for i in before if i[0] in TABLES and i[2]])
    # made again after the run's last row, with the text they had
    last_insert = max(n for n, s in enumerate(sent) if s.startswith("INSERT"))
    assert min(sent.index(s) for s in made) > last_insert
    assert indexes(store) == before
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the indexes hold the run: a fingerprint is found through its index
    plan = " ".join(
        row[3]
        for row in store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM fingerprints WHERE fingerprint = ?", [b"x" * 16]
        )
    )
    assert "fingerprints_fingerprint" in plan
    history = store.finding_history(FINDINGS[7].fingerprint)
    assert history is not None and history["runs_seen"] == 1

    # the next run finds everything the first stored, through the same indexes untouched
    sent = statements(store, "r2", 60)
    assert not [s for s in sent if "DROP INDEX" in s or " INDEX " in s]
    assert indexes(store) == before
    history = store.finding_history(FINDINGS[7].fingerprint)
    assert history is not None and history["runs_seen"] == 2 and history["status"] == "open"
    assert store.db["objects"].count == len(FINDINGS) + 1  # each object once: found again
    assert store.db["fingerprints"].count == len(FINDINGS)
    assert store.db["finding_contents"].count == len(FINDINGS)


def test_only_tables_that_are_empty_are_treated_so(store: Store) -> None:
    # A run with resources but no findings fills `objects` and `run_findings` stays empty.
    store.record_run(make_run("r0"), resources=[make_record()], exit_code=0)
    sent = statements(store, "r1", 10)
    dropped = " ".join(s for s in sent if s.startswith("DROP INDEX"))
    assert "objects_cluster" not in dropped
    assert "fingerprints_fingerprint" in dropped and "run_findings_content" in dropped
    assert store.db["objects"].count == len(FINDINGS) + 1  # the resource's object found again


def test_a_first_run_that_fails_keeps_every_index_and_nothing_of_the_run(
    store: Store, store_path: Path
) -> None:
    before = indexes(store)
    run = make_run("r1")
    store.begin_run(run)
    # after a few chunks of findings were written: the failure comes from the last one
    not_json = make_finding("broken", expected={"when": datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match="expected is not JSON"):
        store.finish_run(run, resources=[], findings=[*FINDINGS, not_json], errors=[], exit_code=1)
    assert indexes(store) == before
    for table in TABLES:
        assert store.db[table].count == 0, table
    with Store.open(store_path) as again:  # another process sees the same
        assert indexes(again) == before
    store.record_run(make_run("r2", minutes=1), findings=FINDINGS[:10], exit_code=1)
    assert len(store.known_findings(open_only=True)) == 10
    assert indexes(store) == before


def test_runs_over_two_clusters_find_each_object_again(store: Store) -> None:
    us = [
        dataclasses.replace(f, ref=dataclasses.replace(f.ref, cluster="prod-us")) for f in FINDINGS
    ]
    for index in range(2):
        run = make_run(f"r{index}", minutes=index)
        run = dataclasses.replace(run, clusters=(*run.clusters, ClusterInfo("prod-us")))
        found = [*FINDINGS[:50], *us[:50]] if index == 0 else [*us[:50], *FINDINGS[:50]]
        store.record_run(run, findings=found, exit_code=1)
    assert store.db["objects"].count == 100
    seen = {row[0] for row in store.db.execute("SELECT DISTINCT runs_seen FROM fingerprints")}
    assert seen == {2}
