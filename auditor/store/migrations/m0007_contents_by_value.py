"""Schema version 7: finding contents are found again by their values, not by a digest.

Version 6 kept a 16-byte digest (SHA-256 of the content's values as a JSON list) in every
`finding_contents` row, and the writer computed it for each of a run's findings to find the
content it had already stored. A content is only ever looked for among its own finding's
contents (the index on `finding`), a handful of rows, so the writer now compares the values
themselves: the digest was a third of the Python work of recording a nightly run of known
findings, and 16 bytes a content. Nothing else changes: every view keeps its columns and rows.

Self-contained: everything this migration needs is in this module.
"""

from __future__ import annotations

from sqlite_utils import Database


def migrate(db: Database) -> None:
    # Nothing indexes or names the column (its index went in version 6), so SQLite can drop it
    # in place; the table's rows are rewritten without it.
    db.conn.execute("ALTER TABLE finding_contents DROP COLUMN digest")
