"""Admission decisions gathered from other stores: each webhook replica writes its own.

Copied with SQL from the attached store, never through Python rows, so a replica's months of
decisions cost the merge no memory. A decision is the same decision when its request uid,
time and cluster are: merging a store again adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlite_utils import Database

from auditor.store.decisions import TABLE
from auditor.store.schema import write_transaction

_SOURCE = "replica"


def has_decisions(db: Database) -> bool:
    return db.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE})").fetchone()[0] == 1


def merge_decisions(db: Database, sources: Sequence[Path]) -> int:
    """Adds to the store `db` the decisions of `sources` (store files at the same schema
    version: opened through `Store.open` once) that it does not hold; returns how many."""
    columns = [c for c in db.table(TABLE).columns_dict if c != "id"]
    names = ", ".join(f'"{c}"' for c in columns)
    picked = ", ".join(f's."{c}"' for c in columns)
    added = 0
    for source in sources:
        # ATTACH is refused inside a transaction: attach first, then take the write lock
        db.execute(f"ATTACH DATABASE ? AS {_SOURCE}", [str(source)])
        try:
            with write_transaction(db):
                cursor = db.execute(
                    f"INSERT INTO main.{TABLE} ({names}) SELECT {picked}"
                    f" FROM {_SOURCE}.{TABLE} s WHERE NOT EXISTS (SELECT 1 FROM main.{TABLE} d"
                    " WHERE d.time = s.time AND d.uid = s.uid AND d.cluster IS s.cluster)"
                    " ORDER BY s.time, s.id"
                )
                added += cursor.rowcount
        finally:
            db.execute(f"DETACH DATABASE {_SOURCE}")
    return added
