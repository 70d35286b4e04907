"""Finding history by fingerprint, kept up to date as each run is recorded.

Each finding's `fingerprints` row holds its identity and its history: first and last seen, how
many runs saw it, open since, resolved at. Computing that from every run's findings is a
window over the whole table (seconds on a year of nightly runs), so the writer applies each
run to it in the run's transaction instead, and the `finding_history` view reads it. Every
sighting (`run_findings`) also keeps `runs_seen` and `open_since` as they stood at the end of
its run, so a report of an older run shows the history of then, not of today.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from auditor.store.inserts import insert_rows
from auditor.store.keys import chunks, next_id


@dataclass(slots=True)
class _State:
    """A finding's history as this transaction knows it."""

    key: int  # fingerprints.id
    stored: str | bytes  # the fingerprint as `fingerprints` holds it
    runs_seen: int  # 0: no history yet (new, or forgotten by `auditor prune`)
    first_seen: str | None
    open_since: str | None  # None once resolved
    last_run: int | None
    last_content: int | None
    added: bool  # no row yet: this transaction took its key


# Known findings, by whether they were still open: an UPDATE that does not name resolved_at
# leaves the partial index on open findings alone (the nightly run sees mostly open findings
# again), and two plain statements beat one with a CASE over 100,000 rows.
_SEEN_OPEN = """
UPDATE fingerprints SET
    first_seen = MIN(first_seen, ?1), last_seen = ?1, runs_seen = runs_seen + 1,
    last_run = ?2, last_content = ?3
WHERE id = ?4
"""
_SEEN_AGAIN = """
UPDATE fingerprints SET
    first_seen = MIN(first_seen, ?1), last_seen = ?1, runs_seen = runs_seen + 1,
    open_since = ?1, resolved_at = NULL, last_run = ?2, last_content = ?3
WHERE id = ?4
"""
# The same for the findings seen as they were last seen, the nightly run's most: one statement
# for many, naming only what changes (a third of the time of one UPDATE a finding).
_SEEN_AS_BEFORE = """
UPDATE fingerprints SET
    first_seen = MIN(first_seen, ?1), last_seen = ?1, runs_seen = runs_seen + 1, last_run = ?2
WHERE id IN ({keys})
"""
# A fingerprint whose history `auditor prune` forgot starts one again.
_SEEN_FIRST = """
UPDATE fingerprints SET
    cluster = ?5, first_seen = ?1, last_seen = ?1, runs_seen = 1, open_since = ?1,
    resolved_at = NULL, last_run = ?2, last_content = ?3
WHERE id = ?4
"""
# The run's time and key are bound once a statement (`insert_rows`' shared values).
_NEW = (
    "INSERT INTO fingerprints (first_seen, last_seen, open_since, last_run, id, fingerprint,"
    " cluster, last_content, runs_seen, resolved_at)"
)
_NEW_ROW = "(?1, ?1, ?1, ?2, ?, ?, ?, ?, 1, NULL)"
# The partial index on open findings by cluster makes this touch only what is open there.
_RESOLVED = """
UPDATE fingerprints SET resolved_at = ?, open_since = NULL
WHERE resolved_at IS NULL AND last_run != ? AND cluster IN (SELECT value FROM json_each(?))
"""


def _sorted(stored: list[str | bytes]) -> list[str | bytes]:
    """Fingerprints in the order of their index: SQLite sorts text before blobs; within each,
    Python's order is SQLite's (binary). Nearly always all blobs, sorted as they are."""
    try:
        return sorted(stored)  # type: ignore[type-var]
    except TypeError:  # text and blobs
        return sorted(stored, key=lambda s: (isinstance(s, bytes), s))


def _bound(stored: str | bytes) -> str | bytearray:
    """A stored fingerprint as bound to a statement: Python's sqlite3 binds a bytearray as the
    blob it holds, as it is, but sends bytes through its adapter registry first (schema.py):
    100,000 new fingerprint rows in 0.081 s, against 0.103 s."""
    return bytearray(stored) if isinstance(stored, bytes) else stored


_first = itemgetter(0)

_STATE_COLUMNS = "fingerprint, id, runs_seen, first_seen, open_since, last_run, last_content"
# Read a cluster's open findings at once unless they are this many times the run's findings:
# one of them read over costs about a quarter of one looked up.
_LOOK_OVER_FACTOR = 3


