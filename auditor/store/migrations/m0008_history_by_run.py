"""Schema version 8: a finding's history lives in its `fingerprints` row, and every sighting
keeps the history as it stood at the end of its run.

- `finding_states` (one row per finding, keyed by `fingerprints.id`) merges into
  `fingerprints`: recording a run of new findings wrote each finding's identity and its
  history as two rows of two tables, and looked both up; now it is one row, found by the one
  index on the fingerprint. A `finding_states` view keeps the old table's columns and rows for
  queries written against it.
- `run_findings` gains `runs_seen` and `open_since`: how many runs had seen the finding and
  since when it was open, at the end of that run (`open_since` NULL when that is the finding's
  first sighting, `fingerprints.first_seen`: most are, and the text is kept only for a finding
  that came back). A report of an older run shows its findings' history as it stood then:
  runs recorded later no longer change it.

Existing sightings get their values by replaying the stored runs in the order they were
recorded, with the rules of `auditor.store.history`. Runs already pruned are counted as the
stored history counts them (`runs_seen` of a sighting is the finding's count today minus its
later sightings); a streak that began in a pruned run is open since the finding's `open_since`
today when it never broke, else since its first sighting.

Self-contained: everything this migration needs is in this module.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from sqlite_utils import Database

_STATE_COLUMNS = (
    ("cluster", "TEXT"),
    ("first_seen", "TEXT"),
    ("last_seen", "TEXT"),
    ("runs_seen", "INTEGER"),
    ("open_since", "TEXT"),
    ("resolved_at", "TEXT"),
    ("last_run", "INTEGER"),
    ("last_content", "INTEGER"),
)

# Of a fingerprint with no history (one `auditor prune` forgot), every state column is NULL.
_VIEWS = """
CREATE INDEX fingerprints_open ON fingerprints (cluster) WHERE resolved_at IS NULL;
CREATE VIEW finding_states AS
SELECT id AS finding, cluster, first_seen, last_seen, runs_seen, open_since, resolved_at,
    last_run, last_content
FROM fingerprints WHERE last_run IS NOT NULL;
CREATE VIEW finding_history AS
SELECT v.fingerprint, v.category, v.check_id, v.severity, v.class, v.cluster,
    v.api_version, v.kind, v.namespace, v.name, v.path, v.message,
    s.first_seen, s.last_seen, s.runs_seen, s.open_since, s.resolved_at,
    CASE WHEN s.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS status,
    runs.id AS run_id
FROM fingerprints s
JOIN finding_values v ON v.id = s.last_content
LEFT JOIN runs ON runs.seq = s.last_run
WHERE s.last_run IS NOT NULL;
CREATE VIEW open_findings AS
SELECT * FROM finding_history WHERE status = 'open'
"""


def _script(conn: sqlite3.Connection, script: str) -> None:
    # executescript would COMMIT the migration's transaction: run statement by statement.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


@dataclass(slots=True)
class _Streak:
    """One finding as the replay has it so far."""

    cluster: str
    runs_seen: int  # the runs before the first stored one included
    open_since: str | None
    last_run: int


def _clusters(text: str | None) -> set[str]:
    try:
        clusters = json.loads(text or "[]")
    except ValueError:
        return set()
    return {str(c["name"]) for c in clusters if isinstance(c, dict) and "name" in c}


def _replay(conn: sqlite3.Connection) -> None:
    """Sets every sighting's `runs_seen` and `open_since` as its run left them."""
    stored = {
        finding: count
        for finding, count in conn.execute(
            "SELECT fc.finding, COUNT(DISTINCT rf.run) FROM run_findings rf"
            " JOIN finding_contents fc ON fc.id = rf.content GROUP BY fc.finding"
        )
    }
    # What the history says today: before any stored run, a finding had been seen this many
    # runs more than the store still holds.
    today = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT id, runs_seen, open_since, first_seen FROM fingerprints"
            " WHERE last_run IS NOT NULL"
        )
    }
    streaks: dict[int, _Streak] = {}
    runs = conn.execute(
        "SELECT seq, started, status, clusters FROM runs WHERE finished IS NOT NULL"
        " ORDER BY finished, seq"
    ).fetchall()
    for seq, started, status, clusters in runs:
        rows = conn.execute(
            "SELECT rf.position, fc.finding, o.cluster FROM run_findings rf"
            " JOIN finding_contents fc ON fc.id = rf.content JOIN objects o ON o.id = fc.object"
            " WHERE rf.run = ? ORDER BY rf.position",
            (seq,),
        ).fetchall()
        updates = []
        for position, finding, cluster in rows:
            streak = streaks.get(finding)
            if streak is None:
                runs_seen, open_since, first_seen = today.get(finding, (None, None, None))
                earlier = (runs_seen or 0) - stored.get(finding, 0)
                if earlier > 0:
                    since = open_since if open_since and open_since <= started else first_seen
                    streak = _Streak(cluster, earlier + 1, since or started, seq)
                else:
                    streak = _Streak(cluster, 1, started, seq)
                streaks[finding] = streak
            elif streak.last_run != seq:
                streak.runs_seen += 1
                streak.open_since = streak.open_since or started
                streak.last_run = seq
            first_seen = today.get(finding, (None, None, None))[2]
            since = None if streak.open_since == first_seen else streak.open_since
            updates.append((streak.runs_seen, since, seq, position))
        conn.executemany(
            "UPDATE run_findings SET runs_seen = ?, open_since = ? WHERE run = ? AND position = ?",
            updates,
        )
        if status == "complete":
            scope = {"", *_clusters(clusters)}
            for streak in streaks.values():
                if streak.last_run != seq and streak.cluster in scope:
                    streak.open_since = None


def migrate(db: Database) -> None:
    conn = db.conn
    for view in ("open_findings", "finding_history"):
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    for name, kind in _STATE_COLUMNS:
        conn.execute(f"ALTER TABLE fingerprints ADD COLUMN {name} {kind}")
    conn.execute(
        "UPDATE fingerprints SET cluster = s.cluster, first_seen = s.first_seen,"
        " last_seen = s.last_seen, runs_seen = s.runs_seen, open_since = s.open_since,"
        " resolved_at = s.resolved_at, last_run = s.last_run, last_content = s.last_content"
        " FROM finding_states s WHERE s.finding = fingerprints.id"
    )
    conn.execute("DROP TABLE finding_states")
    conn.execute("ALTER TABLE run_findings ADD COLUMN runs_seen INTEGER")
    conn.execute("ALTER TABLE run_findings ADD COLUMN open_since TEXT")
    _script(conn, _VIEWS)
    _replay(conn)
