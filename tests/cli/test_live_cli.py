"""`auditor drift` and `auditor audit` against a live API server (the test server on 127.0.0.1).

The real kubernetes client in a real subprocess talks HTTP to it; faults are injected there.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GitRepo, run_cli
from tests.kubeapi.builders import configmap, deployment, inference_service, secret
from tests.kubeapi.server import Fault, KubeAPIServer

PLANTED = "live-secret-value-do-not-leak"


def desired_objects() -> list[dict[str, Any]]:
    return [
        *(configmap(f"features-{i}") for i in range(5)),
        deployment("llm-server"),
        inference_service("fraud-scorer"),
        inference_service("churn"),
        secret("hub-token", PLANTED),
    ]


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(desired_objects()))
    git_repo.commit()
    return git_repo


@pytest.fixture
def kube() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        server.add_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}])
        server.add_all(copy.deepcopy(desired_objects()))
        yield server


@pytest.fixture
def config(tmp_path: Path, repo: GitRepo, kube: KubeAPIServer) -> Path:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")
    path = tmp_path / "auditor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(repo.path)},
                "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig), "context": "test"}],
                "limits": {"page_size": 2, "request_timeout_seconds": 0.5},
                # these tests are about reading the cluster; policies are tested on their own
                "policy": {"enabled": False},
                "store": str(tmp_path / "audit.db"),
            }
        )
    )
    return path


def audit(config: Path) -> tuple[int, dict[str, Any], str]:
    result = run_cli("audit", "--config", str(config), "-o", "json")
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def stored_run(config: Path, run_id: str) -> tuple[str, list[tuple[str, str]]]:
    db = sqlite3.connect(config.parent / "audit.db")
    (status,) = db.execute("select status from runs where id = ?", (run_id,)).fetchone()
    errors = db.execute("select target, message from errors where run_id = ?", (run_id,)).fetchall()
    return status, errors


def test_in_sync_cluster_is_clean_and_lists_are_paginated(
    config: Path, kube: KubeAPIServer
) -> None:
    code, doc, err = audit(config)
    assert code == 0, err
    assert doc["run"]["status"] == "complete"
    assert doc["summary"]["in_sync"] == 9 and doc["findings"] == []
    cm_lists = kube.list_requests("configmaps", "ml")
    assert len(cm_lists) >= 3  # 5 ConfigMaps in pages of 2
    assert any("continue" in r.query for r in cm_lists)
    assert doc["clusters"][0]["server"] == kube.url


def test_drift_via_kubeconfig_context_exits_1(
    repo: GitRepo, kube: KubeAPIServer, tmp_path: Path
) -> None:
    changed = deployment("llm-server")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/llm:hotfix"
    kube.add(changed)
    kube.add(deployment("manual-hotfix"))
    kubeconfig = kube.write_kubeconfig(tmp_path / "kc", context="test")
    result = run_cli(
        "drift",
        "--repo",
        str(repo.path),
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        "test",
        "-o",
        "json",
    )
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    checks = {(f["check"], f["resource"]["name"], f["path"], f["class"]) for f in doc["findings"]}
    assert checks == {
        ("drift.changed", "llm-server", "/spec/template/spec/containers/0/image", "runtime"),
        ("drift.unmanaged", "manual-hotfix", "", "config"),
    }
    assert PLANTED not in result.out + result.err


FAULTS = {
    "403 on one kind": (Fault(status=403, plural="inferenceservices"), "inferenceservices"),
    "500 persisting": (Fault(status=500, plural="configmaps"), "configmaps"),
    "timeout": (Fault(latency=2.0, plural="deployments"), "deployments"),
    "dropped connection": (Fault(drop=True, plural="configmaps"), "configmaps"),
    "truncated body": (Fault(truncate=True, plural="secrets"), "secrets"),
    "410 twice": (Fault(expire_continue_on_page=2, plural="configmaps"), "configmaps"),
    "429 persisting": (Fault(status=429, plural="deployments", retry_after=1), "deployments"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_api_fault_makes_the_run_incomplete_exit_3(
    name: str, config: Path, kube: KubeAPIServer
) -> None:
    fault, plural = FAULTS[name]
    kube.inject(fault)
    code, doc, err = audit(config)
    assert code == 3, err
    assert doc["status"] == "incomplete"
    assert doc["run"]["status"] == "incomplete"
    assert any(plural in e["target"] for e in doc["errors"]), doc["errors"]
    # what could not be read is unknown, never reported as missing (or as clean)
    assert not [f for f in doc["findings"] if f["check"] == "drift.missing"]
    status, errors = stored_run(config, doc["run"]["id"])
    assert status == "incomplete"
    assert any(plural in target for target, _ in errors)
    assert "Traceback" not in err


def test_a_single_410_is_survived_by_one_relist(config: Path, kube: KubeAPIServer) -> None:
    kube.inject(Fault(expire_continue_on_page=2, plural="configmaps", times=1))
    code, doc, err = audit(config)
    assert code == 0, err
    assert doc["run"]["status"] == "complete"


def test_unreachable_cluster_is_incomplete_not_clean(config: Path, kube: KubeAPIServer) -> None:
    kube.stop()
    code, doc, _ = audit(config)
    assert code == 3
    assert doc["summary"]["missing"] == 0 and doc["findings"] == []
    assert doc["errors"] and doc["run"]["status"] == "incomplete"


def test_wrong_context_is_a_config_error(config: Path) -> None:
    text = config.read_text().replace("context: test", "context: nope")
    config.write_text(text)
    code, _, err = audit(config)
    assert code == 2
    assert "nope" in err and "Traceback" not in err
