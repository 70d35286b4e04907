"""Recording runs: a row at the start, everything else in one transaction at the end.

Rows go in through the connection, several to a statement (`inserts.insert_rows`), rather
than sqlite-utils' `insert_all`: a run of 100,000 findings is a few hundred thousand rows, and
the per-row dict handling is most of the time otherwise (bench/store).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field

from sqlite_utils import Database

import auditor
from auditor.gc_pause import gc_paused
from auditor.model import (
    RESOURCE_STATUSES,
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    ResourceRecord,
    Run,
    StageError,
)
from auditor.store import bulk, compact, history, keys
from auditor.store.inserts import insert_rows
from auditor.store.jsonencode import encoder
from auditor.store.keys import to_json_text
from auditor.store.schema import now_timestamp, utc_timestamp, write_transaction

__all__ = [
    "RESOURCE_STATUSES",
    "ResourceRecord",
    "RunRows",
    "appending_run",
    "begin_run",
    "finish_run",
    "to_json_text",
]


def begin_run(db: Database, run: Run, *, config_path: str = "") -> None:
    """Commit the run's row at once, as `running` with no finish time.

    If the process dies before finish_run, that row is what remains: `running` with no finish
    time long after it started, visibly never finished and never clean.
    """
    row = {
        "id": run.id,
        "trigger": run.trigger,
        "started": utc_timestamp(run.started),
        "finished": None,
        "status": "running",
        "git_repo": run.git_repo,
        "git_revision": run.git_revision,
        "git_commit": run.git_commit,
        "clusters": _clusters_json(run),
        "counts": to_json_text(dict(run.counts), what=f"run {run.id} counts"),
        "config_path": config_path,
        "exit_code": None,
        "auditor_version": auditor.__version__,
    }
    try:
        with write_transaction(db):
            # The integer key the run's rows use; taken under the write lock, so unique.
            row["seq"] = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
            db.table("runs").insert(row)
    except sqlite3.IntegrityError as error:
        raise ValueError(f"run {run.id} is already in the store") from error


def finish_run(
    db: Database,
    run: Run,
    *,
    resources: Iterable[ResourceRecord],
    findings: Iterable[Finding],
    errors: Iterable[StageError],
    exit_code: int,
    evaluations: Iterable[Evaluation] = (),
    attestations: Iterable[Attestation] = (),
    policies: Iterable[PolicyInfo] = (),
) -> None:
    """Record the run's outcome and all its rows in one transaction, and its findings in the
    history. On any exception nothing of it is kept and the row stays as begin_run left it."""
    # A large run makes a few hundred thousand short-lived rows and keys, none in a cycle: with
    # the collector on, each burst of them walks everything alive again.
    with gc_paused(), write_transaction(db):
        # `started` as begun is the run's time everywhere, history included
        seq, started = _begun(db, run.id)
        db.table("runs").update(run.id, _outcome(run, exit_code))
        conn = db.conn
        with bulk.indexes_after_rows(conn) as empty:
            objects = keys.ObjectKeys(conn, none_stored="objects" in empty)
            findings_history = history.RunHistory(
                conn,
                seq,
                started,
                expected=len(findings) if isinstance(findings, Sized) else 0,
                none_stored="fingerprints" in empty,
            )
            evaluations = list(evaluations)
            described = _write_policies(conn, seq, list(policies), evaluations)
            written = _Written()
            for chunk in _chunks(findings):
                _write_finding_chunk(
                    conn, seq, chunk, objects, findings_history, described, written
                )
            _write_resources(conn, seq, resources, objects)
            _write_evaluations(conn, seq, evaluations, described, objects, written.messages)
            _write_errors(conn, run.id, errors)
            _write_attestations(conn, run.id, attestations)
        if run.status == "complete":
            findings_history.resolve([c.name for c in run.clusters])


def _begun(db: Database, run_id: str) -> tuple[int, str]:
    """The run's key and start time, for finishing it: ValueError unless begun, not finished."""
    row = db.execute("SELECT seq, finished, started FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise ValueError(f"run {run_id} was never begun: call begin_run first")
    seq, finished, started = row
    if finished is not None:
        # A second finish would record every finding of the run twice.
        raise ValueError(f"run {run_id} is already finished")
    return seq, started


def _outcome(run: Run, exit_code: int) -> dict[str, object]:
    """The columns of a run's row that finishing it sets."""
    return {
        "finished": utc_timestamp(run.finished) if run.finished else now_timestamp(),
        "status": run.status,
        "git_repo": run.git_repo,
        "git_revision": run.git_revision,
        "git_commit": run.git_commit,
        "clusters": _clusters_json(run),
        "counts": to_json_text(dict(run.counts), what=f"run {run.id} counts"),
        "exit_code": exit_code,
        "trust_policy_digest": run.trust_policy_digest or None,
        "notes": to_json_text(list(run.notes), what=f"run {run.id} notes"),
    }


# Findings are written in chunks as they come, so a large run is never held twice in memory.
_CHUNK = 1000


def _chunks(findings: Iterable[Finding]) -> Iterator[list[Finding]]:
    chunk: list[Finding] = []
    for finding in findings:
        chunk.append(finding)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _Written:
    """What the run's findings left for the history and the evaluations."""

    count: int = 0  # findings written
    first_position: int = 0  # of the findings in the run: 0 unless appended (RunRows)
    # (policy id, object key) -> (content key, the evaluation message it gives back)
    messages: dict[tuple[str, int], list[tuple[int, str]]] = field(default_factory=dict)


def _write_policies(
    conn: sqlite3.Connection,
    seq: int,
    policies: Sequence[PolicyInfo],
    evaluations: Sequence[Evaluation],
) -> dict[str, compact.PolicyText]:
    known = {p.id for p in policies}
    # A policy the caller did not describe (a test, an older caller) is known by its id.
    described = {
        p.id: p
        for p in (*policies, *(PolicyInfo(e.policy) for e in evaluations if e.policy not in known))
    }
    policy_ids = keys.policy_ids(conn, described.values())
    conn.executemany(
        "INSERT OR IGNORE INTO run_policies (run, policy) VALUES (?, ?)",
        ((seq, key) for key in policy_ids.values()),
    )
    return {
        p.id: compact.PolicyText(policy_ids[p.id], p.title, p.source, tuple(p.controls))
        for p in described.values()
    }


def _write_finding_chunk(
    conn: sqlite3.Connection,
    seq: int,
    findings: Sequence[Finding],
    objects: keys.ObjectKeys,
    findings_history: history.RunHistory,
    policies: dict[str, compact.PolicyText],
    written: _Written,
) -> None:
    object_keys = [keys.object_key(f.ref) for f in findings]
    object_ids = objects.many(object_keys)
    clusters = [k[0] for k in object_keys]
    finding_ids = findings_history.keys([keys.stored_fingerprint_of(f) for f in findings], clusters)
    values = [
        keys.content_values(f, o, k, policies.get(f.check) if f.category == "policy" else None)
        for f, o, k in zip(findings, object_ids, object_keys, strict=True)
    ]
    contents = keys.finding_content_ids(
        conn,
        finding_ids,
        values,
        findings_history.added,
        findings_history.last_contents(finding_ids),
    )
    then = findings_history.seen(finding_ids, clusters, contents)
    start = written.first_position + written.count
    insert_rows(
        conn,
        "INSERT INTO run_findings (run, position, content, runs_seen, open_since)",
        "(?1, ?, ?, ?, ?)",
        [(start + n, c, *h) for n, (c, h) in enumerate(zip(contents, then, strict=True))],
        (seq,),
    )
    written.count += len(findings)
    for finding, object_id, content in zip(findings, object_ids, contents, strict=True):
        message = compact.message_from_finding(finding)
        if message is not None:
            written.messages.setdefault((finding.check, object_id), []).append((content, message))


def _write_resources(
    conn: sqlite3.Connection,
    seq: int,
    resources: Iterable[ResourceRecord],
    objects: keys.ObjectKeys,
    start: int = 0,
) -> None:
    records = list(resources)
    object_ids = objects.many([keys.object_key(r.ref) for r in records])
    statuses = keys.codes(conn, "resource_statuses", "status", (r.status for r in records))
    # `path@commit` split at its last `@`: a path and a commit are each stored once.
    origins = [r.origin.rpartition("@") if "@" in r.origin else ("", "", r.origin) for r in records]
    parts = keys.interned(
        conn, "origin_parts", (t for p, at, c in origins for t in ((p, c) if at else (c,)))
    )
    insert_rows(
        conn,
        "INSERT INTO run_resources (run, position, object, status, origin_path, origin_commit,"
        " line, body_digest)",
        "(?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                seq,
                position,
                o,
                statuses[r.status],
                parts[path] if at else parts[commit],
                parts[commit] if at else None,
                r.line,
                r.body_digest,
            )
            for position, (r, o, (path, at, commit)) in enumerate(
                zip(records, object_ids, origins, strict=True), start
            )
        ],
    )


