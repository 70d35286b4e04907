"""The webhook's values: a request under review, its decision, and decisions read back.

Import them from `auditor.model`, which loads this module when one is first asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from auditor.model import iso

if TYPE_CHECKING:
    from datetime import datetime

    from auditor.defaults import DecisionResult


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    """The `request` of an `admission.k8s.io/v1` AdmissionReview, as the webhook received it
    (read and checked by `admission.review`; bodies are untrusted until the decider judges
    them)."""

    uid: str
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    operation: str
    user_info: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    object: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    old_object: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    dry_run: bool = False

    @property
    def user(self) -> str:
        name = self.user_info.get("username")
        return name if isinstance(name, str) else ""

    def display(self) -> str:
        """`InferenceService ml-prod/fraud-scorer`, as every other message names an object
        (`prefix*` for one that only has a generateName yet)."""
        name = self.name
        if not name:
            metadata = (self.object or self.old_object or {}).get("metadata")
            prefix = metadata.get("generateName") if isinstance(metadata, Mapping) else None
            name = f"{prefix}*" if isinstance(prefix, str) and prefix else "(unnamed)"
        return f"{self.kind} {self.namespace}/{name}" if self.namespace else f"{self.kind} {name}"

    def to_policy_json(self) -> dict[str, Any]:
        """The policy input's `request` (DESIGN "Policy input and output"), which Gatekeeper
        templates read as `input.review`."""
        return {
            "uid": self.uid,
            "kind": {"group": self.group, "version": self.version, "kind": self.kind},
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": dict(self.user_info),
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
        }


@dataclass(frozen=True, slots=True)
class DecisionReason:
    """Why an object was denied: the check id (or policy id) and its message."""

    check: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message}


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """The webhook's answer for one request, and what the store records of it."""

    request: AdmissionRequest
    result: DecisionResult
    reasons: tuple[DecisionReason, ...] = ()
    warnings: tuple[str, ...] = ()
    commit: str = ""  # the attestations' Git commit the decision used ("" when none was)
    cluster: str = ""  # the cluster the webhook serves, as auditor.yaml names it
    # the provenance verification: "hit" from the cache, "miss" made now, "" none was needed
    cache: Literal["hit", "miss", ""] = ""
    latency_ms: float = 0.0
    time: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.result in ("allow", "skip", "fail_open")

    def message(self) -> str:
        """The denial text the API server shows the user: the object, each check, its reason."""
        verb = "denied" if not self.allowed else "allowed"
        lines = "; ".join(f"{r.check}: {r.message}" for r in self.reasons)
        return f"auditor {verb} {self.request.display()}" + (f": {lines}" if lines else "")


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """One row of `admission_decisions` read back: what a report shows of a decision."""

    time: datetime
    cluster: str
    api_version: str
    kind: str
    namespace: str
    name: str
    operation: str
    user: str
    dry_run: bool
    result: DecisionResult
    reasons: tuple[DecisionReason, ...]
    commit: str

    @property
    def allowed(self) -> bool:
        return self.result in ("allow", "skip", "fail_open")

    def display(self) -> str:
        """`Deployment ml-prod/llm-server`, as every other message names an object."""
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "cluster": self.cluster,
            "resource": {
                "apiVersion": self.api_version,
                "kind": self.kind,
                "namespace": self.namespace,
                "name": self.name,
            },
            "operation": self.operation,
            "user": self.user,
            "dry_run": self.dry_run,
            "result": self.result,
            "reasons": [r.to_json() for r in self.reasons],
            "commit": self.commit,
        }


@dataclass(frozen=True, slots=True)
class AdmissionSummary:
    """The webhook's decisions between the previous run and this one, as a run's report shows
    them: counts by result, the commits the decisions used, and the latest denials.

    The window is (`since`, `until`]: the previous run's end (None: no previous run, every
    earlier decision counts) to this run's end, so each decision falls in one run's report.
    """

    since: datetime | None
    until: datetime | None
    counts: Mapping[str, int]  # by result, every one of DECISION_RESULTS
    commits: Mapping[str, int]  # decisions per attestations' commit used ("" for none)
    denials: tuple[StoredDecision, ...]  # newest first, at most a few
    denials_total: int  # every denial in the window (deny and fail-closed errors)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "total": self.total,
            "counts": dict(self.counts),
            "commits": dict(self.commits),
            "denials_total": self.denials_total,
            "latest_denials": [d.to_json() for d in self.denials],
        }
