"""Two clusters audited at once against two API test servers, one of them failing: the run is
incomplete, says which cluster, and keeps everything the other cluster showed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.store import Store
from tests.conftest import GitRepo, run_cli
from tests.kubeapi.builders import configmap, deployment
from tests.kubeapi.server import Fault, KubeAPIServer


def desired() -> list[dict[str, Any]]:
    return [configmap("features"), deployment("scorer")]


@pytest.fixture
def servers() -> Iterator[tuple[KubeAPIServer, KubeAPIServer]]:
    with KubeAPIServer() as east, KubeAPIServer() as west:
        for server in (east, west):
            server.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
            server.add_all(copy.deepcopy(desired()))
        yield east, west


def test_one_failing_cluster_leaves_the_run_incomplete_and_the_other_findings_kept(
    git_repo: GitRepo, servers: tuple[KubeAPIServer, KubeAPIServer], tmp_path: Path
) -> None:
    east, west = servers
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(desired()))
    git_repo.commit()
    edited = deployment("scorer")
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/scorer:hotfix"
    east.add(edited)
    west.inject(Fault(status=500, path="^/api"))  # every read of west fails, persistently
    config = tmp_path / "auditor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(git_repo.path)},
                "clusters": [
                    {
                        "name": name,
                        "kubeconfig": str(s.write_kubeconfig(tmp_path / name)),
                        "context": "test",
                    }
                    for name, s in (("east", east), ("west", west))
                ],
                "limits": {"request_timeout_seconds": 0.5},
                "policy": {"enabled": False},
                "store": str(tmp_path / "audit.db"),
            }
        )
    )

    result = run_cli("audit", "--config", str(config), "--concurrency", "2", "-o", "json")

    assert result.code == 3, result.err
    doc = json.loads(result.out)
    assert doc["run"]["status"] == "incomplete"
    statuses = {c["name"]: c["status"] for c in doc["clusters"]}
    assert statuses == {"east": "complete", "west": "incomplete"}
    assert {e["cluster"] for e in doc["errors"]} == {"west"}
    drifted = {(f["cluster"], f["check"], f["path"]) for f in doc["findings"]}
    assert drifted == {("east", "drift.changed", "/spec/template/spec/containers/0/image")}
    with Store.open(tmp_path / "audit.db") as store:
        [run] = store.runs()
        assert run["status"] == "incomplete"
        stored = store.findings(run["id"])
        assert [(f["cluster"], f["check_id"]) for f in stored] == [("east", "drift.changed")]
    assert any(r.path.startswith("/api") for r in west.requests)  # west was really asked