def _messages_text(evaluation: Evaluation) -> str:
    messages = [
        {"rule": m.rule, "msg": m.msg, "details": dict(m.details)} for m in evaluation.messages
    ]
    return to_json_text(messages, what=f"evaluation of {evaluation.policy}: messages")


def _derived(
    evaluation: Evaluation,
    object_id: int | None,
    found: dict[tuple[str, int], list[tuple[int, str]]],
) -> list[int] | None:
    """The finding contents this run holds that give back every message of `evaluation`."""
    if object_id is None:
        return None
    candidates = found.get((evaluation.policy, object_id), [])
    refs = []
    for message in evaluation.messages:
        text = compact.message_text(message)
        content = next((c for c, t in candidates if t == text), None)
        if content is None:
            return None
        refs.append(content)
    return refs


_MessageValues = tuple[str | None, str | None] | int | None


def _message_values(
    evaluation: Evaluation,
    object_id: int | None,
    found: dict[tuple[str, int], list[tuple[int, str]]],
) -> _MessageValues:
    """(messages, contents) of the evaluation's `evaluation_messages` row, or minus the one
    finding content its only message is made of; None without messages."""
    if not evaluation.messages:
        return None
    refs = _derived(evaluation, object_id, found)
    if refs is None:
        return (_messages_text(evaluation), None)
    if len(refs) == 1:
        return -refs[0]
    return (None, _ENCODE_IDS(refs))


