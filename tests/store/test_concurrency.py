"""Real processes against one store file: a SIGKILL mid-transaction, two audits at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.store import Store
from auditor.store.migrations import LATEST_VERSION
from auditor.store.schema import write_transaction
from tests.store.factories import make_finding, make_run

REPO = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.child", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect_line(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdout is not None
    got = process.stdout.readline().strip()
    if got != line:
        process.kill()
        _, stderr = process.communicate(timeout=10)
        pytest.fail(f"child printed {got!r} instead of {line!r}; stderr:\n{stderr}")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:  # only ours, and only if a failed test left them running
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_a_run_killed_in_the_middle_of_finish_run_leaves_a_consistent_store(
    store_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    with Store.open(store_path) as store:
        store.record_run(make_run("before"), findings=[make_finding()], exit_code=1)

    child = spawn("pause-in-finish", str(store_path), "killed", "3000")
    children.append(child)
    expect_line(child, "BEGUN")
    expect_line(child, "PAUSED")
    # 3000 findings of 1 KiB are in the open transaction, partly written to the WAL already.
    assert Path(f"{store_path}-wal").stat().st_size > 1_000_000
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL

    with Store.open(store_path) as store:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        killed = store.run("killed")
        assert killed is not None
        assert (killed["status"], killed["finished"], killed["exit_code"]) == (
            "running",
            None,
            None,
        )
        assert store.findings("killed") == []
        assert store.resources("killed") == []
        latest = store.run("latest")
        assert latest is not None and latest["id"] == "before"
        assert len(store.findings("before")) == 1
        # The lock died with the process: the next audit writes at once.
        store.record_run(make_run("after", minutes=20), findings=[make_finding()], exit_code=1)
        assert [row["id"] for row in store.runs()] == ["after", "killed", "before"]


def test_two_processes_recording_at_once_serialize_and_lose_nothing(
    store_path: Path, tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    go = tmp_path / "go"
    count = 15
    # Both open the brand-new file at the same moment: the migration must run exactly once.
    writers = [spawn("record", str(store_path), prefix, str(count), str(go)) for prefix in "ab"]
    children.extend(writers)
    for writer in writers:
        expect_line(writer, "READY")
    # Hold the write lock while both start: each must wait for it (busy timeout), not fail.
    with Store.open(store_path) as holder, write_transaction(holder.db):
        go.touch()
        time.sleep(0.3)
    for writer in writers:
        stdout, stderr = writer.communicate(timeout=60)
        assert writer.returncode == 0, stderr
        assert stdout.strip() == "DONE"

    with Store.open(store_path) as store:
        db = store.db
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [row["version"] for row in db.query("SELECT version FROM schema_version")] == list(
            range(1, LATEST_VERSION + 1)
        )
        runs = store.runs()
        assert sorted(row["id"] for row in runs) == sorted(
            f"{prefix}-{index:03d}" for prefix in "ab" for index in range(count)
        )
        assert all(row["status"] == "complete" and row["finished"] for row in runs)
        per_run = dict(db.execute("SELECT run_id, COUNT(*) FROM findings GROUP BY run_id"))
        assert per_run == {row["id"]: 50 for row in runs}
        assert db["resources"].count == 2 * count * 5
        assert db.table("errors").count == 2 * count
