"""A fleet run audited by one process and the same run as shards merged: the merged store
answers `findings` and `report` exactly as the single process's store does.

The fleet is 40 snapshot clusters (tests/fleet/world.py); the shards are three
`run_audit(..., fleet=Fleet(Shard(i, 3)))` runs into stores of their own, merged with
`merge_stores` (and `auditor store merge` through the CLI where the exit code matters).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.config import Config, load_config
from auditor.errors import ConfigError
from auditor.pipeline import Fleet, run_audit
from auditor.reports.runjson import report_document
from auditor.shards import Shard
from auditor.store import Store
from auditor.store.merge import merge_stores
from auditor.store.values import parse_time
from tests.conftest import GitRepo, run_cli
from tests.fleet import world

CLUSTERS = 40
SHARDS = 3
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@pytest.fixture
def fleet(git_repo: GitRepo, tmp_path: Path) -> Config:
    world.write_repo(git_repo)
    snapshots = world.write_snapshots(tmp_path / "live", CLUSTERS)
    return load_config(world.write_config(tmp_path / "auditor.yaml", git_repo.path, snapshots))


def next_night(tmp_path: Path, night: int) -> None:
    """The same clusters' snapshots, taken on a later night."""
    world.write_snapshots(tmp_path / "live", CLUSTERS, night=night)


def audit_shards(config: Config, folder: Path, run_id: str) -> list[Path]:
    stores = []
    for index in range(SHARDS):
        store = folder / run_id / f"shard-{index}.db"
        run_audit(config, store_path=str(store), run_id=run_id, fleet=Fleet(Shard(index, SHARDS)))
        stores.append(store)
    return stores


class Normalized:
    """A store's answers with what must differ between two stores taken out: run ids become
    `run-1`, `run-2`... in start order, a run's start time `start of run-N`, other times
    `<time>`, and evaluation timings dropped (two executions never take equally long)."""

    def __init__(self, store: Store) -> None:
        runs = sorted(store.runs(), key=lambda r: r["started"])
        self.ids = {r["id"]: f"run-{n}" for n, r in enumerate(runs, 1)}
        self.starts = {parse_time(r["started"]): f"start of run-{n}" for n, r in enumerate(runs, 1)}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items() if k != "duration_ms"}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            if value in self.ids:
                return self.ids[value]
            if _TIME.match(value):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return self.starts.get(moment, "<time>")
        return value


def answers(path: Path) -> dict[str, Any]:
    """What `auditor findings` and `auditor report --format json` show, for every run."""
    with Store.open(path) as store:
        norm = Normalized(store)
        reports = {}
        for row in store.runs():
            report = store.report(row["id"])
            assert report is not None
            reports[norm.ids[row["id"]]] = norm(report_document(report))
        return {
            "open": norm([f.to_json() for f in store.known_findings(open_only=True)]),
            "known": norm([f.to_json() for f in store.known_findings()]),
            "reports": reports,
        }


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_forty_clusters_as_three_shards_merge_into_the_single_process_run(
    fleet: Config, tmp_path: Path
) -> None:
    single = tmp_path / "single.db"
    one = run_audit(fleet, store_path=str(single))
    shards = audit_shards(fleet, tmp_path / "shards", "fleet-night-1")
    [outcome] = merge_stores(tmp_path / "merged.db", shards).runs

    expected, merged = answers(single), answers(tmp_path / "merged.db")
    assert merged["open"] == expected["open"]
    assert merged["reports"] == expected["reports"]
    # what was compared is the whole fleet, with findings in many clusters
    assert outcome.status == "complete" and one.run.status == "complete"
    assert len(expected["open"]) == len(one.findings) > CLUSTERS
    assert {f["cluster"] for f in expected["open"]} >= {
        world.cluster_name(i) for i in range(0, CLUSTERS, 3)
    }
    report = expected["reports"]["run-1"]
    assert len(report["run"]["clusters"]) == CLUSTERS
    assert {c["status"] for c in report["run"]["clusters"]} == {"complete"}


def test_each_shard_audits_its_own_clusters_and_together_all(fleet: Config, tmp_path: Path) -> None:
    seen: list[str] = []
    for store_path in audit_shards(fleet, tmp_path / "shards", "fleet-1"):
        with Store.open(store_path) as store:
            [row] = store.runs()
            names = [c["name"] for c in row["clusters"]]
            assert 0 < len(names) < CLUSTERS  # 40 names spread over 3 shards
            assert names == sorted(names)  # in configured order
            seen += names
    assert sorted(seen) == [world.cluster_name(i) for i in range(CLUSTERS)]


def test_two_nights_merged_keep_the_history_of_one_process(fleet: Config, tmp_path: Path) -> None:
    single = tmp_path / "single.db"
    merged = tmp_path / "merged.db"
    run_audit(fleet, store_path=str(single))
    merge_stores(merged, audit_shards(fleet, tmp_path / "shards", "night-1"))
    next_night(tmp_path, night=1)
    run_audit(fleet, store_path=str(single))
    result = run_cli(
        "store", "merge", str(merged),
        *map(str, audit_shards(fleet, tmp_path / "shards", "night-2")), "-o", "json",
    )  # fmt: skip

    assert result.code == 1, result.err  # findings at high or above, as audit would exit
    assert json.loads(result.out)["runs"][0]["status"] == "complete"
    expected, got = answers(single), answers(merged)
    assert got == expected
    states = {(f["status"], f["first_seen"], f["open_since"]) for f in expected["known"]}
    # the second night resolved findings of the first, kept others open and opened new ones
    assert ("resolved", "start of run-1", None) in states
    assert ("open", "start of run-1", "start of run-1") in states
    assert ("open", "start of run-2", "start of run-2") in states
    findings_single = run_cli("findings", "--store", str(single), "-o", "json")
    findings_merged = run_cli("findings", "--store", str(merged), "-o", "json")
    with Store.open(single) as a, Store.open(merged) as b:
        norm_a, norm_b = Normalized(a), Normalized(b)
    assert norm_b(json.loads(findings_merged.out)) == norm_a(json.loads(findings_single.out))


