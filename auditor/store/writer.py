"""Recording runs: a row at the start, everything else in one transaction at the end.

Rows go in through the connection's `executemany` rather than sqlite-utils' `insert_all`:
a run of 100,000 findings is a few hundred thousand rows, and the per-row dict handling is
most of the time otherwise (bench/store).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlite_utils import Database

import auditor
from auditor.model import (
    RESOURCE_STATUSES,
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    ResourceRecord,
    ResourceRef,
    Run,
    StageError,
)
from auditor.store import history, keys
from auditor.store.keys import to_json_text
from auditor.store.schema import now_timestamp, utc_timestamp, write_transaction

__all__ = ["RESOURCE_STATUSES", "ResourceRecord", "begin_run", "finish_run", "to_json_text"]


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
    with write_transaction(db):
        row = db.execute(
            "SELECT seq, finished, started FROM runs WHERE id = ?", [run.id]
        ).fetchone()
        if row is None:
            raise ValueError(f"run {run.id} was never begun: call begin_run first")
        # `started` as begun is the run's time everywhere, history included
        seq, finished, started = row
        if finished is not None:
            # A second finish would record every finding of the run twice.
            raise ValueError(f"run {run.id} is already finished")
        db.table("runs").update(
            run.id,
            {
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
            },
        )
        conn = db.conn
        objects = keys.ObjectKeys(conn)
        sightings = _write_findings(conn, seq, findings, objects)
        _write_resources(conn, seq, resources, objects)
        _write_evaluations(conn, seq, list(evaluations), list(policies), objects)
        db.table("errors").insert_all(_error_rows(run.id, errors))
        db.table("attestations").insert_all(_attestation_rows(run.id, attestations))
        recorded = history.RecordedRun(
            seq,
            started,
            run.status == "complete",
            tuple(c.name for c in run.clusters),
        )
        history.record(conn, recorded, sightings)


# Findings are written in chunks as they come, so a large run is never held twice in memory.
_CHUNK = 1000


def _write_findings(
    conn: sqlite3.Connection, seq: int, findings: Iterable[Finding], objects: keys.ObjectKeys
) -> list[history.Sighting]:
    sightings: list[history.Sighting] = []
    chunk: list[Finding] = []
    for finding in findings:
        chunk.append(finding)
        if len(chunk) == _CHUNK:
            sightings += _write_finding_chunk(conn, seq, len(sightings), chunk, objects)
            chunk = []
    sightings += _write_finding_chunk(conn, seq, len(sightings), chunk, objects)
    return sightings


def _write_finding_chunk(
    conn: sqlite3.Connection,
    seq: int,
    start: int,
    findings: Sequence[Finding],
    objects: keys.ObjectKeys,
) -> list[history.Sighting]:
    object_ids = objects.many([keys.object_key(f.ref) for f in findings])
    values = [keys.finding_values(f, o) for f, o in zip(findings, object_ids, strict=True)]
    digests = [keys.digest(*v) for v in values]
    content = keys.content_ids(
        conn, "finding_contents", dict(zip(digests, values, strict=True)), keys.FINDING_COLUMNS
    )
    conn.executemany(
        "INSERT INTO run_findings (run, position, content) VALUES (?, ?, ?)",
        ((seq, start + n, content[d]) for n, d in enumerate(digests)),
    )
    return [
        history.Sighting(v[0], f.ref.cluster, content[d])
        for f, v, d in zip(findings, values, digests, strict=True)
    ]


def _write_resources(
    conn: sqlite3.Connection,
    seq: int,
    resources: Iterable[ResourceRecord],
    objects: keys.ObjectKeys,
) -> None:
    records = list(resources)
    object_ids = objects.many([keys.object_key(r.ref) for r in records])
    conn.executemany(
        "INSERT INTO run_resources (run, position, object, status, origin, line, body_digest)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            (seq, position, o, r.status, r.origin, r.line, r.body_digest)
            for position, (r, o) in enumerate(zip(records, object_ids, strict=True))
        ),
    )


def _messages_text(evaluation: Evaluation) -> str | None:
    if not evaluation.messages:
        return None
    messages = [
        {"rule": m.rule, "msg": m.msg, "details": dict(m.details)} for m in evaluation.messages
    ]
    return to_json_text(messages, what=f"evaluation of {evaluation.policy}: messages")


def _write_evaluations(
    conn: sqlite3.Connection,
    seq: int,
    evaluations: Sequence[Evaluation],
    policies: Sequence[PolicyInfo],
    objects: keys.ObjectKeys,
) -> None:
    known = {p.id for p in policies}
    # A policy the caller did not describe (a test, an older caller) is known by its id.
    described = [*policies, *(PolicyInfo(e.policy) for e in evaluations if e.policy not in known)]
    policy_ids = keys.policy_ids(conn, {p.id: p for p in described}.values())
    texts = [_messages_text(e) for e in evaluations]
    object_ids = objects.many([keys.object_key(e.ref) for e in evaluations if e.ref is not None])
    object_of = iter(object_ids)
    rows = {keys.digest(t): (t,) for t in texts if t is not None}
    message_ids = keys.content_ids(conn, "evaluation_messages", rows, ("messages",))
    conn.executemany(
        "INSERT INTO run_evaluations (run, position, policy, object, result, messages,"
        " duration_us, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                seq,
                position,
                policy_ids[e.policy],
                next(object_of) if e.ref is not None else None,
                e.result,
                message_ids[keys.digest(text)] if text is not None else None,
                round(e.duration_ms * 1000),
                e.error,
            )
            for position, (e, text) in enumerate(zip(evaluations, texts, strict=True))
        ),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO run_policies (run, policy) VALUES (?, ?)",
        ((seq, key) for key in policy_ids.values()),
    )


def _clusters_json(run: Run) -> str:
    return to_json_text(
        [cluster.to_json() for cluster in run.clusters], what=f"run {run.id} clusters"
    )


def _error_rows(run_id: str, errors: Iterable[StageError]) -> Iterator[dict[str, Any]]:
    for error in errors:
        yield {
            "run_id": run_id,
            "stage": error.stage,
            "cluster": error.cluster,
            "target": error.target,
            "message": error.message,
        }


def _ref_columns(ref: ResourceRef | None) -> dict[str, str | None]:
    if ref is None:
        return {"cluster": None, "api_version": None, "kind": None, "namespace": None, "name": None}
    return {
        "cluster": ref.cluster,
        "api_version": ref.api_version,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _attestation_rows(run_id: str, attestations: Iterable[Attestation]) -> Iterator[dict[str, Any]]:
    for att in attestations:
        yield {
            "run_id": run_id,
            **_ref_columns(att.ref),
            "attestation": att.attestation,
            "source": att.source,
            "bundle_digest": att.bundle_digest,
            "subject_digest": att.subject_digest,
            "authority": att.authority,
            "identity": att.identity,
            "verified": int(att.verified),
            "reason": att.reason,
            "details": to_json_text(dict(att.details), what=f"attestation {att.attestation}"),
        }
