"""Opening a store file: connection settings, identity and version checks, migrations.

Everything that decides whether a file is an auditor store, and brings it to the schema this
auditor knows, lives here; writer and queries assume an open, current store.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, cast

from sqlite_utils import Database

from auditor.errors import AuditorError, ConfigError, StoreError
from auditor.store.migrations import MIGRATIONS, Migration

# Long enough for one audit to wait out another's finish_run transaction (a run with
# thousands of findings commits in well under a second), short enough that a wedged
# writer turns into an error instead of a hung cron job.
BUSY_TIMEOUT_SECONDS = 30.0

VERSION_TABLE = "schema_version"

# Python's sqlite3 binds int, float, str and bytearray as they are, but sends None and bytes
# through its adapter registry first, which, finding no adapter there, makes and discards an
# AttributeError for each value: half a microsecond a value, a fifth of the time of recording a
# run of 100,000 new findings (a NULL or a fingerprint in most of its rows). An adapter that
# gives the value back unchanged ends that search at the registry; what is bound is the same.
# Both are C functions: `{}.get(None)` is None, `bytes(b)` is `b` itself.
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))
sqlite3.register_adapter(bytes, bytes)


def utc_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with a fixed width (`2026-11-23T16:56:00.000000Z`), so text order is time order.

    A naive datetime is taken as UTC: auditor never produces local times, and guessing the
    host's zone would shift runs recorded by a CronJob in another zone.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_timestamp() -> str:
    return utc_timestamp(datetime.now(UTC))


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """One write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY when
    another process committed in between; taking the lock first makes a second audit wait
    (up to the busy timeout) instead. Any exception rolls everything back.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(
                "another process held the store's write lock past the busy timeout",
                file=_store_file(db),
                hint="is another audit still running against this store?",
            ) from None
        raise_store_failure(exc, _store_file(db))  # a read-only file, a damaged one
    try:
        yield db
        db.commit()
    except sqlite3.Error as exc:
        _roll_back(db)
        raise_store_failure(exc, _store_file(db))
    except BaseException:
        _roll_back(db)
        raise


# SQLite's primary result codes for a reason outside auditor: a file system that refused a
# write (a full disk, a file size limit, a read-only file or mount), or a damaged file
_NO_ROOM = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY})
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def raise_store_failure(exc: sqlite3.Error, file: str) -> NoReturn:
    """Raises what to tell a person when SQLite fails on the store `file` for a reason outside
    auditor (`_store_failure`), from `exc`; else `exc` itself, the bug it is."""
    failure = _store_failure(exc, file)
    if failure is None:
        raise exc
    raise failure from exc


def _store_failure(exc: sqlite3.Error, file: str) -> AuditorError | None:
    """A damaged file (exit 2, theirs to restore) or no room to write (exit 3, the run is not
    recorded); None for anything else."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in _DAMAGED:
        return ConfigError(
            f"the store is damaged: {exc}",
            file=file,
            hint=f"restore it from a backup, or keep what is readable: sqlite3 {file} .recover",
        )
    if code in _NO_ROOM:
        return StoreError(
            f"cannot write to the store: {exc}",
            file=file,
            hint="is its disk full or read-only, or the file over a size limit?",
        )
    return None


def _roll_back(db: Database) -> None:
    # after an I/O error SQLite may have rolled back already, or be unable to: what matters
    # is the first error, which is raised
    with contextlib.suppress(sqlite3.Error):
        db.rollback()


def _store_file(db: Database) -> str:
    try:
        return str(db.conn.execute("PRAGMA database_list").fetchone()[2])
    except sqlite3.Error:  # the connection is past use: the first error is what matters
        return ""


def connect(
    path: str | Path,
    *,
    migrations: Sequence[Migration] = MIGRATIONS,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
) -> Database:
    """Open (creating if needed) the store at `path` and migrate it to `migrations`' latest.

    Raises ConfigError naming the file when it is not an auditor store, was written by a
    newer auditor, or cannot be opened or migrated.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create the store's folder: {error}", file=str(path)) from error
    try:
        # isolation_level=None: no implicit transactions; every write goes through
        # write_transaction, so nothing ever holds a lock we did not ask for.
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as error:
        raise ConfigError(f"cannot open the store: {error}", file=str(path)) from error
    try:
        db = Database(conn, execute_plugins=False)
        # The busy timeout of connect() covers lock waits; foreign keys are per connection.
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        # Identity first: switching a stranger's database to WAL would modify it.
        if current_version(db, path, migrations) == 0:
            _new_store_pages(db)
        # Up to 64 MiB of page cache (the default is 2 MiB): recording a large run inserts
        # into several indexes at random places, and a cache that holds them halves the time.
        db.execute("PRAGMA cache_size = -65536")
        _enable_wal(db, busy_timeout)
        migrate(db, path, migrations)
    except ConfigError:
        conn.close()
        raise
    except sqlite3.Error as error:
        conn.close()
        raise ConfigError(f"cannot use the store: {error}", file=str(path)) from error
    return db


