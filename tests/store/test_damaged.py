"""A damaged store file: the commands that read it say so, naming the file (exit 2), never
"internal error" with a trace; the write path says the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.exit_codes import ExitCode
from auditor.store import Store
from tests.conftest import run_cli
from tests.store.factories import make_finding, make_run


def damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of `table` with bytes no b-tree page starts with."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", [table]
        ).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\x5a" * size)


@pytest.fixture
def damaged(store_path: Path) -> Path:
    with Store.open(store_path) as store:
        findings = [make_finding(f"model-{n}") for n in range(50)]
        store.record_run(make_run("r1"), findings=findings, exit_code=1)
    damage_table(store_path, "finding_contents")
    return store_path


@pytest.mark.parametrize(
    "command",
    [
        ("findings", "--open"),
        ("findings", "-o", "json"),
        ("report", "--format", "json"),
        ("history", make_finding("model-0").fingerprint),  # its contents are what is damaged
    ],
)
def test_reading_a_damaged_store_says_so_naming_the_file(
    damaged: Path, command: tuple[str, ...]
) -> None:
    done = run_cli(*command, "--store", str(damaged))
    assert done.code == ExitCode.USAGE, done.err
    assert f"{damaged}: the store is damaged: database disk image is malformed" in done.err
    assert "sqlite3" in done.err and ".recover" in done.err  # how to keep what is readable
    assert "Traceback" not in done.err and "internal error" not in done.err


def test_recording_into_a_damaged_store_says_so(damaged: Path) -> None:
    with Store.open(damaged) as store, pytest.raises(ConfigError) as caught:
        store.record_run(make_run("r2", minutes=60), findings=[make_finding()], exit_code=1)
    assert caught.value.file == str(damaged)
    assert "the store is damaged" in caught.value.diagnostics()
