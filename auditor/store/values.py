"""Stored rows back into model values: what reports and the CLI receive from the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from auditor.model import (
    Attestation,
    ChangedBy,
    ClusterInfo,
    Evaluation,
    Finding,
    FindingHistory,
    PolicyInfo,
    PolicyMessage,
    ResourceRecord,
    ResourceRef,
    Run,
    StageError,
)


@lru_cache(maxsize=4096)
def parse_time(text: str | None) -> datetime | None:
    """A stored timestamp (`2026-11-23T16:56:00.000000Z`) as an aware UTC datetime.

    Cached: thousands of findings share the few start times of the runs that saw them.
    """
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# The JSON texts nearly every row holds, decoded once (a fresh container each time).
_COMMON: dict[str, Any] = {"null": None, "{}": dict, "[]": list}


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    common = _COMMON.get(value) if isinstance(value, str) else None
    if common is not None:
        return common()
    if value == "null":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def _ref(row: Mapping[str, Any]) -> ResourceRef | None:
    if row.get("kind") is None and row.get("name") is None:
        return None
    return ResourceRef(
        cluster=row.get("cluster") or "",
        api_version=row.get("api_version") or "",
        kind=row.get("kind") or "",
        namespace=row.get("namespace") or "",
        name=row.get("name") or "",
    )


def run_of(row: Mapping[str, Any]) -> Run:
    started = parse_time(row["started"])
    assert started is not None  # NOT NULL in the schema
    clusters = tuple(
        ClusterInfo(**{k: str(v) for k, v in c.items() if k in ClusterInfo.__slots__})
        for c in _json(row.get("clusters"), [])
        if isinstance(c, dict) and "name" in c
    )
    counts = _json(row.get("counts"), {})
    return Run(
        id=row["id"],
        trigger=row["trigger"],
        started=started,
        finished=parse_time(row.get("finished")),
        status=row["status"],
        git_repo=row.get("git_repo") or "",
        git_revision=row.get("git_revision") or "",
        git_commit=row.get("git_commit") or "",
        clusters=clusters,
        counts={k: v for k, v in counts.items() if isinstance(v, int)},
        trust_policy_digest=row.get("trust_policy_digest") or "",
        notes=tuple(n for n in _json(row.get("notes"), []) if isinstance(n, str)),
    )


def finding_of(row: Mapping[str, Any]) -> Finding:
    manager = row.get("changed_by_manager")
    changed_by = (
        ChangedBy(manager, row.get("changed_by_operation") or "", row.get("changed_by_time"))
        if manager
        else None
    )
    ref = _ref(row) or ResourceRef("", "", "", "", "")
    return Finding(
        category=row["category"],
        check=row["check_id"],
        severity=row["severity"],
        ref=ref,
        path=row.get("path") or "",
        message=row.get("message") or "",
        expected=_json(row.get("expected"), None),
        actual=_json(row.get("actual"), None),
        drift_class=row.get("class"),
        changed_by=changed_by,
        details=_json(row.get("details"), {}),
        controls=tuple(_json(row.get("controls"), [])),
        recorded_fingerprint=row["fingerprint"],
    )


def history_of(row: Mapping[str, Any]) -> FindingHistory:
    first_seen, last_seen = parse_time(row["first_seen"]), parse_time(row["last_seen"])
    assert first_seen is not None and last_seen is not None
    return FindingHistory(
        first_seen=first_seen,
        last_seen=last_seen,
        runs_seen=int(row["runs_seen"]),
        open_since=parse_time(row.get("open_since")),
        resolved_at=parse_time(row.get("resolved_at")),
    )


def evaluation_of(row: Mapping[str, Any]) -> Evaluation:
    messages = tuple(
        PolicyMessage(
            rule=m.get("rule", "deny"), msg=m.get("msg", ""), details=m.get("details", {})
        )
        for m in _json(row.get("messages"), [])
        if isinstance(m, dict)
    )
    return Evaluation(
        policy=row["policy"],
        ref=_ref(row),
        result=row["result"],
        messages=messages,
        duration_ms=float(row.get("duration_ms") or 0.0),
        error=row.get("error"),
    )


def attestation_of(row: Mapping[str, Any]) -> Attestation:
    return Attestation(
        ref=_ref(row),
        attestation=row["attestation"],
        verified=bool(row["verified"]),
        source=row.get("source") or "",
        bundle_digest=row.get("bundle_digest"),
        subject_digest=row.get("subject_digest"),
        authority=row.get("authority"),
        identity=row.get("identity"),
        reason=row.get("reason"),
        details=_json(row.get("details"), {}),
    )


def error_of(row: Mapping[str, Any]) -> StageError:
    return StageError(
        stage=row["stage"],
        message=row["message"],
        target=row.get("target") or "",
        cluster=row.get("cluster") or "",
    )


def resource_of(row: Mapping[str, Any]) -> ResourceRecord:
    ref = _ref(row)
    assert ref is not None  # resources always name their object
    return ResourceRecord(
        ref=ref,
        status=row["status"],
        origin=row.get("origin") or "",
        body_digest=row.get("body_digest"),
        line=row.get("line"),
    )


def policy_of(row: Mapping[str, Any]) -> PolicyInfo:
    return PolicyInfo(
        id=row["policy"],
        title=row.get("title") or "",
        description=row.get("description") or "",
        severity=row.get("severity") or "high",
        warn_severity=row.get("warn_severity") or "low",
        controls=tuple(_json(row.get("controls"), [])),
        source=row.get("source") or "",
        kind=row.get("kind") or "rego",
        digest=row.get("source_digest") or "",
    )
