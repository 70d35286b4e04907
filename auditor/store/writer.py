"""Recording runs: a row at the start, everything else in one transaction at the end."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

import auditor
from auditor.model import Attestation, Evaluation, Finding, ResourceRef, Run, StageError
from auditor.store.schema import now_timestamp, utc_timestamp, write_transaction

RESOURCE_STATUSES = ("in_sync", "drifted", "missing", "unmanaged", "live", "desired")


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """One resource a run looked at, and what the run concluded about it.

    `status` is a drift verdict (`in_sync`, `drifted`, `missing`, `unmanaged`) or, when no
    comparison was made, the side it was read from (`live`, `desired`). Bodies are never
    stored: `body_digest` is enough to tell whether an object changed between runs.
    """

    ref: ResourceRef
    status: str
    origin: str
    body_digest: str | None = None

    def __post_init__(self) -> None:
        if self.status not in RESOURCE_STATUSES:
            raise ValueError(
                f"{self.ref.display()}: resource status {self.status!r} is not one of"
                f" {', '.join(RESOURCE_STATUSES)}"
            )


def to_json_text(value: Any, *, what: str) -> str:
    """`value` as plain JSON text; ValueError naming `what` when it is not JSON.

    Strict on purpose (no NaN, no str() fallback): the stored value must read back equal,
    and every consumer of the store must be able to parse it.
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} is not JSON: {error}") from error


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
) -> None:
    """Record the run's outcome and all its rows in one transaction.

    On any exception nothing of it is kept and the row stays as begin_run left it. Rows are
    streamed into the transaction, so a large run is never held twice in memory.
    """
    runs = db.table("runs")
    with write_transaction(db):
        try:
            existing = runs.get(run.id)
        except NotFoundError:
            raise ValueError(f"run {run.id} was never begun: call begin_run first") from None
        if existing["finished"] is not None:
            # A second finish would duplicate every finding of the run.
            raise ValueError(f"run {run.id} is already finished")
        runs.update(
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
            },
        )
        db.table("resources").insert_all(_resource_rows(run.id, resources))
        db.table("findings").insert_all(_finding_rows(run.id, findings))
        db.table("errors").insert_all(_error_rows(run.id, errors))
        db.table("evaluations").insert_all(_evaluation_rows(run.id, evaluations))
        db.table("attestations").insert_all(_attestation_rows(run.id, attestations))


def _clusters_json(run: Run) -> str:
    return to_json_text(
        [cluster.to_json() for cluster in run.clusters], what=f"run {run.id} clusters"
    )


def _resource_rows(run_id: str, records: Iterable[ResourceRecord]) -> Iterator[dict[str, Any]]:
    for record in records:
        ref = record.ref
        yield {
            "run_id": run_id,
            "cluster": ref.cluster,
            "api_version": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "status": record.status,
            "origin": record.origin,
            "body_digest": record.body_digest,
        }


def _finding_rows(run_id: str, findings: Iterable[Finding]) -> Iterator[dict[str, Any]]:
    for finding in findings:
        ref = finding.ref
        what = f"finding {finding.check} on {ref.display()} at {finding.path!r}"
        changed_by = finding.changed_by
        yield {
            "run_id": run_id,
            "fingerprint": finding.fingerprint,
            "category": finding.category,
            "check_id": finding.check,
            "severity": finding.severity,
            "class": finding.drift_class,
            "cluster": ref.cluster,
            "api_version": ref.api_version,
            "kind": ref.kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "path": finding.path,
            "message": finding.message,
            "expected": to_json_text(finding.expected, what=f"{what}: expected"),
            "actual": to_json_text(finding.actual, what=f"{what}: actual"),
            "changed_by_manager": changed_by.manager if changed_by else None,
            "changed_by_operation": changed_by.operation if changed_by else None,
            "changed_by_time": changed_by.time if changed_by else None,
            "details": to_json_text(dict(finding.details), what=f"{what}: details"),
            "controls": to_json_text(list(finding.controls), what=f"{what}: controls"),
        }


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


def _evaluation_rows(run_id: str, evaluations: Iterable[Evaluation]) -> Iterator[dict[str, Any]]:
    for ev in evaluations:
        what = f"evaluation of {ev.policy}"
        messages = [{"rule": m.rule, "msg": m.msg, "details": dict(m.details)} for m in ev.messages]
        yield {
            "run_id": run_id,
            "policy": ev.policy,
            **_ref_columns(ev.ref),
            "result": ev.result,
            "messages": to_json_text(messages, what=f"{what}: messages"),
            "duration_ms": ev.duration_ms,
            "error": ev.error,
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