# A new store's page size: a large run appends rows to a handful of tables and indexes, and
# 16 KiB pages split a quarter as often as the default 4 KiB ones (bench/store: recording a
# run of 100,000 new findings). An existing store keeps its own: in WAL mode it cannot change.
NEW_STORE_PAGE_SIZE = 16384


def _new_store_pages(db: Database) -> None:
    """Sets the page size of a file that has nothing in it yet (it takes effect when the first
    table is created); a store another process has just begun keeps the size it was given."""
    if db.execute("PRAGMA page_count").fetchone()[0] == 0:
        db.execute(f"PRAGMA page_size = {NEW_STORE_PAGE_SIZE}")


def _enable_wal(db: Database, busy_timeout: float) -> None:
    """Switches a new store to WAL, waiting out another process doing the same.

    Changing the journal mode needs an exclusive lock, and SQLite returns SQLITE_BUSY for it
    at once, without the busy handler, when another connection holds a lock: two audits
    creating one store together would otherwise fail. Retry until the busy timeout is spent.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.01
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=wal")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def current_version(db: Database, path: str | Path, migrations: Sequence[Migration]) -> int:
    """The store's schema version: 0 for an empty file; ConfigError for a foreign or newer one."""
    try:
        objects = [
            row["name"]
            for row in db.query(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
    except sqlite3.DatabaseError as error:
        # "file is not a database", "file is encrypted": the path points at something else.
        raise ConfigError(
            f"not an auditor store (not a SQLite database: {error})", file=str(path)
        ) from error
    if VERSION_TABLE not in objects:
        if objects:
            shown = ", ".join(objects[:5]) + (", ..." if len(objects) > 5 else "")
            raise ConfigError(
                f"not an auditor store: it has no {VERSION_TABLE} table (it holds {shown})",
                file=str(path),
                hint="point --store at a new file or an existing auditor store",
            )
        return 0
    if "version" not in db.table(VERSION_TABLE).columns_dict:
        raise ConfigError(
            f"not an auditor store: its {VERSION_TABLE} table has no version column",
            file=str(path),
        )
    version = db.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}").fetchone()[0]
    version = int(version or 0)
    latest = migrations[-1].version if migrations else 0
    if version > latest:
        raise ConfigError(
            f"the store has schema version {version}, newer than this auditor knows"
            f" (up to {latest})",
            file=str(path),
            hint="upgrade auditor to read this store; it is never downgraded",
        )
    return version


def migrate(db: Database, path: str | Path, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the pending migrations in one write transaction; returns the version reached.

    Each store is migrated once even when several processes open it at the same moment: the
    version is read again after the write lock is taken, and a migration's tables and its
    `schema_version` row commit together, so a killed migration leaves the older version.
    """
    latest = migrations[-1].version if migrations else 0
    # Cheap check without the write lock: readers of an up-to-date store never queue behind
    # a running audit's transaction.
    if current_version(db, path, migrations) == latest:
        return latest
    with write_transaction(db):
        version = current_version(db, path, migrations)
        if not db.table(VERSION_TABLE).exists():
            db.table(VERSION_TABLE).create(
                {"version": int, "name": str, "applied_at": str},
                pk="version",
                not_null=["name", "applied_at"],
            )
        for migration in migrations:
            if migration.version <= version:
                continue
            try:
                migration.apply(db)
            except sqlite3.Error as error:
                raise ConfigError(
                    f"cannot migrate the store to schema version {migration.version}"
                    f" ({migration.name}): {error}",
                    file=str(path),
                ) from error
            db.table(VERSION_TABLE).insert(
                {
                    "version": migration.version,
                    "name": migration.name,
                    "applied_at": now_timestamp(),
                },
                # A hand-made or early version-0 table may lack `name`: add it, do not fail.
                alter=True,
            )
    return latest
