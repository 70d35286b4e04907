"""Opening a store: schema, version checks, forward-only migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlite_utils import Database

from auditor.errors import ConfigError
from auditor.store import Store
from auditor.store.migrations import LATEST_VERSION, MIGRATIONS, Migration, discover
from auditor.store.schema import connect
from tests.store.factories import make_run


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def test_open_creates_parent_folders_schema_version_tables_indexes_and_views(
    store_path: Path,
) -> None:
    with Store.open(store_path) as store:
        db = store.db
        assert {
            "schema_version",
            "runs",
            "objects",
            "policies",
            "finding_contents",
            "run_findings",
            "run_resources",
            "run_evaluations",
            "fingerprints",
            "origin_parts",
            "evaluation_results",
            "resource_statuses",
            "errors",
        } <= set(db.table_names())
        assert {
            "findings",
            "resources",
            "evaluations",
            "latest_run",
            "open_findings",
            "finding_history",
            "finding_states",  # a table until version 8: queries written against it still work
        } <= set(db.view_names())
        indexed = {
            (table, tuple(index.columns))
            for table in ("finding_contents", "run_findings", "fingerprints", "runs", "objects")
            for index in db.table(table).indexes
        }
        # Keys that grow in order (integers), never a random digest, and one index on the
        # fingerprints (new ones are keyed in fingerprint order): an index insert lands at the
        # end of its tree, or in order through it.
        assert indexed == {
            ("finding_contents", ("finding",)),
            ("run_findings", ("content",)),
            ("run_findings", ("run", "position")),
            ("fingerprints", ("fingerprint",)),
            ("fingerprints", ("cluster",)),
            ("runs", ("seq",)),
            ("runs", ("started",)),
            ("runs", ("id",)),
            ("objects", ("cluster",)),
        }
        row = next(db.query("SELECT * FROM schema_version"))
        assert row["version"] == 1 and row["applied_at"].endswith("Z")
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert versions(store_path) == list(range(1, LATEST_VERSION + 1))


def applied(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT version, applied_at FROM schema_version ORDER BY 1"))


def test_opening_twice_applies_nothing_again(store_path: Path) -> None:
    Store.open(store_path).close()
    first = applied(store_path)
    Store.open(store_path).close()
    assert applied(store_path) == first
    assert [version for version, _ in first] == list(range(1, LATEST_VERSION + 1))


def test_a_version_0_store_is_migrated(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    with sqlite3.connect(store_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    with Store.open(store_path) as store:
        assert "findings" in store.db.view_names()
    assert versions(store_path) == list(range(1, LATEST_VERSION + 1))


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_store_has_16_kib_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    with Store.open(tmp_path / "new.db") as store:
        store.record_run(make_run("r1"), exit_code=0)
    assert page_size(tmp_path / "new.db") == 16384
    # A store begun with SQLite's default pages (as every store before this size was chosen)
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    with Store.open(tmp_path / "old.db") as store:
        store.record_run(make_run("r1"), exit_code=0)
        assert store.run("r1") is not None
    assert page_size(tmp_path / "old.db") == 4096


def extra_table_migration(db: Database) -> None:
    db.table("test_extra").create({"id": int, "run_id": str, "digest": str}, pk="id")


WITH_ATTESTATIONS = (
    *MIGRATIONS,
    Migration(LATEST_VERSION + 1, "m9999_test", extra_table_migration),
)


def test_an_older_store_gets_only_the_pending_migrations(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.record_run(make_run("r1"), exit_code=0)
    connect(store_path, migrations=WITH_ATTESTATIONS).close()
    db = Database(store_path)
    assert db.table("test_extra").exists()
    assert db.table("runs").count == 1  # version 1 was not re-run over existing data
    assert [row["name"] for row in db.query("SELECT name FROM schema_version")][-1] == "m9999_test"


def test_a_migration_that_fails_leaves_the_store_at_its_previous_version(store_path: Path) -> None:
    def broken(db: Database) -> None:
        db.table("test_extra").create({"id": int}, pk="id")
        db.execute("SELECT * FROM no_such_table")

    failing = (*MIGRATIONS, Migration(LATEST_VERSION + 1, "m9999_broken", broken))
    Store.open(store_path).close()
    with pytest.raises(ConfigError, match="cannot migrate the store to schema version") as info:
        connect(store_path, migrations=failing)
    assert info.value.file == str(store_path)
    assert versions(store_path) == list(range(1, LATEST_VERSION + 1))
    assert not Database(store_path).table("test_extra").exists()


def test_a_store_with_a_newer_schema_is_refused_naming_the_file(store_path: Path) -> None:
    connect(store_path, migrations=WITH_ATTESTATIONS).close()
    with pytest.raises(ConfigError, match="newer than this auditor knows") as info:
        Store.open(store_path)
    assert info.value.file == str(store_path)
    assert str(store_path) in info.value.diagnostics()


def test_a_sqlite_file_of_another_application_is_refused_and_left_untouched(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    before = other.read_bytes()
    with pytest.raises(ConfigError, match=r"not an auditor store.*people") as info:
        Store.open(other)
    assert info.value.file == str(other)
    assert other.read_bytes() == before  # not even switched to WAL


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "auditor.yaml"
    text.write_text("clusters: []\n" * 200)
    with pytest.raises(ConfigError, match="not an auditor store") as info:
        Store.open(text)
    assert info.value.file == str(text)


def test_adding_a_migration_is_dropping_a_module_in_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    body = textwrap.dedent("""
        def migrate(db):
            db.table({table!r}).create({{"id": int}}, pk="id")
    """)
    (package / "m0001_initial.py").write_text(body.format(table="runs"))
    (package / "m0002_attestations.py").write_text(body.format(table="attestations"))
    (package / "helpers.py").write_text("")  # not a migration: ignored
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover("fake_migrations")
    assert [(m.version, m.name) for m in found] == [(1, "m0001_initial"), (2, "m0002_attestations")]

    (package / "m0004_gap.py").write_text(body.format(table="evaluations"))
    sys.modules.pop("fake_migrations", None)
    with pytest.raises(RuntimeError, match="without gaps"):
        discover("fake_migrations")


def test_a_store_path_that_is_a_folder_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open the store") as info:
        Store.open(tmp_path)
    assert info.value.file == str(tmp_path)


def test_a_store_at_the_latest_version_opens_without_loading_any_migration_or_yaml(
    store_path: Path,
) -> None:
    """What `auditor findings`, `runs` and `history` pay before their query: no step's code
    (and what it imports) when there is nothing to migrate, and no YAML loader."""
    Store.open(store_path).close()
    script = textwrap.dedent(f"""
        import sys
        from auditor.store import Store
        with Store.open({str(store_path)!r}) as store:
            store.known_finding_lines(open_only=True)
            store.known_findings(open_only=True)
        steps = [m for m in sys.modules if m.startswith("auditor.store.migrations.m")]
        print(steps, "yaml" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False"]


def test_a_migration_step_loads_its_module_when_a_store_needs_it(tmp_path: Path) -> None:
    step = MIGRATIONS[0]
    assert step.name == "m0001_initial"
    db = Database(tmp_path / "empty.db")
    step.apply(db)
    assert "runs" in db.table_names()
