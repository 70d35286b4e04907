"""Stores as earlier auditors wrote them: the schema of version 1, 2, 3, 6 or 7 (the migrations of
the time) and rows exactly as their writers inserted them. Frozen: a store in the field was
written this way, whatever the writer does today."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from auditor.model import (
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    ResourceRecord,
    ResourceRef,
    Run,
    StageError,
)
from auditor.store import keys, writer
from auditor.store.migrations import MIGRATIONS, v3history
from auditor.store.schema import connect, utc_timestamp, write_transaction
from tests.store import v7history


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _ref(ref: ResourceRef | None) -> dict[str, Any]:
    if ref is None:
        return {"cluster": None, "api_version": None, "kind": None, "namespace": None, "name": None}
    return {
        "cluster": ref.cluster,
        "api_version": ref.api_version,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _write_errors_and_attestations(
    db: Database,
    run: Run,
    errors: Sequence[StageError],
    attestations: Sequence[Attestation],
) -> None:
    db.table("errors").insert_all(
        {
            "run_id": run.id,
            "stage": e.stage,
            "cluster": e.cluster,
            "target": e.target,
            "message": e.message,
        }
        for e in errors
    )
    db.table("attestations").insert_all(
        {
            "run_id": run.id,
            **_ref(a.ref),
            "attestation": a.attestation,
            "source": a.source,
            "bundle_digest": a.bundle_digest,
            "subject_digest": a.subject_digest,
            "authority": a.authority,
            "identity": a.identity,
            "verified": int(a.verified),
            "reason": a.reason,
            "details": _json(dict(a.details)),
        }
        for a in attestations
    )


def write_run(
    db: Database,
    version: int,
    run: Run,
    *,
    resources: Sequence[ResourceRecord],
    findings: Sequence[Finding],
    errors: Sequence[StageError] = (),
    evaluations: Sequence[Evaluation] = (),
    attestations: Sequence[Attestation] = (),
    exit_code: int,
) -> None:
    if version >= 6:
        rows: dict[str, Any] = {
            "resources": resources,
            "findings": findings,
            "errors": errors,
            "evaluations": evaluations,
            "attestations": attestations,
            "exit_code": exit_code,
        }
        if version >= 8:
            # schema 8's rows are today's: the writer of version 9 fills the same tables and
            # columns (only how `fingerprints` is indexed changed)
            writer.begin_run(db, run)
            writer.finish_run(db, run, **rows)
        else:
            write_run_v6(db, run, **rows)
        return
    if version >= 3:
        # schema 3's runs and rows; version 4 (run_shards) only adds a table
        write_run_v3(
            db,
            run,
            resources=resources,
            findings=findings,
            errors=errors,
            evaluations=evaluations,
            attestations=attestations,
            exit_code=exit_code,
        )
        return
    db.table("runs").insert(
        {
            "id": run.id,
            "trigger": run.trigger,
            "started": utc_timestamp(run.started),
            "finished": utc_timestamp(run.finished) if run.finished else None,
            "status": run.status,
            "git_repo": run.git_repo,
            "git_revision": run.git_revision,
            "git_commit": run.git_commit,
            "clusters": _json([c.to_json() for c in run.clusters]),
            "counts": _json(dict(run.counts)),
            "config_path": "",
            "exit_code": exit_code,
            "auditor_version": "0.1.0",
        }
    )
    db.table("resources").insert_all(
        {
            "run_id": run.id,
            **_ref(r.ref),
            "status": r.status,
            "origin": r.origin,
            "body_digest": r.body_digest,
        }
        for r in resources
    )
    db.table("findings").insert_all(
        {
            "run_id": run.id,
            "fingerprint": f.fingerprint,
            "category": f.category,
            "check_id": f.check,
            "severity": f.severity,
            "class": f.drift_class,
            **_ref(f.ref),
            "path": f.path,
            "message": f.message,
            "expected": _json(f.expected),
            "actual": _json(f.actual),
            "changed_by_manager": f.changed_by.manager if f.changed_by else None,
            "changed_by_operation": f.changed_by.operation if f.changed_by else None,
            "changed_by_time": f.changed_by.time if f.changed_by else None,
            "details": _json(dict(f.details)),
            "controls": _json(list(f.controls)),
        }
        for f in findings
    )
    if version < 2:
        _write_errors_and_attestations(db, run, errors, [])
        return
    db.table("evaluations").insert_all(
        {
            "run_id": run.id,
            "policy": e.policy,
            **_ref(e.ref),
            "result": e.result,
            "messages": _json(
                [{"rule": m.rule, "msg": m.msg, "details": dict(m.details)} for m in e.messages]
            ),
            "duration_ms": e.duration_ms,
            "error": e.error,
        }
        for e in evaluations
    )
    _write_errors_and_attestations(db, run, errors, attestations)


def legacy_store(path: Path, version: int) -> Database:
    """A store at schema `version`, as the auditor of that version created it."""
    return connect(path, migrations=MIGRATIONS[:version])


def _v3_finding_values(finding: Finding, object_id: int) -> tuple[Any, ...]:
    changed_by = finding.changed_by
    return (
        finding.fingerprint,
        object_id,
        finding.category,
        finding.check,
        finding.severity,
        finding.drift_class,
        finding.path,
        finding.message,
        _json(finding.expected),
        _json(finding.actual),
        changed_by.manager if changed_by else None,
        changed_by.operation if changed_by else None,
        changed_by.time if changed_by else None,
        _json(dict(finding.details)) if finding.details else "{}",
        _json(list(finding.controls)) if finding.controls else "[]",
    )


def write_run_v3(
    db: Database,
    run: Run,
    *,
    resources: Sequence[ResourceRecord],
    findings: Sequence[Finding],
    errors: Sequence[StageError] = (),
    evaluations: Sequence[Evaluation] = (),
    attestations: Sequence[Attestation] = (),
    policies: Sequence[PolicyInfo] = (),
    exit_code: int,
) -> None:
    """One run as the writer of schema version 3 recorded it (auditor at commit 88c8b1a)."""
    conn = db.conn
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
    started = utc_timestamp(run.started)
    db.table("runs").insert(
        {
            "id": run.id,
            "trigger": run.trigger,
            "started": started,
            "finished": utc_timestamp(run.finished) if run.finished else None,
            "status": run.status,
            "git_repo": run.git_repo,
            "git_revision": run.git_revision,
            "git_commit": run.git_commit,
            "clusters": _json([c.to_json() for c in run.clusters]),
            "counts": _json(dict(run.counts)),
            "config_path": "",
            "exit_code": exit_code,
            "auditor_version": "0.1.0",
            "trust_policy_digest": run.trust_policy_digest or None,
            "notes": _json(list(run.notes)),
            "seq": seq,
        }
    )
    objects = keys.ObjectKeys(conn)
    sightings = []
    for position, finding in enumerate(findings):
        values = _v3_finding_values(finding, objects(keys.object_key(finding.ref)))
        content = keys.content_ids(
            conn, "finding_contents", {keys.digest(*values): values}, v3history.FINDING_COLUMNS
        )
        content_id = next(iter(content.values()))
        conn.execute("INSERT INTO run_findings VALUES (?, ?, ?)", (seq, position, content_id))
        sightings.append(v3history.Sighting(finding.fingerprint, finding.ref.cluster, content_id))
    for position, record in enumerate(resources):
        conn.execute(
            "INSERT INTO run_resources VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                position,
                objects(keys.object_key(record.ref)),
                record.status,
                record.origin,
                record.line,
                record.body_digest,
            ),
        )
    known = {p.id for p in policies}
    described = [*policies, *(PolicyInfo(e.policy) for e in evaluations if e.policy not in known)]
    policy_ids = keys.policy_ids(conn, {p.id: p for p in described}.values())
    for position, evaluation in enumerate(evaluations):
        messages = None
        if evaluation.messages:
            text = _json(
                [
                    {"rule": m.rule, "msg": m.msg, "details": dict(m.details)}
                    for m in evaluation.messages
                ]
            )
            found = keys.content_ids(
                conn, "evaluation_messages", {keys.digest(text): (text,)}, ("messages",)
            )
            messages = next(iter(found.values()))
        conn.execute(
            "INSERT INTO run_evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                position,
                policy_ids[evaluation.policy],
                objects(keys.object_key(evaluation.ref)) if evaluation.ref else None,
                evaluation.result,
                messages,
                round(evaluation.duration_ms * 1000),
                evaluation.error,
            ),
        )
    conn.executemany(
        "INSERT OR IGNORE INTO run_policies VALUES (?, ?)",
        ((seq, key) for key in policy_ids.values()),
    )
    _write_errors_and_attestations(db, run, errors, attestations)
    clusters = tuple(c.name for c in run.clusters)
    recorded = v3history.RecordedRun(seq, started, run.status == "complete", clusters)
    v3history.record(conn, recorded, sightings)


def _v6_finding_content_ids(
    conn: sqlite3.Connection,
    findings: Sequence[int],
    values: Sequence[tuple[Any, ...]],
    added: set[int],
) -> list[int]:
    """How the writer of schema version 6 keyed finding contents: by a digest of their values,
    stored in the row (auditor at commit 14de775)."""
    digests = [keys.digest(*v) for v in values]
    found: dict[tuple[int, bytes], int] = {}
    old = [f for f in dict.fromkeys(findings) if f not in added]
    if old:
        marks = ",".join("?" * len(old))
        found.update(
            ((row[1], bytes(row[2])), row[0])
            for row in conn.execute(
                f"SELECT id, finding, digest FROM finding_contents WHERE finding IN ({marks})", old
            )
        )
    new: list[tuple[Any, ...]] = []
    first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM finding_contents").fetchone()[0]
    ids = []
    for finding, key, row in zip(findings, digests, values, strict=True):
        content = found.get((finding, key))
        if content is None:
            content = found[(finding, key)] = first + len(new)
            new.append((content, finding, key, *row))
        ids.append(content)
    if new:
        names = ", ".join(("id", "finding", "digest", *keys.CONTENT_COLUMNS))
        marks = ", ".join("?" * (len(keys.CONTENT_COLUMNS) + 3))
        conn.executemany(f"INSERT INTO finding_contents ({names}) VALUES ({marks})", new)
    return ids


@contextlib.contextmanager
def _v6_contents() -> Iterator[None]:
    # Version 6's writer is today's but for how it keys finding contents (the one change of
    # version 7): everything else it stores is what today's writer stores.
    today = keys.finding_content_ids
    keys.finding_content_ids = _v6_finding_content_ids
    try:
        yield
    finally:
        keys.finding_content_ids = today


def write_run_v6(
    db: Database,
    run: Run,
    *,
    resources: Sequence[ResourceRecord],
    findings: Sequence[Finding],
    errors: Sequence[StageError] = (),
    evaluations: Sequence[Evaluation] = (),
    attestations: Sequence[Attestation] = (),
    policies: Sequence[PolicyInfo] = (),
    exit_code: int,
) -> None:
    """One run as the writer of schema version 6 or 7 recorded it: today's writer for
    everything but the findings and their history (the changes of version 8: tests/store/
    v7history.py) and, in version 6, how finding contents are keyed (`_v6_contents`)."""
    with _v6_contents() if _version(db) == 6 else contextlib.nullcontext():
        writer.begin_run(db, run)
        with write_transaction(db):
            seq, started = writer._begun(db, run.id)
            db.table("runs").update(run.id, writer._outcome(run, exit_code))
            conn = db.conn
            objects = keys.ObjectKeys(conn)
            described = writer._write_policies(conn, seq, list(policies), list(evaluations))
            sightings, added, messages = v7history.write_findings(
                conn, seq, findings, objects, described
            )
            writer._write_resources(conn, seq, resources, objects)
            writer._write_evaluations(conn, seq, evaluations, described, objects, messages)
            writer._write_errors(conn, run.id, errors)
            writer._write_attestations(conn, run.id, attestations)
            clusters = tuple(c.name for c in run.clusters)
            recorded = v7history.RecordedRun(seq, started, run.status == "complete", clusters)
            v7history.record(conn, recorded, sightings, added)


def _version(db: Database) -> int:
    return int(db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])