class RunHistory:
    """The findings of one run being recorded: their keys, and their history as the run
    changes it. One per run and transaction (keys of an aborted transaction must not be
    remembered)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        seq: int,
        started: str,
        *,
        expected: int = 0,
        none_stored: bool = False,
    ) -> None:
        """`expected`: how many findings the run has, when known (0: not known).
        `none_stored`: `fingerprints` was empty when the transaction began (a store's first run
        of findings): every fingerprint of the run is new, and none is looked up."""
        self.conn, self.seq, self.started = conn, seq, started
        self._states: dict[str | bytes, _State] = {}  # by fingerprint as stored
        self._by_key: dict[int, _State] = {}
        # keys this transaction took: no content stored before it refers to them
        self.added: set[int] = set()
        self._none_stored = none_stored
        self._expected = expected
        self._looked_over: set[str] = set()  # clusters whose open findings were read at once

    def keys(self, fingerprints: Sequence[str | bytes], clusters: Sequence[str] = ()) -> list[int]:
        """The key of each fingerprint as stored (`keys.stored_fingerprint`), of a finding
        about the cluster at the same place in `clusters` when given, looking up the ones this
        run has not met yet and taking new keys for those the store does not hold."""
        if not self._none_stored:
            for cluster in set(clusters) - self._looked_over:
                self._look_over(cluster)
        states = self._states
        unknown = [p for p in dict.fromkeys(fingerprints) if p not in states]
        for part in () if self._none_stored else chunks(unknown):
            marks = ",".join("?" * len(part))
            self._found(
                self.conn.execute(
                    f"SELECT {_STATE_COLUMNS} FROM fingerprints WHERE fingerprint IN ({marks})",
                    part,
                )
            )
        # New keys in the fingerprints' order, so that the rows and their unique index grow in
        # the same order; not where that index is built after the rows (bulk.py), or nothing is
        # stored: in the findings' order, the rows are appended as they come.
        missing = [p for p in unknown if p not in states]
        if not self._none_stored:
            missing = _sorted(missing)
        if missing:
            first = next_id(self.conn, "fingerprints")
            for n, stored in enumerate(missing):
                new = _State(first + n, stored, 0, None, None, None, None, True)
                states[stored] = self._by_key[first + n] = new
            self.added.update(range(first, first + len(missing)))
        return [states[p].key for p in fingerprints]

    def _look_over(self, cluster: str) -> None:
        """Reads every open finding of `cluster` at once when the run is about as large as
        what is open there: the nightly run sees most of them again, and one pass over the
        index of open findings takes a third of the time of looking each one up by its
        fingerprint (bench/store: 100,000 findings seen again, 0.14 s against 0.26-0.47 s).
        A small run over a cluster with many open findings looks its own up."""
        self._looked_over.add(cluster)
        where = "cluster = ? AND resolved_at IS NULL"  # the partial index fingerprints_open
        (open_count,) = self.conn.execute(
            f"SELECT COUNT(*) FROM fingerprints WHERE {where}", (cluster,)
        ).fetchone()
        if not open_count or open_count > _LOOK_OVER_FACTOR * self._expected:
            return
        rows = self.conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM fingerprints WHERE {where}", (cluster,)
        )
        self._found(rows)

    def _found(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Keeps the history of stored fingerprints (rows of _STATE_COLUMNS)."""
        states, by_key = self._states, self._by_key
        for stored, key, runs, first_seen, since, last_run, content in rows:
            found = _State(key, stored, runs or 0, first_seen, since, last_run, content, False)
            states[stored] = by_key[key] = found

    def last_contents(self, keys: Sequence[int]) -> dict[int, int]:
        """The content each of these findings was last seen with, for those that have one."""
        states = self._by_key
        return {key: content for key in keys if (content := states[key].last_content) is not None}

    def seen(
        self, findings: Sequence[int], clusters: Sequence[str], contents: Sequence[int]
    ) -> list[tuple[int, str | None]]:
        """Applies sightings (finding key, its cluster, the content seen) to the history and
        returns (runs seen, open since) of each as at the end of this run, open since None
        when it is the finding's first sighting (most are: the text is kept only for a finding
        that came back). The first sighting of a finding in the run is the one its history
        keeps."""
        new, first, still_open, reopened, as_before = [], [], [], [], []
        started, seq = self.started, self.seq
        out: list[tuple[int, str | None]] = []
        by_key = self._by_key
        for key, cluster, content in zip(findings, clusters, contents, strict=True):
            state = by_key[key]
            if state.added:
                # Its first sighting ever (most of a store's first run): the history it starts.
                new.append((key, _bound(state.stored), cluster, content))
                state.added = False
                state.runs_seen, state.first_seen, state.open_since = 1, started, started
                state.last_run, state.last_content = seq, content
                out.append((1, None))
                continue
            if state.last_run != seq:
                if state.runs_seen == 0:
                    first.append((started, seq, content, key, cluster))
                elif state.open_since is not None and content == state.last_content:
                    as_before.append(key)
                elif state.open_since is not None:
                    still_open.append((started, seq, content, key))
                else:
                    reopened.append((started, seq, content, key))
                if state.runs_seen == 0 or started < (state.first_seen or started):
                    state.first_seen = started
                state.runs_seen += 1
                state.open_since = state.open_since or started
                state.last_run, state.last_content = seq, content
            since = state.open_since
            out.append((state.runs_seen, None if since == state.first_seen else since))
        new.sort(key=_first)  # by key, as `keys` took them: appended to the table in order
        insert_rows(self.conn, _NEW, _NEW_ROW, new, (started, seq))
        for statement, rows in ((_SEEN_OPEN, still_open), (_SEEN_AGAIN, reopened)):
            self.conn.executemany(statement, rows)
        for part in chunks(as_before):
            marks = ",".join("?" * len(part))
            self.conn.execute(_SEEN_AS_BEFORE.format(keys=marks), (started, seq, *part))
        self.conn.executemany(_SEEN_FIRST, first)
        return out

    def forget(self) -> None:
        """Drops what this object holds (every row is written): a finding met again is read
        back from the store, its history as this run left it."""
        self._states, self._by_key = {}, {}
        self._looked_over = set()
        self._none_stored = False  # what this transaction wrote is in the store now

    def resolve(self, clusters: Sequence[str]) -> None:
        """The end of a complete run over `clusters`: what it did not see there is resolved."""
        scope = json.dumps(["", *clusters])
        self.conn.execute(_RESOLVED, (self.started, self.seq, scope))
