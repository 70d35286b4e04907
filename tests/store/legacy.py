"""Stores as earlier auditors wrote them: the schema of version 1, 2 or 3 (the migrations of
the time) and rows exactly as their writers inserted them (version 3's writer is today's). Frozen: a store in the field was
written this way, whatever the writer does today."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from auditor.model import (
    Attestation,
    Evaluation,
    Finding,
    ResourceRecord,
    ResourceRef,
    Run,
    StageError,
)
from auditor.store.migrations import MIGRATIONS
from auditor.store.schema import connect, utc_timestamp


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
    if version >= 3:
        # schema 3 is today's layout of runs and rows; later versions only add tables
        from auditor.store import writer

        writer.begin_run(db, run)
        writer.finish_run(
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
    if version < 2:
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


def legacy_store(path: Path, version: int) -> Database:
    """A store at schema `version`, as the auditor of that version created it."""
    return connect(path, migrations=MIGRATIONS[:version])