def test_merging_the_same_shards_again_changes_nothing(fleet: Config, tmp_path: Path) -> None:
    shards = audit_shards(fleet, tmp_path / "shards", "fleet-1")
    out = tmp_path / "merged.db"
    [first] = merge_stores(out, shards).runs
    before = dump(out)

    [again] = merge_stores(out, [shards[2], shards[0], shards[1], shards[0]]).runs

    assert dump(out) == before
    assert first.merged and not again.merged
    assert (again.status, again.exit_code) == (first.status, first.exit_code)


def test_a_missing_shard_leaves_the_fleet_run_incomplete_and_keeps_the_rest(
    fleet: Config, tmp_path: Path
) -> None:
    shards = audit_shards(fleet, tmp_path / "shards", "fleet-1")
    out = tmp_path / "merged.db"
    result = run_cli("store", "merge", str(out), str(shards[0]), str(shards[2]))

    assert result.code == 3, result.err
    with Store.open(out) as store, Store.open(shards[1]) as lost:
        report = store.report("fleet-1")
        [lost_run] = lost.runs()
        assert report is not None and report.run.status == "incomplete"
        lost_clusters = [c["name"] for c in lost_run["clusters"]]
        not_audited = [c.name for c in report.run.clusters if c.status == "not audited"]
        assert not_audited == lost_clusters
        [error] = report.errors
        assert error.stage == "fleet" and "shard 1/3 of run fleet-1" in error.message
        assert all(name in error.message for name in lost_clusters)
        # the other shards' findings are all there, none of the lost shard's
        clusters = {f.finding.ref.cluster for f in report.findings}
        assert clusters and not clusters & set(lost_clusters)
        kept = set()
        for path in (shards[0], shards[2]):
            with Store.open(path) as shard:
                kept |= {f["fingerprint"] for f in shard.findings("fleet-1")}
        assert {f.finding.fingerprint for f in report.findings} == kept

    late = run_cli("store", "merge", str(out), str(shards[1]))
    assert late.code == 2 and "came too late" in late.err


def test_shards_that_audited_different_commits_are_refused(
    fleet: Config, git_repo: GitRepo, tmp_path: Path
) -> None:
    first = tmp_path / "s0.db"
    run_audit(fleet, store_path=str(first), run_id="f", fleet=Fleet(Shard(0, 2)))
    git_repo.write("ml/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    git_repo.commit("moved on")
    second = tmp_path / "s1.db"
    run_audit(fleet, store_path=str(second), run_id="f", fleet=Fleet(Shard(1, 2)))

    with pytest.raises(ConfigError, match="audited different commits"):
        merge_stores(tmp_path / "merged.db", [first, second])
    with Store.open(tmp_path / "merged.db") as store:
        assert store.runs() == []


def test_a_store_without_shard_runs_is_not_merged(fleet: Config, tmp_path: Path) -> None:
    plain = tmp_path / "plain.db"
    run_audit(fleet, store_path=str(plain))
    result = run_cli("store", "merge", str(tmp_path / "merged.db"), str(plain))
    assert result.code == 2
    assert "not a shard store" in result.err and "Traceback" not in result.err


def test_a_shard_needs_a_valid_shard_a_store_and_a_run_id(fleet: Config, tmp_path: Path) -> None:
    def audit(*args: str) -> str:
        result = run_cli("audit", "--config", fleet.path, *args, cwd=tmp_path)
        assert result.code == 2 and "Traceback" not in result.err
        return result.err

    assert "index must be 0 to N-1" in audit("--shard", "3/3", "--run-id", "f", "--store", "x.db")
    assert "write I/N" in audit("--shard", "1of3", "--run-id", "f", "--store", "x.db")
    assert "--shard needs a store" in audit("--shard", "0/3", "--run-id", "f")
    assert "--shard needs --run-id" in audit("--shard", "0/3", "--store", "x.db")
    assert "run id" in audit("--shard", "0/3", "--run-id", "../x", "--store", "x.db")
    assert not (tmp_path / "x.db").exists()


def test_shards_that_hold_no_cluster_record_empty_runs_the_merge_accounts_for(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    world.write_repo(git_repo)
    snapshots = world.write_snapshots(tmp_path / "live", 3)
    config = load_config(
        world.write_config(tmp_path / "auditor.yaml", git_repo.path, snapshots, policies=False)
    )
    stores = []
    for index in range(6):  # 3 clusters over 6 shards: at least 3 shards are empty
        store = tmp_path / f"shard-{index}.db"
        result = run_audit(config, store_path=str(store), run_id="f", fleet=Fleet(Shard(index, 6)))
        assert result.run.status == "complete"
        stores.append(store)
    [outcome] = merge_stores(tmp_path / "merged.db", stores).runs
    single = tmp_path / "single.db"
    run_audit(config, store_path=str(single))

    assert outcome.status == "complete" and outcome.shards == (0, 1, 2, 3, 4, 5)
    assert answers(tmp_path / "merged.db") == answers(single)
