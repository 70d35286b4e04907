"""An audit small enough to run many times: three ConfigMaps in Git and in the test API server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import GitRepo
from tests.kubeapi.builders import configmap
from tests.kubeapi.server import KubeAPIServer

OBJECTS = [configmap(f"features-{i}") for i in range(3)]


@pytest.fixture
def kube() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        server.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
        server.add_all(copy.deepcopy(OBJECTS))
        yield server


@pytest.fixture
def config(tmp_path: Path, git_repo: GitRepo, kube: KubeAPIServer) -> Path:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(OBJECTS))
    git_repo.commit()
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")
    path = tmp_path / "auditor.yaml"
    document = {
        "git": {"repo": str(git_repo.path)},
        "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig), "context": "test"}],
        "policy": {"enabled": False},
        "store": str(tmp_path / "audit.db"),
    }
    path.write_text(yaml.safe_dump(document))
    return path
