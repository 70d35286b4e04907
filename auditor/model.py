"""The typed values that flow between pipeline stages.

Stages never pass dicts-with-conventions to each other: desired and live produce
`Resource`s, drift produces `Finding`s, the store records a `Run`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Side = Literal["desired", "live"]
Category = Literal["drift", "provenance", "policy", "error"]
Severity = Literal["critical", "high", "medium", "low", "info"]
DriftClass = Literal["model", "runtime", "traffic", "scale", "config"]
Trigger = Literal["cron", "cli", "admission"]
RunStatus = Literal["complete", "incomplete", "failed"]

SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}


def at_least(severity: str, threshold: str) -> bool:
    """True when `severity` is as severe as `threshold` or more."""
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


def api_group(api_version: str) -> str:
    """The API group of an apiVersion: "" for the core group ("v1")."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """Names one Kubernetes object in one cluster."""

    cluster: str
    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    @property
    def group(self) -> str:
        return api_group(self.api_version)

    @property
    def match_key(self) -> tuple[str, str, str, str]:
        """What desired and live are matched on: the version is not part of identity."""
        return (self.group, self.kind, self.namespace, self.name)

    def display(self) -> str:
        """`InferenceService ml/fraud-scorer`, the form every message uses."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def to_json(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class Resource:
    """One object as Git declares it or as the cluster holds it.

    Secret values never reach a `Resource`: readers replace them with digests.
    """

    ref: ResourceRef
    body: Mapping[str, Any] = field(compare=False, hash=False)
    side: Side
    origin: str  # `path@commit` for desired, `cluster-name` or `snapshot:FILE` for live


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The model a serving resource runs."""

    uri: str | None
    digest: str | None  # `sha256:<hex>`
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ChangedBy:
    """Who last wrote a field, from the live object's managedFields."""

    manager: str
    operation: str
    time: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"manager": self.manager, "operation": self.operation, "time": self.time}


def fingerprint(category: str, check: str, ref: ResourceRef, path: str) -> str:
    """Stable identity of a finding across runs: the same problem hashes the same."""
    identity = [category, check, ref.cluster, ref.group, ref.kind, ref.namespace, ref.name, path]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Finding:
    category: Category
    check: str
    severity: Severity
    ref: ResourceRef
    path: str  # JSON pointer; "" for the whole object
    message: str
    expected: Any = None
    actual: Any = None
    drift_class: DriftClass | None = None
    changed_by: ChangedBy | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    controls: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.category, self.check, self.ref, self.path)

    def to_json(self) -> dict[str, Any]:
        """The finding object of DESIGN "Commands and machine-readable output"."""
        out: dict[str, Any] = {
            "category": self.category,
            "check": self.check,
            "severity": self.severity,
        }
        if self.category == "drift":
            out["class"] = self.drift_class
        out.update(
            {
                "resource": self.ref.to_json(),
                "path": self.path,
                "expected": self.expected,
                "actual": self.actual,
                "message": self.message,
                "changed_by": self.changed_by.to_json() if self.changed_by else None,
                "fingerprint": self.fingerprint,
            }
        )
        if self.ref.cluster:
            out["cluster"] = self.ref.cluster
        if self.controls:
            out["controls"] = list(self.controls)
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True, slots=True)
class StageError:
    """Something a stage could not finish: the reason a run is `incomplete`."""

    stage: str  # "desired", "live", "drift", ...
    message: str
    target: str = ""  # what is missing, e.g. "inferenceservices.serving.kserve.io in ml"
    cluster: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "stage": self.stage,
            "cluster": self.cluster,
            "target": self.target,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """Identity of a cluster that was read, recorded with the run."""

    name: str
    server: str = ""  # API server URL, or `snapshot:FILE`
    context: str = ""
    uid: str = ""  # kube-system namespace uid, a common stable cluster id
    version: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "server": self.server,
            "context": self.context,
            "uid": self.uid,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    trigger: Trigger
    started: datetime
    finished: datetime | None
    status: RunStatus
    git_repo: str
    git_revision: str
    git_commit: str
    clusters: tuple[ClusterInfo, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict, compare=False, hash=False)
