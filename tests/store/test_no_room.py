"""A store whose disk has no room: the write that does not fit is a StoreError naming the file
(exit 3: the run is not recorded), never a trace, and nothing of it is kept.

The fault is SQLite's own: `max_page_count` caps the file where it stands, so the next write
that needs a page fails with SQLITE_FULL exactly as on a full disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from auditor.errors import StoreError
from auditor.exit_codes import ExitCode
from auditor.store import Store
from tests.store.factories import make_finding, make_run


def no_more_pages(store: Store) -> None:
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_run_that_does_not_fit_is_refused_and_leaves_the_store_as_it_was(
    store: Store, store_path: Path
) -> None:
    store.record_run(make_run("r1"), findings=[make_finding("kept")], exit_code=1)
    run = make_run("r2", minutes=60)
    store.begin_run(run)
    no_more_pages(store)
    many = [make_finding(f"model-{n}", message="x" * 2000) for n in range(200)]
    with pytest.raises(StoreError) as caught:
        store.finish_run(run, resources=(), findings=many, errors=(), exit_code=1)
    assert caught.value.exit_code == ExitCode.INCOMPLETE
    assert caught.value.file == str(store_path)
    assert "cannot write to the store: database or disk is full" in caught.value.diagnostics()

    with sqlite3.connect(store_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        runs = conn.execute("SELECT id, finished FROM runs ORDER BY seq").fetchall()
        kept = conn.execute("SELECT COUNT(*) FROM run_findings").fetchone()[0]
    # r2 stays as begin_run left it, never finished; none of its findings were kept
    assert [(run_id, finished is None) for run_id, finished in runs] == [
        ("r1", False),
        ("r2", True),
    ]
    assert kept == 1


def test_a_store_that_takes_no_writes_is_refused_naming_it(store: Store, store_path: Path) -> None:
    # a read-only file or mount, as SQLite reports it (SQLITE_READONLY)
    store.db.execute("PRAGMA query_only = ON")
    with pytest.raises(StoreError) as caught:
        store.record_run(make_run("r1"), findings=[make_finding()], exit_code=1)
    assert caught.value.file == str(store_path)
    assert "cannot write to the store: attempt to write a readonly database" in str(
        caught.value.diagnostics()
    )
    store.db.execute("PRAGMA query_only = OFF")
    assert store.runs() == []
