"""`read_live` stands for the whole live stage: snapshot files or a cluster, one `LiveRead`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from auditor.config import ClusterSource, Limits
from auditor.live.read import read_live
from auditor.scope import KindSelector, Scope
from tests.kubeapi.builders import configmap
from tests.kubeapi.server import KubeAPIServer

SCOPE = Scope(kinds=(KindSelector("", "ConfigMap"),), namespaces=("ml",))


def write_snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "live.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [configmap("cm")]}))
    return path


def test_snapshots_are_read_as_the_cluster_they_stand_for(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path)
    read = read_live(ClusterSource(name="prod", snapshots=(str(path),)), SCOPE, Limits())
    assert [r.ref.display() for r in read.resources] == ["ConfigMap ml/cm"]
    assert {r.ref.cluster for r in read.resources} == {"prod"}
    assert read.info.server == f"snapshot:{path}"
    assert read.errors == ()


def test_a_cluster_source_without_snapshots_reads_the_api_server(tmp_path: Path) -> None:
    with KubeAPIServer() as kube:
        kube.add(configmap("cm"))
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        read = read_live(ClusterSource(name="prod", kubeconfig=str(kubeconfig)), SCOPE, Limits())
        url = kube.url
    assert [r.ref.display() for r in read.resources] == ["ConfigMap ml/cm"]
    assert read.info.server == url


def test_drift_on_snapshots_never_imports_the_kubernetes_client(tmp_path: Path) -> None:
    # `auditor drift --live-snapshot` goes through auditor.pipeline; the client would only slow it
    script = textwrap.dedent(
        f"""
        import sys
        import auditor.pipeline
        from auditor.config import ClusterSource, Limits
        from auditor.live.read import read_live
        from auditor.scope import KindSelector, Scope
        source = ClusterSource(name="prod", snapshots=({str(write_snapshot(tmp_path))!r},))
        scope = Scope(kinds=(KindSelector("", "ConfigMap"),))
        assert len(read_live(source, scope, Limits()).resources) == 1
        print(sorted(m for m in sys.modules if m.partition(".")[0] == "kubernetes"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
