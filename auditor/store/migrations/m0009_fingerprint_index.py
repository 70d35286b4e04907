"""Schema version 9: the unique index on `fingerprints.fingerprint` is an index of its own,
`fingerprints_fingerprint`, instead of the table's UNIQUE constraint.

SQLite cannot drop the index behind a UNIQUE constraint, and a store's first run of findings
drops the indexes of the tables it fills and builds them again after its rows
(`auditor.store.bulk`): one sort per index instead of a row put at a random place in the
fingerprint index for each new finding. The table is made again without the constraint, with
the same rows and keys; the index holds the same values and enforces the same rule, and every
view reads the same.

Self-contained: everything this migration needs is in this module.
"""

from __future__ import annotations

from sqlite_utils import Database

_TABLE = """
CREATE TABLE fingerprints_v9 (
    id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, cluster TEXT, first_seen TEXT,
    last_seen TEXT, runs_seen INTEGER, open_since TEXT, resolved_at TEXT, last_run INTEGER,
    last_content INTEGER
)
"""
_COLUMNS = (
    "id, fingerprint, cluster, first_seen, last_seen, runs_seen, open_since, resolved_at,"
    " last_run, last_content"
)


def migrate(db: Database) -> None:
    conn = db.conn
    # Views naming the table are dropped with it and made again from their own text, so
    # none is left pointing at the old table while it is renamed.
    views = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid"
    ).fetchall()
    indexes = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'fingerprints'"
        " AND sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    for name, _ in views:
        conn.execute(f'DROP VIEW "{name}"')
    conn.execute(_TABLE)
    conn.execute(
        f"INSERT INTO fingerprints_v9 ({_COLUMNS}) SELECT {_COLUMNS} FROM fingerprints ORDER BY id"
    )
    conn.execute("DROP TABLE fingerprints")
    conn.execute("ALTER TABLE fingerprints_v9 RENAME TO fingerprints")
    conn.execute("CREATE UNIQUE INDEX fingerprints_fingerprint ON fingerprints (fingerprint)")
    for (sql,) in indexes:
        conn.execute(sql)
    for _, sql in views:
        conn.execute(sql)
