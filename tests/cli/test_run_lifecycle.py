"""A run's row in the store says what happened to it: `running` while it runs, then complete,
incomplete, failed (an error stopped it) or interrupted (SIGINT/SIGTERM), with the trigger that
started it; credentials never reach it; a report path that cannot be written stops the run
before it starts; folders left by killed runs are removed by the next one.
"""

from __future__ import annotations

import copy
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor import pipeline
from auditor.config import load_config
from auditor.exit_codes import ExitCode
from auditor.tempdirs import sweep_stale_temp_dirs
from tests.conftest import EXAMPLES, GitRepo, run_cli
from tests.kubeapi.builders import configmap
from tests.kubeapi.server import Fault, KubeAPIServer

OBJECTS = [configmap(f"features-{i}") for i in range(3)]


@pytest.fixture
def kube() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        server.add_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}])
        server.add_all(copy.deepcopy(OBJECTS))
        yield server


def write_config(tmp_path: Path, repo: str, cluster: dict[str, Any]) -> Path:
    path = tmp_path / "auditor.yaml"
    document = {
        "git": {"repo": repo},
        "clusters": [{"name": "prod", **cluster}],
        "policy": {"enabled": False},
        "store": str(tmp_path / "audit.db"),
        "limits": {"request_timeout_seconds": 60},
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def config(tmp_path: Path, git_repo: GitRepo, kube: KubeAPIServer) -> Path:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(OBJECTS))
    git_repo.commit()
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")
    return write_config(
        tmp_path, str(git_repo.path), {"kubeconfig": str(kubeconfig), "context": "test"}
    )


def runs(config: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(config.parent / "audit.db")
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("select * from runs order by started")]
    for row in rows:
        row["errors"] = [
            dict(e) for e in db.execute("select * from errors where run_id = ?", (row["id"],))
        ]
    db.close()
    return rows


def test_a_manual_run_is_recorded_as_cli_and_the_cron_job_says_cron(config: Path) -> None:
    assert run_cli("audit", "--config", str(config)).code == 0
    assert run_cli("audit", "--config", str(config), "--trigger", "cron").code == 0
    assert [(r["trigger"], r["status"]) for r in runs(config)] == [
        ("cli", "complete"),
        ("cron", "complete"),
    ]


def test_sigterm_stops_the_run_promptly_and_stores_it_as_interrupted(
    config: Path, kube: KubeAPIServer
) -> None:
    # the cluster answers the ConfigMap list after a long time: the run is waiting on it
    kube.inject(Fault(plural="configmaps", latency=60))
    child = subprocess.Popen(
        [sys.executable, "-m", "auditor", "audit", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not kube.list_requests("configmaps") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kube.list_requests("configmaps"), "the run never reached the cluster"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=20)
    assert child.returncode == ExitCode.TERMINATED, err
    assert "Traceback" not in err
    (row,) = runs(config)
    assert (row["status"], row["exit_code"]) == ("interrupted", ExitCode.TERMINATED)
    assert row["finished"] is not None
    assert [e["message"] for e in row["errors"]] == ["interrupted (SIGTERM)"]
    assert not list(Path(tempfile.gettempdir()).glob(f"auditor-{child.pid}-*"))


def test_a_token_in_the_git_url_never_reaches_the_store(tmp_path: Path) -> None:
    snapshot = tmp_path / "live.json"
    snapshot.write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    # nothing listens on port 9: the clone fails, and the failed run is stored
    url = "https://auditor:TOKEN-do-not-store@127.0.0.1:9/org/gitops.git"
    config = write_config(tmp_path, url, {"snapshot": str(snapshot)})
    result = run_cli("audit", "--config", str(config))
    assert result.code == ExitCode.USAGE, result.err
    (row,) = runs(config)
    assert row["status"] == "failed"
    assert row["git_repo"] == "https://***@127.0.0.1:9/org/gitops.git"
    dump = "\n".join(sqlite3.connect(config.parent / "audit.db").iterdump())
    assert "TOKEN-do-not-store" not in dump
    assert "TOKEN-do-not-store" not in result.err


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_a_report_path_that_cannot_be_written_stops_before_the_run(
    config: Path, tmp_path: Path, where: str
) -> None:
    # (a read-only folder is refused too, but these tests run as root, who may write anywhere)
    if where == "a folder":
        report = tmp_path
    else:
        (tmp_path / "file").write_text("x")
        report = tmp_path / "file" / "report.md"
    result = run_cli("audit", "--config", str(config), "--report", str(report))
    assert result.code == ExitCode.USAGE, result.err
    assert str(report) in result.err and "Traceback" not in result.err
    assert not (config.parent / "audit.db").exists() or runs(config) == []


def test_an_internal_error_is_stored_as_failed_with_what_happened(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a stage")

    monkeypatch.setattr(pipeline, "run_pipeline", broken)
    with pytest.raises(RuntimeError):
        pipeline.run_audit(load_config(config))
    (row,) = runs(config)
    assert (row["status"], row["exit_code"]) == ("failed", ExitCode.INTERNAL)
    assert row["errors"][0]["message"] == "internal error: RuntimeError: a bug in a stage"


def test_a_disk_with_no_room_is_stored_as_the_command_says_it_not_as_a_bug(
    tmp_path: Path,
) -> None:
    # The store exists and has room in its file; then every file may grow to 200 kB only, so
    # the audit's own files (the checkout it renders) fail with EFBIG, as on a full disk.
    store = tmp_path / "audit.db"
    config = str(EXAMPLES / "auditor.yaml")
    first = run_cli("audit", "--config", config, "--store", str(store))
    assert first.code == ExitCode.FINDINGS, first.err
    result = run_cli("audit", "--config", config, "--store", str(store), max_file_bytes=200_000)
    assert result.code == ExitCode.USAGE, result.err
    assert "File too large" in result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    with sqlite3.connect(store) as conn:
        last = conn.execute("SELECT id, status, exit_code FROM runs ORDER BY seq DESC").fetchone()
        (message,) = conn.execute(
            "SELECT message FROM errors WHERE run_id = ?", [last[0]]
        ).fetchone()
    assert last[1:] == ("failed", ExitCode.USAGE)
    assert message.endswith("File too large (no room to write)"), message


def test_folders_left_by_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    left = tmp_path / f"auditor-{dead_pid}-render-abc"
    (left / "repo").mkdir(parents=True)
    (left / "repo" / "secret-manifest.yaml").write_text("kind: Secret\n")
    ours = tmp_path / f"auditor-{os.getpid()}-render-ours"  # this live run's own folder
    ours.mkdir()
    unrelated = tmp_path / "auditor-notes"
    unrelated.mkdir()
    removed = sweep_stale_temp_dirs(str(tmp_path))
    assert removed == [left] and not left.exists()
    assert unrelated.exists() and ours.exists()