def _message_key(values: _MessageValues, keys_of: dict[bytes, int]) -> int | None:
    if values is None or isinstance(values, int):
        return values
    return keys_of[keys.digest(*values)]


_ENCODE_IDS = encoder(separators=(",", ":"))


def _write_evaluations(
    conn: sqlite3.Connection,
    seq: int,
    evaluations: Sequence[Evaluation],
    policies: dict[str, compact.PolicyText],
    objects: keys.ObjectKeys,
    found: dict[tuple[str, int], list[tuple[int, str]]],
    start: int = 0,
) -> None:
    object_ids = objects.many([keys.object_key(e.ref) for e in evaluations if e.ref is not None])
    object_of = iter(object_ids)
    evaluated = [(e, next(object_of) if e.ref is not None else None) for e in evaluations]
    results = keys.codes(conn, "evaluation_results", "result", (e.result for e in evaluations))
    values = [_message_values(e, o, found) for e, o in evaluated]
    rows = {keys.digest(*v): v for v in values if v is not None and not isinstance(v, int)}
    message_ids = keys.content_ids(conn, "evaluation_messages", rows, ("messages", "contents"))
    insert_rows(
        conn,
        "INSERT INTO run_evaluations (run, position, policy, object, result, messages,"
        " duration_us, error)",
        "(?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                seq,
                position,
                policies[e.policy].key,
                o,
                results[e.result],
                _message_key(v, message_ids),
                round(e.duration_ms * 1000),
                e.error,
            )
            for position, ((e, o), v) in enumerate(zip(evaluated, values, strict=True), start)
        ],
    )


def _clusters_json(run: Run) -> str:
    return to_json_text(
        [cluster.to_json() for cluster in run.clusters], what=f"run {run.id} clusters"
    )


def _write_errors(conn: sqlite3.Connection, run_id: str, errors: Iterable[StageError]) -> None:
    conn.executemany(
        "INSERT INTO errors (run_id, stage, cluster, target, message) VALUES (?, ?, ?, ?, ?)",
        ((run_id, e.stage, e.cluster, e.target, e.message) for e in errors),
    )


