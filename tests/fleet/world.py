"""A fleet of snapshot clusters over one Git repository: what the fleet tests audit.

Every cluster runs what Git declares, with its own departures chosen by its number, so the
clusters differ and the same departure shows up in several of them (the shards of a fleet
run must keep each cluster's findings apart):

- every third cluster: a ConfigMap edited by hand (drift.changed);
- every fifth: a ConfigMap missing (drift.missing);
- every seventh: a Deployment nobody declared (drift.unmanaged);
- every fourth: a model server whose canary runs at 50% (drift.changed, policy findings);
- every tenth: a snapshot taken without managedFields (a note on the run).

`night` shifts those choices, so a second night resolves some findings and opens others.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitrepo import _ENV, GitRepo
from tests.kubeapi.builders import configmap, deployment, inference_service

CONFIGMAPS = 3


def desired_objects() -> list[dict[str, Any]]:
    return [
        *(configmap(f"features-{i}") for i in range(CONFIGMAPS)),
        deployment("scorer"),
        inference_service("fraud"),
    ]


def live_objects(cluster: int, night: int = 0) -> list[dict[str, Any]]:
    n = cluster + night
    live = copy.deepcopy(desired_objects())
    if n % 3 == 0:
        live[0]["data"] = {"model": "edited-by-hand"}
    if n % 4 == 0:
        predictor = live[CONFIGMAPS + 1]["spec"]["predictor"]
        predictor["canaryTrafficPercent"] = 50
    if n % 7 == 0:
        live.append(deployment(f"hotfix-{cluster}"))
    if n % 5 == 0:
        del live[1]
    if cluster % 10 != 0:
        for obj in live:
            obj["metadata"]["managedFields"] = [APPLIED]
    return live


APPLIED = {
    "manager": "argocd-controller",
    "operation": "Apply",
    "time": "2026-11-30T02:00:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:metadata": {"f:name": {}}},
}


def write_repo(repo: GitRepo) -> str:
    repo.write("ml/objects.yaml", yaml.safe_dump_all(desired_objects()))
    return repo.commit("fleet")


def cluster_name(index: int) -> str:
    return f"cluster-{index:03d}"


def write_snapshots(folder: Path, clusters: int, night: int = 0) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for index in range(clusters):
        path = folder / f"{cluster_name(index)}.yaml"
        items = live_objects(index, night)
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
        paths[cluster_name(index)] = path
    return paths


def write_config(
    path: Path, repo: Path, snapshots: dict[str, Path], *, policies: bool = True
) -> Path:
    config: dict[str, Any] = {
        "git": {"repo": str(repo), "paths": ["ml"]},
        "clusters": [{"name": n, "snapshot": str(p)} for n, p in snapshots.items()],
        "policy": {"enabled": policies},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def git_env() -> Iterator[None]:
    """The Git identity and isolation tests commit with, for fixtures wider than one test
    (the `git_repo` fixture sets it per test)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _ENV.items():
            patch.setenv(key, value)
        yield


def fleet_in(folder: Path, clusters: int, *, policies: bool = True) -> tuple[GitRepo, Path]:
    """The repository and `clusters` snapshot clusters under `folder`, and the config file
    auditing them (inside `git_env` when no `git_repo` fixture set it)."""
    repo = GitRepo(folder / "gitops")
    write_repo(repo)
    snapshots = write_snapshots(folder / "live", clusters)
    return repo, write_config(folder / "auditor.yaml", repo.path, snapshots, policies=policies)
