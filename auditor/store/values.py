"""Stored rows back into model values: what reports and the CLI receive from the store."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from auditor.model import (
    Attestation,
    ChangedBy,
    ClusterInfo,
    Evaluation,
    Finding,
    FindingHistory,
    PolicyInfo,
    PolicyMessage,
    ReportFinding,
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
    if not isinstance(value, str):
        return value
    common = _COMMON.get(value)
    if common is not None:
        return common()
    if value == "null":
        return None
    if value[:1] == '"' and value[-1:] == '"' and len(value) > 1 and "\\" not in value:
        # A JSON string without escapes is its own text between the quotes: most expected
        # and actual values are one (an image, a URI), and json.loads costs five times more.
        return value[1:-1]
    try:
        return json.loads(value)
    except ValueError:
        return default


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


# The columns a finding is made of, in the order `finding_from` takes them.
FINDING_COLUMNS = (
    "category",
    "check_id",
    "severity",
    "cluster",
    "api_version",
    "kind",
    "namespace",
    "name",
    "path",
    "message",
    "expected",
    "actual",
    "class",
    "changed_by_manager",
    "changed_by_operation",
    "changed_by_time",
    "details",
    "controls",
    "fingerprint",
)
HISTORY_COLUMNS = ("first_seen", "last_seen", "runs_seen", "open_since", "resolved_at")


T = TypeVar("T")


def builder(cls: type[T], *, by_setters: bool = False) -> Callable[..., T]:
    """`cls(*values)` for a frozen, slotted dataclass without `__post_init__`, minus the cost
    of its `__init__`: a frozen dataclass sets each field through `object.__setattr__`, which
    takes twice the time of everything else `auditor findings --open` does for a finding
    (10,000 of each value below).

    The value is made as an instance of a twin class with the same slots and a plain
    `__init__` (one attribute store a field, which the interpreter does fastest), then given
    `cls` as its class: the same layout, so the very object `cls(...)` makes, frozen from then
    on; a fifth of the time of `cls(...)`. Where the interpreter does not allow the class
    change (another implementation), or `by_setters`, each slot is set through its own setter
    instead, half of the time. Nothing is checked here that `__init__` would check.

    Made as dataclasses makes `__init__`: the source of one function with every field named,
    since a loop over the fields costs what it saves.
    """
    assert dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__")
    names = [f.name for f in dataclasses.fields(cls)]
    args = ", ".join(names)
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    # source made here from the class's own field and slot names only
    exec(
        f"class _Twin:\n    __slots__ = {tuple(cls.__slots__)!r}\n"  # type: ignore[attr-defined]
        f"    def __init__(self, {args}):\n"
        + "".join(f"        self.{name} = {name}\n" for name in names),
        scope,
    )
    if not by_setters and _takes_class(scope["_Twin"](*names), cls):
        exec(
            f"def build({args}):\n    built = _Twin({args})\n    built.__class__ = _cls\n"
            "    return built\n",
            scope,
        )
    else:
        scope.update((f"_set_{name}", getattr(cls, name).__set__) for name in names)
        lines = "".join(f"    _set_{name}(built, {name})\n" for name in names)
        exec(f"def build({args}):\n    built = _new(_cls)\n{lines}    return built\n", scope)
    return scope["build"]  # type: ignore[no-any-return]


def _takes_class(value: object, cls: type) -> bool:
    """Whether the interpreter lets `value` become an instance of `cls` (same layout)."""
    try:
        value.__class__ = cls
    except TypeError:
        return False
    return True


_REF = builder(ResourceRef)
_FINDING = builder(Finding)
_HISTORY = builder(FindingHistory)
_REPORT_FINDING = builder(ReportFinding)


def finding_from(values: Sequence[Any]) -> Finding:
    """A finding from the values of FINDING_COLUMNS, in order (the fast path of a query that
    selects them so); the fingerprint as the views show it or as `fingerprints` stores it."""
    (category, check, severity, cluster, api_version, kind, namespace, name, path, message,
     expected, actual, drift_class, manager, operation, time, details, controls, fingerprint,
    ) = values  # fmt: skip
    # Finding's fields in their order (tests/store/test_values.py holds this to __init__).
    return _FINDING(
        category,
        check,
        severity,
        _REF(cluster or "", api_version or "", kind or "", namespace or "", name or ""),
        path or "",
        message or "",
        _json(expected, None),
        _json(actual, None),
        drift_class,
        ChangedBy(manager, operation or "", time) if manager else None,
        # the common empty ones without a call: this runs once per finding of a query
        {} if details == "{}" else _json(details, {}),
        () if controls == "[]" else tuple(_json(controls, [])),
        "",  # the discriminator is not stored: the recorded fingerprint stands for it
        fingerprint.hex() if type(fingerprint) is bytes else fingerprint,
    )


def history_from(values: Sequence[Any]) -> FindingHistory:
    """A finding's history from the values of HISTORY_COLUMNS, in order."""
    first_seen, last_seen, runs_seen, open_since, resolved_at = values
    first, last = parse_time(first_seen), parse_time(last_seen)
    assert first is not None and last is not None
    return _HISTORY(first, last, int(runs_seen), parse_time(open_since), parse_time(resolved_at))


def report_finding(finding: Finding, history: FindingHistory) -> ReportFinding:
    """`ReportFinding(finding, history)`, built as cheaply as the two above."""
    return _REPORT_FINDING(finding, history, False, None)


def finding_of(row: Mapping[str, Any]) -> Finding:
    """A finding from a row with every column of `finding_values`."""
    return finding_from([row[column] for column in FINDING_COLUMNS])


def history_of(row: Mapping[str, Any]) -> FindingHistory:
    """A finding's history from a row with the history columns of `fingerprints`."""
    return history_from([row[column] for column in HISTORY_COLUMNS])


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
