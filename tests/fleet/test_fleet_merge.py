"""A fleet run audited by one process and the same run as shards merged: the merged store
answers `findings` and `report` exactly as the single process's store does.

The fleet is 40 snapshot clusters (tests/fleet/world.py), audited once for the module by one
process and as three `run_audit(..., fleet=Fleet(Shard(i, 3)))` runs into stores of their
own; each test merges those stores (read, never changed) with `merge_stores` (and
`auditor store merge` through the CLI where the exit code matters) into a store of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.config import Config, load_config
from auditor.errors import ConfigError
from auditor.model import AuditResult
from auditor.pipeline import Fleet, run_audit
from auditor.shards import Shard
from auditor.store import Store
from auditor.store.merge import merge_stores
from tests.conftest import GitRepo, run_cli, run_main
from tests.fleet import world
from tests.fleet.answers import Normalized, answers, dump

CLUSTERS = 40
SHARDS = 3
RUN = "fleet-night-1"


@dataclass(frozen=True)
class Night:
    """The fleet's first night: one process's store, and the shard stores of run RUN."""

    config: Config
    single: Path
    result: AuditResult
    shards: list[Path]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    folder = tmp_path_factory.mktemp("fleet")
    with world.git_env():
        config = load_config(world.fleet_in(folder, CLUSTERS)[1])
        single = folder / "single.db"
        result = run_audit(config, store_path=str(single))
        yield Night(config, single, result, audit_shards(config, folder / "shards", RUN))


def audit_shards(config: Config, folder: Path, run_id: str) -> list[Path]:
    stores = []
    for index in range(SHARDS):
        store = folder / run_id / f"shard-{index}.db"
        run_audit(config, store_path=str(store), run_id=run_id, fleet=Fleet(Shard(index, SHARDS)))
        stores.append(store)
    return stores


def copy_store(source: Path, target: Path) -> Path:
    """A store to add runs to, leaving the module's as it is."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def test_forty_clusters_as_three_shards_merge_into_the_single_process_run(
    night: Night, tmp_path: Path
) -> None:
    [outcome] = merge_stores(tmp_path / "merged.db", night.shards).runs

    expected, merged = answers(night.single), answers(tmp_path / "merged.db")
    assert merged["open"] == expected["open"]
    assert merged["reports"] == expected["reports"]
    # what was compared is the whole fleet, with findings in many clusters
    assert outcome.status == "complete" and night.result.run.status == "complete"
    assert len(expected["open"]) == len(night.result.findings) > CLUSTERS
    assert {f["cluster"] for f in expected["open"]} >= {
        world.cluster_name(i) for i in range(0, CLUSTERS, 3)
    }
    report = expected["reports"]["run-1"]
    assert len(report["run"]["clusters"]) == CLUSTERS
    assert {c["status"] for c in report["run"]["clusters"]} == {"complete"}


def test_each_shard_audits_its_own_clusters_and_together_all(night: Night) -> None:
    seen: list[str] = []
    for store_path in night.shards:
        with Store.open(store_path) as store:
            [row] = store.runs()
            names = [c["name"] for c in row["clusters"]]
            assert 0 < len(names) < CLUSTERS  # 40 names spread over 3 shards
            assert names == sorted(names)  # in configured order
            seen += names
    assert sorted(seen) == [world.cluster_name(i) for i in range(CLUSTERS)]


def test_two_nights_merged_keep_the_history_of_one_process(night: Night, tmp_path: Path) -> None:
    single = copy_store(night.single, tmp_path / "single.db")
    merged = tmp_path / "merged.db"
    merge_stores(merged, night.shards)
    # the same clusters' snapshots, taken on the next night
    snapshots = world.write_snapshots(tmp_path / "live", CLUSTERS, night=1)
    repo = Path(night.config.git.repo)
    config = load_config(world.write_config(tmp_path / "auditor.yaml", repo, snapshots))
    run_audit(config, store_path=str(single))
    result = run_cli(
        "store", "merge", str(merged),
        *map(str, audit_shards(config, tmp_path / "shards", "night-2")), "-o", "json",
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


def test_merging_the_same_shards_again_changes_nothing(night: Night, tmp_path: Path) -> None:
    shards = night.shards
    out = tmp_path / "merged.db"
    [first] = merge_stores(out, shards).runs
    before = dump(out)

    [again] = merge_stores(out, [shards[2], shards[0], shards[1], shards[0]]).runs

    assert dump(out) == before
    assert first.merged and not again.merged
    assert (again.status, again.exit_code) == (first.status, first.exit_code)


def test_a_missing_shard_leaves_the_fleet_run_incomplete_and_keeps_the_rest(
    night: Night, tmp_path: Path
) -> None:
    shards = night.shards
    out = tmp_path / "merged.db"
    result = run_cli("store", "merge", str(out), str(shards[0]), str(shards[2]))

    assert result.code == 3, result.err
    with Store.open(out) as store, Store.open(shards[1]) as lost:
        report = store.report(RUN)
        [lost_run] = lost.runs()
        assert report is not None and report.run.status == "incomplete"
        lost_clusters = [c["name"] for c in lost_run["clusters"]]
        not_audited = [c.name for c in report.run.clusters if c.status == "not audited"]
        assert not_audited == lost_clusters
        [error] = report.errors
        assert error.stage == "fleet" and f"shard 1/3 of run {RUN}" in error.message
        assert all(name in error.message for name in lost_clusters)
        # the other shards' findings are all there, none of the lost shard's
        clusters = {f.finding.ref.cluster for f in report.findings}
        assert clusters and not clusters & set(lost_clusters)
        kept = set()
        for path in (shards[0], shards[2]):
            with Store.open(path) as shard:
                kept |= {f["fingerprint"] for f in shard.findings(RUN)}
        assert {f.finding.fingerprint for f in report.findings} == kept

    late = run_cli("store", "merge", str(out), str(shards[1]))
    assert late.code == 2 and "came too late" in late.err


def test_shards_that_audited_different_commits_are_refused(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    world.write_repo(git_repo)
    snapshots = world.write_snapshots(tmp_path / "live", 6)
    config = world.write_config(tmp_path / "auditor.yaml", git_repo.path, snapshots, policies=False)
    fleet = load_config(config)
    first = tmp_path / "s0.db"
    run_audit(fleet, store_path=str(first), run_id="f", fleet=Fleet(Shard(0, 2)))
    git_repo.write("ml/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    git_repo.commit("moved on")
    second = tmp_path / "s1.db"
    run_audit(fleet, store_path=str(second), run_id="f", fleet=Fleet(Shard(1, 2)))

    with pytest.raises(ConfigError, match="audited different commits") as info:
        merge_stores(tmp_path / "merged.db", [first, second])
    assert "--pin-commit" in info.value.diagnostics()  # how to keep shards on one commit
    with Store.open(tmp_path / "merged.db") as store:
        assert store.runs() == []


def test_a_store_without_shard_runs_is_not_merged(night: Night, tmp_path: Path) -> None:
    result = run_cli("store", "merge", str(tmp_path / "merged.db"), str(night.single))
    assert result.code == 2
    assert "not a shard store" in result.err and "Traceback" not in result.err


def test_a_shard_needs_a_valid_shard_a_store_and_a_run_id(
    night: Night,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)

    def audit(*args: str) -> str:
        result = run_main(capsys, "audit", "--config", night.config.path, *args)
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
