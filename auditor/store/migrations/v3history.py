"""Frozen for migration m0003: finding history as schema version 3 kept it (one row per
fingerprint text), and the columns of its `finding_contents`. The live `auditor.store.history`
follows the current schema; m0003 must go on doing exactly what it did when it was published."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sighting:
    fingerprint: str
    cluster: str
    content: int  # finding_contents.id of what the run saw


@dataclass(frozen=True, slots=True)
class RecordedRun:
    seq: int
    started: str
    complete: bool
    clusters: tuple[str, ...]


# New findings and known ones apart: a plain INSERT and a plain UPDATE are twice as fast as
# one upsert over 100,000 rows.
_NEW = """
INSERT INTO finding_states
    (fingerprint, cluster, first_seen, last_seen, runs_seen, open_since, resolved_at,
     last_run, last_content)
VALUES (?, ?, ?, ?, 1, ?, NULL, ?, ?)
"""
_SEEN_AGAIN = """
UPDATE finding_states SET
    first_seen = MIN(first_seen, :started),
    last_seen = :started,
    runs_seen = runs_seen + 1,
    open_since = CASE WHEN resolved_at IS NULL THEN open_since ELSE :started END,
    resolved_at = NULL,
    last_run = :run,
    last_content = :content
WHERE fingerprint = :fingerprint
"""
_CHUNK = 5000

# The partial index on open findings by cluster makes this touch only what is open there.
_RESOLVED = """
UPDATE finding_states SET resolved_at = ?, open_since = NULL
WHERE resolved_at IS NULL AND last_run != ?
    AND cluster IN (SELECT value FROM json_each(?))
"""


def record(conn: sqlite3.Connection, run: RecordedRun, sightings: Iterable[Sighting]) -> None:
    """Applies one finished run to the history (inside the writer's transaction)."""
    seen: dict[str, Sighting] = {}
    for sighting in sightings:
        seen.setdefault(sighting.fingerprint, sighting)  # one sighting per run and fingerprint
    prints = list(seen)
    known: set[str] = set()
    for start in range(0, len(prints), _CHUNK):
        chunk = prints[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        known.update(
            row[0]
            for row in conn.execute(
                f"SELECT fingerprint FROM finding_states WHERE fingerprint IN ({marks})", chunk
            )
        )
    conn.executemany(
        _NEW,
        (
            (s.fingerprint, s.cluster, run.started, run.started, run.started, run.seq, s.content)
            for s in seen.values()
            if s.fingerprint not in known
        ),
    )
    conn.executemany(
        _SEEN_AGAIN,
        (
            {"started": run.started, "run": run.seq, "content": s.content, "fingerprint": f}
            for f, s in seen.items()
            if f in known
        ),
    )
    if run.complete:
        scope = json.dumps(["", *run.clusters])
        conn.execute(_RESOLVED, (run.started, run.seq, scope))


def run_clusters(clusters_json: str | None) -> tuple[str, ...]:
    """The cluster names of a run's `clusters` column."""
    try:
        clusters = json.loads(clusters_json or "[]")
    except ValueError:
        return ()
    return tuple(
        str(c["name"]) for c in clusters if isinstance(c, dict) and isinstance(c.get("name"), str)
    )


def rebuild(conn: sqlite3.Connection) -> None:
    """Computes every finding's history again from the runs in the store, in recorded order.

    For migrations and repairs: the history of runs already pruned is lost by a rebuild.
    """
    conn.execute("DELETE FROM finding_states")
    runs = conn.execute(
        "SELECT seq, started, status, clusters FROM runs WHERE finished IS NOT NULL"
        " ORDER BY finished, seq"
    ).fetchall()
    for seq, started, status, clusters in runs:
        sightings = [
            Sighting(fingerprint, cluster, content)
            for fingerprint, cluster, content in conn.execute(
                "SELECT fc.fingerprint, o.cluster, fc.id FROM run_findings rf"
                " JOIN finding_contents fc ON fc.id = rf.content"
                " JOIN objects o ON o.id = fc.object"
                " WHERE rf.run = ? ORDER BY rf.position",
                (seq,),
            )
        ]
        recorded = RecordedRun(seq, started, status == "complete", run_clusters(clusters))
        record(conn, recorded, sightings)


FINDING_COLUMNS = (
    "fingerprint",
    "object",
    "category",
    "check_id",
    "severity",
    "class",
    "path",
    "message",
    "expected",
    "actual",
    "changed_by_manager",
    "changed_by_operation",
    "changed_by_time",
    "details",
    "controls",
)
