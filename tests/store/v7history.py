"""Frozen for tests/store/legacy.py: how the writers of schema versions 6 and 7 recorded a
run's findings and their history (auditor at commit 86ad907), `finding_states` apart from
`fingerprints`. Today's writer keeps both in one row (m0008).

Finding history by fingerprint, kept up to date as each run is recorded.

`finding_states` holds one row per finding (fingerprint): first and last seen, how many runs saw it,
open since, resolved at. Computing that from every run's findings is a window over the
whole table (seconds on a year of nightly runs), so the writer applies each run to it in
the run's transaction instead, and the `finding_history` view reads it with indexes.

The rules (DESIGN "Reports and history"), applied in the order runs are recorded:
- a run that has the finding: seen again (last seen = the run's start, one more run
  seen); if it was resolved, it is open again since this run;
- a *complete* run over the finding's cluster that does not have it: resolved at this
  run's start. An incomplete, failed or interrupted run did not look, so it resolves
  nothing. Findings about no cluster (the audited commit) are in every run's scope.

History outlives the rows it came from: `auditor prune` deletes old runs but keeps the state
of every finding still open (its first seen, open since and runs seen stay true).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from auditor.model import Finding
from auditor.store import compact, keys
from auditor.store.keys import chunks, next_id, stored_fingerprint


@dataclass(frozen=True, slots=True)
class Sighting:
    finding: int  # fingerprints.id
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
    (finding, cluster, first_seen, last_seen, runs_seen, open_since, resolved_at,
     last_run, last_content)
VALUES (?, ?, ?, ?, 1, ?, NULL, ?, ?)
"""
_SEEN_AGAIN = """
UPDATE finding_states SET
    first_seen = MIN(first_seen, ?1),
    last_seen = ?1,
    runs_seen = runs_seen + 1,
    open_since = CASE WHEN resolved_at IS NULL THEN open_since ELSE ?1 END,
    resolved_at = NULL,
    last_run = ?2,
    last_content = ?3
WHERE finding = ?4
"""
# The same for a finding still open: resolved_at and open_since stay as they are, and an
# UPDATE that does not name them leaves the partial index on open findings alone (the nightly
# run sees mostly open findings again).
_SEEN_OPEN = """
UPDATE finding_states SET
    first_seen = MIN(first_seen, ?1),
    last_seen = ?1,
    runs_seen = runs_seen + 1,
    last_run = ?2,
    last_content = ?3
WHERE finding = ?4
"""
_CHUNK = 5000

# The partial index on open findings by cluster makes this touch only what is open there.
_RESOLVED = """
UPDATE finding_states SET resolved_at = ?, open_since = NULL
WHERE resolved_at IS NULL AND last_run != ?
    AND cluster IN (SELECT value FROM json_each(?))
"""


def record(
    conn: sqlite3.Connection,
    run: RecordedRun,
    sightings: Iterable[Sighting],
    new: Collection[int] = (),
) -> None:
    """Applies one finished run to the history (inside the writer's transaction).

    `new` are findings known to have no history yet (fingerprints this transaction added).
    """
    seen: dict[int, Sighting] = {}
    for sighting in sightings:
        seen.setdefault(sighting.finding, sighting)  # one sighting per run and finding
    maybe = [f for f in seen if f not in new]
    known: dict[int, bool] = {}  # finding -> still open
    for start in range(0, len(maybe), _CHUNK):
        chunk = maybe[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        known.update(
            (finding, bool(still_open))
            for finding, still_open in conn.execute(
                "SELECT finding, resolved_at IS NULL FROM finding_states"
                f" WHERE finding IN ({marks})",
                chunk,
            )
        )
    conn.executemany(
        _NEW,
        (
            (s.finding, s.cluster, run.started, run.started, run.started, run.seq, s.content)
            for s in seen.values()
            if s.finding not in known
        ),
    )
    for statement, still_open in ((_SEEN_OPEN, True), (_SEEN_AGAIN, False)):
        conn.executemany(
            statement,
            (
                (run.started, run.seq, s.content, f)
                for f, s in seen.items()
                if known.get(f) is still_open
            ),
        )
    if run.complete:
        scope = json.dumps(["", *run.clusters])
        conn.execute(_RESOLVED, (run.started, run.seq, scope))


class FingerprintKeys:
    """The integer key of each fingerprint, adding new ones; one per transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.known: dict[str, int] = {}
        self.added: set[int] = set()  # keys this transaction added: nothing refers to them yet

    def many(self, wanted: Sequence[str]) -> list[int]:
        unknown = {stored_fingerprint(p): p for p in wanted if p not in self.known}
        for chunk in chunks(list(unknown)):
            marks = ",".join("?" * len(chunk))
            self.known.update(
                (unknown[stored], key)
                for stored, key in self.conn.execute(
                    f"SELECT fingerprint, id FROM fingerprints WHERE fingerprint IN ({marks})",
                    chunk,
                )
            )
        missing = [(s, p) for s, p in unknown.items() if p not in self.known]
        if missing:
            first = next_id(self.conn, "fingerprints")
            self.conn.executemany(
                "INSERT INTO fingerprints (id, fingerprint) VALUES (?, ?)",
                ((first + n, stored) for n, (stored, _) in enumerate(missing)),
            )
            self.known.update((p, first + n) for n, (_, p) in enumerate(missing))
            self.added.update(range(first, first + len(missing)))
        return [self.known[p] for p in wanted]


def write_findings(
    conn: sqlite3.Connection,
    seq: int,
    findings: Sequence[Finding],
    objects: keys.ObjectKeys,
    policies: dict[str, compact.PolicyText],
) -> tuple[list[Sighting], set[int], dict[tuple[str, int], list[tuple[int, str]]]]:
    """A run's findings as version 7's writer stored them (one chunk: tests are small)."""
    fingerprints = FingerprintKeys(conn)
    object_keys = [keys.object_key(f.ref) for f in findings]
    object_ids = objects.many(object_keys)
    finding_ids = fingerprints.many([f.fingerprint for f in findings])
    values = [
        keys.content_values(f, o, k, policies.get(f.check) if f.category == "policy" else None)
        for f, o, k in zip(findings, object_ids, object_keys, strict=True)
    ]
    contents = keys.finding_content_ids(conn, finding_ids, values, fingerprints.added)
    conn.executemany(
        "INSERT INTO run_findings (run, position, content) VALUES (?, ?, ?)",
        ((seq, n, c) for n, c in enumerate(contents)),
    )
    messages: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for finding, object_id, content in zip(findings, object_ids, contents, strict=True):
        message = compact.message_from_finding(finding)
        if message is not None:
            messages.setdefault((finding.check, object_id), []).append((content, message))
    sightings = list(map(Sighting, finding_ids, (k[0] for k in object_keys), contents))
    return sightings, fingerprints.added, messages
