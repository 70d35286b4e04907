"""Schema version 4: which shard of a fleet run a run is, and which shards a merged run holds.

`auditor audit --shard I/N` records one row for its run: shard I of N, and the fleet's
clusters in their configured order (every shard loads the same `clusters:`; the merge checks
that they agree, names the clusters of a missing shard, and orders the merged rows by it).
`auditor store merge` records one row per shard it merged into a run, which is what makes
merging the same shard again a no-op.
"""

from __future__ import annotations

from sqlite_utils import Database

TABLE = """
CREATE TABLE run_shards (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    shard INTEGER NOT NULL,
    shards INTEGER NOT NULL,
    fleet TEXT NOT NULL,  -- JSON list: every cluster of the fleet, in configured order
    PRIMARY KEY (run_id, shard)
) WITHOUT ROWID
"""


def migrate(db: Database) -> None:
    db.conn.execute(TABLE)