def _write_attestations(
    conn: sqlite3.Connection, run_id: str, attestations: Iterable[Attestation]
) -> None:
    conn.executemany(
        "INSERT INTO attestations (run_id, cluster, api_version, kind, namespace, name,"
        " attestation, source, bundle_digest, subject_digest, authority, identity, verified,"
        " reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                run_id,
                *(keys.object_key(a.ref) if a.ref is not None else (None,) * 5),
                a.attestation,
                a.source,
                a.bundle_digest,
                a.subject_digest,
                a.authority,
                a.identity,
                int(a.verified),
                a.reason,
                to_json_text(dict(a.details), what=f"attestation {a.attestation}"),
            )
            for a in attestations
        ),
    )


# Appending: a run too large to hold at once (a fleet run merged from its shards).


@contextlib.contextmanager
def appending_run(db: Database, run_id: str) -> Iterator[RunRows]:
    """finish_run for a begun run whose rows come in parts: the caller appends them through
    the RunRows given, in the run's order, then calls its `finish`. One transaction, as
    finish_run: on any exception nothing of it is kept. What is held in memory is one part."""
    with write_transaction(db):
        seq, started = _begun(db, run_id)
        rows = RunRows(db, run_id, seq, started)
        yield rows
        if not rows.finished:
            raise ValueError(f"run {run_id}: its rows were appended but it was never finished")


class RunRows:
    """The rows of one begun run, appended part by part (from `appending_run`).

    Findings, resources and evaluations take the next positions of the run as they come.
    A part ends with `end_part`: the evaluations of a part may take their messages from the
    policy findings appended in the same part (as finish_run does for a whole run), and the
    object keys looked up for it are dropped, so parts about different clusters each hold
    only their own. Findings are applied to the history as they are appended; a finding
    given again in the same run is not seen twice.
    """

    def __init__(self, db: Database, run_id: str, seq: int, started: str) -> None:
        self.db, self.run_id, self.seq, self.started = db, run_id, seq, started
        self.conn = db.conn
        self.finished = False
        self._described: dict[str, compact.PolicyText] = {}
        self._objects = keys.ObjectKeys(self.conn)
        self._history = history.RunHistory(self.conn, seq, started)
        self._messages: dict[tuple[str, int], list[tuple[int, str]]] = {}
        self._next = {"findings": 0, "resources": 0, "evaluations": 0}

    def policies(self, policies: Sequence[PolicyInfo]) -> None:
        """The policies the run loaded, with their METADATA as it was then."""
        self._described.update(_write_policies(self.conn, self.seq, policies, ()))

    def findings(self, findings: Iterable[Finding]) -> None:
        for chunk in _chunks(findings):
            written = _Written(first_position=self._next["findings"])
            _write_finding_chunk(
                self.conn, self.seq, chunk, self._objects, self._history, self._described, written
            )
            self._next["findings"] += len(chunk)
            for key, found in written.messages.items():
                self._messages.setdefault(key, []).extend(found)

    def resources(self, resources: Sequence[ResourceRecord]) -> None:
        _write_resources(self.conn, self.seq, resources, self._objects, self._next["resources"])
        self._next["resources"] += len(resources)

    def evaluations(self, evaluations: Sequence[Evaluation]) -> None:
        undescribed = [e for e in evaluations if e.policy not in self._described]
        if undescribed:
            self._described.update(_write_policies(self.conn, self.seq, (), undescribed))
        _write_evaluations(
            self.conn,
            self.seq,
            evaluations,
            self._described,
            self._objects,
            self._messages,
            self._next["evaluations"],
        )
        self._next["evaluations"] += len(evaluations)

    def attestations(self, attestations: Iterable[Attestation]) -> None:
        _write_attestations(self.conn, self.run_id, attestations)

    def end_part(self) -> None:
        self._messages = {}
        self._objects = keys.ObjectKeys(self.conn)
        self._history.forget()

    def finish(self, run: Run, *, errors: Iterable[StageError], exit_code: int) -> None:
        """The run's outcome and errors; resolves what a complete run no longer has."""
        _write_errors(self.conn, self.run_id, errors)
        self.db.table("runs").update(self.run_id, _outcome(run, exit_code))
        if run.status == "complete":
            self._history.resolve([c.name for c in run.clusters])
        self.finished = True
