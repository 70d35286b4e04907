"""deploy/fleet: the Indexed Job's step script, run here as each index of the Job would run it
(the real `auditor` CLI, a shared folder for the volume), and the manifests agreeing with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from auditor.config import Config, load_config
from auditor.store import Store
from tests.conftest import PROJECT
from tests.fleet import world

DEPLOY = PROJECT / "deploy" / "fleet"
STEP = DEPLOY / "fleet-step.sh"
CLUSTERS = 6
RUN_ID = "auditor-fleet-29405117"


@dataclass(frozen=True)
class Night:
    """The shard pods of one night, run once for the module: their volume is copied, never
    changed, by each test that runs the merge pod on it."""

    fleet: Config
    volume: Path
    audited: str  # the commit the branch named when the first shard pod started
    codes: list[int]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    folder = tmp_path_factory.mktemp("fleet-job")
    with world.git_env():
        # policies off: these tests are about the Job's steps, the policy stage is tested elsewhere
        repo, path = world.fleet_in(folder, CLUSTERS, policies=False)
        audited, fleet = repo.head(), load_config(path)
        volume = folder / "volume"
        codes = [step(0, fleet, volume)]
        # the branch moves while the Job runs: the shards after the first audit what it pinned
        repo.write("ml/late.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\n")
        repo.commit("merged while the fleet ran")
        codes += [step(i, fleet, volume) for i in (1, 2)]
        yield Night(fleet, volume, audited, codes)


def step(index: int, fleet: Config, data: Path, *, wait: int = 30) -> int:
    """One pod of the Job: the script with the environment the CronJob gives it."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JOB_COMPLETION_INDEX": str(index),
        "RUN_ID": RUN_ID,
        "SHARDS": "3",
        "DATA": str(data),
        "CONFIG": fleet.path,
        "MERGE_WAIT_SECONDS": str(wait),
    }
    return subprocess.run(["sh", str(STEP)], env=env, capture_output=True, timeout=300).returncode


def test_three_shard_pods_and_the_merge_pod_record_one_fleet_run(
    night: Night, tmp_path: Path
) -> None:
    data = shutil.copytree(night.volume, tmp_path / "volume")
    assert night.codes == [0, 0, 0]  # findings: recorded, not failed
    assert step(3, night.fleet, data) == 1  # the merge says: findings at high or above

    with Store.open(data / "audit.db") as store:
        [run] = store.runs()
        assert (run["id"], run["status"]) == (RUN_ID, "complete")
        assert [c["name"] for c in run["clusters"]] == [c.name for c in night.fleet.clusters]
        assert run["git_commit"] == night.audited
    assert RUN_ID in (data / "reports" / f"{RUN_ID}.html").read_text()


def test_a_shard_pod_that_has_not_ended_leaves_the_fleet_run_incomplete(
    night: Night, tmp_path: Path
) -> None:
    data = shutil.copytree(night.volume, tmp_path / "volume")
    shards = data / "shards" / RUN_ID
    # shard 1's pod is still writing its store on another node: the merge must not read it
    (shards / "shard-1.done").unlink()
    (shards / "shard-1.db").write_bytes(b"half written")
    assert step(3, night.fleet, data, wait=0) == 3  # shard 1 never ended: incomplete

    with Store.open(data / "audit.db") as store:
        [run] = store.runs()
        assert run["status"] == "incomplete"
        assert "not audited" in {c["status"] for c in run["clusters"]}


def test_the_job_has_one_index_per_shard_and_one_for_the_merge() -> None:
    cronjob = yaml.safe_load((DEPLOY / "cronjob.yaml").read_text())
    job = cronjob["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == int(env["SHARDS"]["value"]) + 1
    assert env["RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']"
    )
    assert container["command"] == ["/bin/sh", f"/etc/auditor/{STEP.name}"]
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    [generator] = kustomization["configMapGenerator"]
    assert set(generator["files"]) == {"auditor.yaml", STEP.name}
    assert all((DEPLOY / name).is_file() for name in kustomization["resources"])
    load_config(DEPLOY / "auditor.yaml")  # the shipped example is a valid config
