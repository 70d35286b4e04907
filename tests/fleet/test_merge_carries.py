"""What a fleet merge carries besides the shards' rows: the admission decisions of the
webhook replicas' stores, a policy's failures as one error (as one process reports them), and
one commit for every shard of a run even when its branch moves while they run."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from auditor.config import Config, load_config
from auditor.errors import ConfigError
from auditor.model import AdmissionDecision, AdmissionRequest
from auditor.pipeline import Fleet, run_audit
from auditor.shards import Shard
from auditor.store import Store
from auditor.store.merge import merge_stores
from tests.conftest import GitRepo, run_cli
from tests.fleet import world
from tests.fleet.answers import answers

CLUSTERS = 6


def small_fleet(repo: GitRepo, tmp_path: Path, *, policy_dir: Path | None = None) -> Config:
    world.write_repo(repo)
    snapshots = world.write_snapshots(tmp_path / "live", CLUSTERS)
    path = world.write_config(
        tmp_path / "auditor.yaml", repo.path, snapshots, policies=policy_dir is not None
    )
    if policy_dir is not None:
        raw = yaml.safe_load(path.read_text())
        raw["policy"]["paths"] = [str(policy_dir)]
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


def shards_of(config: Config, folder: Path, count: int = 2, pin: Path | None = None) -> list[Path]:
    stores = []
    for index in range(count):
        store = folder / f"shard-{index}.db"
        run_audit(
            config, store_path=str(store), run_id="f", fleet=Fleet(Shard(index, count), pin=pin)
        )
        stores.append(store)
    return stores


def decision(uid: str, minute: int, cluster: str = "prod-eu-1") -> AdmissionDecision:
    request = AdmissionRequest(uid, "apps", "v1", "Deployment", "ml", "scorer", "CREATE")
    moment = datetime(2026, 12, 2, 1, minute, tzinfo=UTC)
    return AdmissionDecision(request, "deny", cluster=cluster, time=moment, commit="c" * 40)


def test_decisions_of_replica_stores_are_added_once(git_repo: GitRepo, tmp_path: Path) -> None:
    shards = shards_of(small_fleet(git_repo, tmp_path), tmp_path / "shards")
    replicas = [tmp_path / "replica-0.db", tmp_path / "replica-1.db"]
    with Store.open(replicas[0]) as store:
        store.record_decisions([decision("u1", 1), decision("u2", 2)])
    with Store.open(replicas[1]) as store:
        # the same request answered by another replica after a retry: another decision
        store.record_decisions([decision("u2", 3), decision("u3", 4, cluster="prod-us-1")])
    with Store.open(shards[1]) as store:  # a shard's store may hold some too
        store.record_decisions([decision("u4", 5)])
    out = tmp_path / "merged.db"

    first = merge_stores(out, [*shards, *replicas])
    again = run_cli("store", "merge", str(out), str(replicas[1]), *map(str, shards), "-o", "json")

    assert first.decisions == 5 and first.runs[0].merged
    assert again.code == 1, again.err  # the run's findings, as before
    assert '"decisions_added": 0' in again.out
    with Store.open(out) as store:
        rows = store.decisions()
    assert [(r["uid"], r["time"][11:16]) for r in rows] == [
        ("u4", "01:05"),
        ("u3", "01:04"),
        ("u2", "01:03"),
        ("u2", "01:02"),
        ("u1", "01:01"),
    ]
    assert rows[1]["cluster"] == "prod-us-1" and rows[0]["commit_sha"] == "c" * 40


def test_a_store_of_decisions_alone_is_merged_and_an_empty_one_refused(tmp_path: Path) -> None:
    replica, empty = tmp_path / "replica.db", tmp_path / "empty.db"
    with Store.open(replica) as store:
        store.record_decisions([decision("u1", 1)])
    Store.open(empty).close()

    assert merge_stores(tmp_path / "out.db", [replica]).decisions == 1
    result = run_cli("store", "merge", str(tmp_path / "out.db"), str(empty))
    assert result.code == 2 and "holds no admission decision" in result.err


FAILING = """package fleet.failing
import rego.v1

deny contains msg if {
    x := 1 / 0
    msg := sprintf("never %v", [x])
}
"""


def test_a_policy_that_fails_in_every_shard_is_one_error_as_in_one_process(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "failing.rego").write_text(FAILING)
    config = small_fleet(git_repo, tmp_path, policy_dir=policies)
    single = tmp_path / "single.db"
    one = run_audit(config, store_path=str(single))
    stores = shards_of(config, tmp_path / "shards", count=3)
    [outcome] = merge_stores(tmp_path / "merged.db", stores).runs

    merged = answers(tmp_path / "merged.db")["reports"]["run-1"]
    assert merged == answers(single)["reports"]["run-1"]
    [error] = merged["errors"]
    assert error["message"].startswith("policy fleet.failing failed: ")
    # every resource of every cluster failed, counted in one error
    failed = sum(1 for e in one.evaluations if e.result == "error")
    assert failed > CLUSTERS and f"(and on {failed - 1} more resources)" in error["message"]
    assert outcome.status == "incomplete"
    shard_errors = []
    for path in stores:
        with Store.open(path) as store:
            shard_errors += [e["message"] for e in store.errors("f")]
    assert len(shard_errors) == 3  # each shard counted only its own


def test_shards_pinned_to_one_commit_merge_although_the_branch_moved(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    config = small_fleet(git_repo, tmp_path)
    audited = git_repo.head()
    pin = tmp_path / "volume" / "f" / "commit"
    first = tmp_path / "s0.db"
    run_audit(config, store_path=str(first), run_id="f", fleet=Fleet(Shard(0, 2), pin=pin))
    pinned = pin.read_text().strip()
    git_repo.write("ml/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    moved = git_repo.commit("moved on while shard 0 ran")
    second = tmp_path / "s1.db"
    run_audit(config, store_path=str(second), run_id="f", fleet=Fleet(Shard(1, 2), pin=pin))

    [outcome] = merge_stores(tmp_path / "merged.db", [first, second]).runs
    assert outcome.status == "complete"
    with Store.open(tmp_path / "merged.db") as store:
        [run] = store.runs()
    assert run["git_commit"] == pinned == audited != moved
    assert run["git_revision"] == config.git.revision  # as configured, at the pinned commit


def test_a_pin_that_is_not_a_commit_is_a_clear_error(git_repo: GitRepo, tmp_path: Path) -> None:
    config = small_fleet(git_repo, tmp_path)
    pin = tmp_path / "commit"
    pin.write_text("main\n")
    with pytest.raises(ConfigError, match="not a full commit SHA") as info:
        run_audit(config, store_path=str(tmp_path / "s.db"), run_id="f", fleet=Fleet(pin=pin))
    assert str(pin) in info.value.diagnostics()


def test_a_shard_refused_halfway_leaves_the_merged_store_as_it_was(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    first, second = shards_of(small_fleet(git_repo, tmp_path), tmp_path / "shards")
    with sqlite3.connect(second) as db:  # its resources backwards: not as a shard writes them
        db.execute("UPDATE run_resources SET position = -position")
    merged = tmp_path / "merged.db"
    with pytest.raises(ConfigError, match="out of the fleet's order") as info:
        merge_stores(merged, [first, second])
    assert str(second) in info.value.diagnostics()
    with Store.open(merged) as store:
        assert store.runs() == []
        assert store.db.execute("SELECT count(*) FROM run_shards").fetchone() == (0,)
