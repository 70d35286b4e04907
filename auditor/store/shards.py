"""Which shard of a fleet run a stored run is (`run_shards`, schema version 4)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from auditor.store.keys import to_json_text
from auditor.store.schema import write_transaction


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """Run `run_id` holds shard `shard` of `shards` of a fleet whose clusters are `fleet`."""

    run_id: str
    shard: int
    shards: int
    fleet: tuple[str, ...]


def record_shards(db: Database, records: Sequence[ShardRecord]) -> None:
    """Records the shards a run holds (one for a shard's own run, several for a merged one)."""
    with write_transaction(db):
        db.conn.executemany(
            "INSERT OR IGNORE INTO run_shards (run_id, shard, shards, fleet) VALUES (?, ?, ?, ?)",
            (
                (
                    r.run_id,
                    r.shard,
                    r.shards,
                    to_json_text(list(r.fleet), what=f"run {r.run_id} fleet"),
                )
                for r in records
            ),
        )


def shard_records(db: Database, run_id: str | None = None) -> list[ShardRecord]:
    """The shard rows of one run, or of every run, by run and shard."""
    sql = "SELECT run_id, shard, shards, fleet FROM run_shards"
    params: list[str] = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    return [
        ShardRecord(row[0], int(row[1]), int(row[2]), tuple(json.loads(row[3])))
        for row in db.execute(sql + " ORDER BY run_id, shard", params).fetchall()
    ]
