"""The typed values that flow between pipeline stages: every value that crosses a stage
boundary is defined in this package and imported from here (`from auditor.model import ...`).
The values every command builds are in this module; those only some commands build (provenance,
policy, stored runs, admission) are in its `_` modules, loaded when first asked for (the end of
this module says why).

Stages never pass dicts-with-conventions to each other: desired produces a `DesiredState`
(the `GitCommit`, its `Resource`s and a reader of the commit's files), live produces
`Resource`s, drift a `DriftResult`, provenance a `ProvenanceResult` per serving resource plus
`Attestation`s, policy `Evaluation`s; every stage produces `Finding`s and `StageError`s, and
the store records a `Run` with all of them (an `AuditResult`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from auditor.defaults import SEVERITIES, Severity
from auditor.exit_codes import ExitCode

Side = Literal["desired", "live"]
Category = Literal["drift", "provenance", "policy", "error"]
DriftClass = Literal["model", "runtime", "traffic", "scale", "config"]
Trigger = Literal["cron", "cli", "admission", "fleet"]
# running: the row exists, the run has not ended (or was killed outright: it stays so);
# interrupted: stopped by SIGINT/SIGTERM; failed: stopped by an error before it could finish.
RunStatus = Literal["running", "complete", "incomplete", "failed", "interrupted"]

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
    # The line its document starts on in the file `origin` names (None when rendered by
    # kustomize or read from the API): where SARIF locates a finding on it.
    line: int | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ChangedBy:
    """Who last wrote a field, from the live object's managedFields."""

    manager: str
    operation: str
    time: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"manager": self.manager, "operation": self.operation, "time": self.time}


_json_string = json.encoder.encode_basestring_ascii


@lru_cache(maxsize=1024)
def _identity_head(category: str, check: str, cluster: str, api_version: str, kind: str) -> Any:
    """SHA-256 over the start of an identity's JSON, which thousands of findings share (one
    check on one kind in one cluster): each copies it and hashes only its own rest."""
    s = _json_string
    head = f"[{s(category)}, {s(check)}, {s(cluster)}, {s(api_group(api_version))}, {s(kind)}, "
    return hashlib.sha256(head.encode())


def fingerprint(
    category: str, check: str, ref: ResourceRef, path: str, discriminator: str = ""
) -> str:
    """Stable identity of a finding across runs: the same problem hashes the same.

    `discriminator` keeps apart findings of one check at one path that are different problems
    (two messages of one policy); it is left out when empty, so such findings keep the
    identity they always had.
    """
    return fingerprint_digest(category, check, ref, path, discriminator).hex()


def fingerprint_digest(
    category: str, check: str, ref: ResourceRef, path: str, discriminator: str = ""
) -> bytes:
    """The 16 bytes whose hex is `fingerprint`: what the store keeps of it."""
    try:
        # Exactly json.dumps of the identity's list of strings, without building an encoder or
        # the list: the store computes 100,000 of these for a large run.
        s = _json_string
        hashed = _identity_head(category, check, ref.cluster, ref.api_version, ref.kind).copy()
        rest = f"{s(ref.namespace)}, {s(ref.name)}, {s(path)}"
        hashed.update((rest + (f", {s(discriminator)}]" if discriminator else "]")).encode())
    except TypeError:
        identity = [category, check, ref.cluster, ref.group, ref.kind, ref.namespace, ref.name]
        text = json.dumps([*identity, path, *([discriminator] if discriminator else [])])
        hashed = hashlib.sha256(text.encode())
    return hashed.digest()[:16]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem a stage found on one resource (DESIGN "The typed model")."""

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
    discriminator: str = ""  # part of the fingerprint: see `fingerprint`
    # A finding read back from the store keeps the fingerprint it was recorded with: the
    # store does not keep the discriminator, and a stored identity never changes.
    recorded_fingerprint: str = field(default="", compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        if self.recorded_fingerprint:
            return self.recorded_fingerprint
        return fingerprint(self.category, self.check, self.ref, self.path, self.discriminator)

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
    # How this cluster's audit ended: `complete`, `incomplete` (something on it could not be
    # read or verified), `not audited` (its shard of a fleet run is missing or failed); ""
    # until the run has judged it.
    status: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "server": self.server,
            "context": self.context,
            "uid": self.uid,
            "version": self.version,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class Run:
    """One audit or drift check: when, of what commit and clusters, and how it ended."""

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
    # What the run judged by: the trust policy's digest ("" without a `trust:` section).
    trust_policy_digest: str = ""
    # What the findings cannot say (e.g. snapshots without managedFields), for people.
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Git: the commit the desired stage pinned, and its files for the stages that read more of it


def short_sha(commit: str) -> str:
    """The 12-character form messages name a commit by."""
    return commit[:12]


@dataclass(frozen=True, slots=True)
class GitCommit:
    """What was audited: the repository (credentials masked), the revision as given, and the
    full SHA it resolved to."""

    repo: str
    revision: str
    commit: str
    paths: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return short_sha(self.commit)


@dataclass(frozen=True, slots=True)
class GitFile:
    """One file of the audited commit; `data` is None when it is over the size limit."""

    path: str  # repo-relative, as found (before symlinks)
    commit: str
    size: int
    data: bytes | None
    _digest: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def at(self) -> str:
        """`attestations/ml/scorer/model.sig@1a2b3c4d5e6f`: how messages name it."""
        return f"{self.path}@{short_sha(self.commit)}"

    @property
    def digest(self) -> str | None:
        """`sha256:<hex>` of the data (None over the size limit), hashed once: the admission
        webhook asks for it on every decision its cache does not answer."""
        if self._digest is None and self.data is not None:
            object.__setattr__(self, "_digest", "sha256:" + hashlib.sha256(self.data).hexdigest())
        return self._digest


class CommitFiles(Protocol):
    """The files of the audited commit, as the desired stage read them: later stages
    (provenance) read attestations and lockfiles through it, never by opening Git again.

    Paths are repo-relative and already validated by the caller; `resolve` follows symlinks
    inside the commit and raises InputError for one that leaves it.
    """

    commit: str
    git_dir: str  # for `git verify-commit`

    def resolve(self, path: str) -> str: ...

    def is_dir(self, path: str) -> bool: ...

    def child_paths(self, directory: str) -> list[str]: ...

    def file(self, shown: str, resolved: str) -> GitFile | None:
        """The file at `resolved`, named `shown`; None for a directory, symlink or submodule."""
        ...

    def close(self) -> None:
        """Ends the reader (its `git cat-file` process); the pipeline calls it once."""
        ...


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What the desired stage read: the commit and every object its paths declare."""

    git: GitCommit
    resources: tuple[Resource, ...]
    files: CommitFiles | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def repo(self) -> str:
        return self.git.repo

    @property
    def revision(self) -> str:
        return self.git.revision

    @property
    def commit(self) -> str:
        return self.git.commit

    @property
    def paths(self) -> tuple[str, ...]:
        return self.git.paths


# ---------------------------------------------------------------------------------------------
# Live

Unread = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class LiveRead:
    """What one cluster read produced: objects in scope, identity, and what could not be read."""

    resources: tuple[Resource, ...]
    info: ClusterInfo
    errors: tuple[StageError, ...]
    # (group, kind) -> namespaced, for every kind discovery described
    namespaced: Mapping[tuple[str, str], bool] = field(
        default_factory=dict, compare=False, hash=False
    )
    # What could not be read, as (group, kind, namespace) with None for "all": desired objects
    # there are unknown, not missing.
    unread: frozenset[Unread] = frozenset()

    def was_read(self, ref: ResourceRef) -> bool:
        """False when a failed read could have held this object."""
        return not any(
            (g is None or g == ref.group)
            and (k is None or k == ref.kind)
            and (ns is None or ns == ref.namespace)
            for g, k, ns in self.unread
        )


# ---------------------------------------------------------------------------------------------
# Drift


ResourceStatusName = Literal["in_sync", "drifted", "missing", "unmanaged"]


@dataclass(frozen=True, slots=True)
class DriftSummary:
    """How many resources were compared, and how each came out."""

    resources: int  # desired objects + unmanaged live objects
    in_sync: int
    drifted: int
    missing: int
    unmanaged: int

    def to_json(self) -> dict[str, int]:
        return {
            "resources": self.resources,
            "in_sync": self.in_sync,
            "drifted": self.drifted,
            "missing": self.missing,
            "unmanaged": self.unmanaged,
        }

    def __add__(self, other: DriftSummary) -> DriftSummary:
        return DriftSummary(
            resources=self.resources + other.resources,
            in_sync=self.in_sync + other.in_sync,
            drifted=self.drifted + other.drifted,
            missing=self.missing + other.missing,
            unmanaged=self.unmanaged + other.unmanaged,
        )


EMPTY_SUMMARY = DriftSummary(resources=0, in_sync=0, drifted=0, missing=0, unmanaged=0)


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    """One resource's drift verdict, and where Git declares it."""

    ref: ResourceRef  # the live ref when the object is live, else the desired one
    status: ResourceStatusName
    desired_origin: str | None  # `path@commit`; None for unmanaged objects
    desired_line: int | None = None  # where its document starts in that file, when known


@dataclass(frozen=True, slots=True)
class DriftResult:
    """What comparing one cluster with Git produced: `compute_drift`'s result."""

    findings: tuple[Finding, ...]
    summary: DriftSummary
    statuses: tuple[ResourceStatus, ...]
    # What the comparison could not check, for people (e.g. a snapshot without managedFields):
    # neither drift nor a reason the run is incomplete.
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Policy


RuleName = Literal["deny", "warn", "violation"]
EvaluationResult = Literal["pass", "fail", "warn", "error"]
EVALUATION_RESULTS: tuple[EvaluationResult, ...] = ("pass", "fail", "warn", "error")


def result_counts(evaluations: Iterable[Evaluation]) -> dict[str, int]:
    """How many evaluations came out pass, fail, warn and error, in that order, zeros kept."""
    counts: dict[str, int] = dict.fromkeys(EVALUATION_RESULTS, 0)
    for evaluation in evaluations:
        counts[evaluation.result] += 1
    return counts


def run_counts(
    summary: DriftSummary, findings: Iterable[Finding], errors: Iterable[StageError]
) -> dict[str, int]:
    """A run's counts of resources, findings (per severity and category) and errors: one
    rule for the pipeline and for a fleet run merged from its shards."""
    by_severity: dict[str, int] = {}
    by_category: dict[str, int] = {}
    total = 0
    for finding in findings:
        total += 1
        by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
        by_category[finding.category] = by_category.get(finding.category, 0) + 1
    counts = summary.to_json()
    counts["findings"] = total
    counts.update({severity: by_severity.get(severity, 0) for severity in SEVERITIES})
    counts.update({f"category_{c}": n for c, n in sorted(by_category.items())})
    counts["errors"] = sum(1 for _ in errors)
    return counts


def policy_failure(policy_id: str, first: str, count: int) -> StageError:
    """The one stage error of a policy that failed on `count` resources, showing the first
    failure's text: one rule for the policy stage and for a fleet run merged from its shards
    (where each shard counted only its own resources)."""
    more = f" (and on {count - 1} more resources)" if count > 1 else ""
    return StageError(
        stage="policy", target=policy_id, message=f"policy {policy_id} failed: {first}{more}"
    )


def policy_counts(evaluations: Iterable[Evaluation]) -> dict[str, int]:
    """`policy_pass`, `policy_fail`, ... for a run's counts."""
    return {f"policy_{r}": n for r, n in result_counts(evaluations).items()}


def attestation_counts(attestations: Iterable[Attestation]) -> dict[str, int]:
    """`attestations` and `attestations_verified` for a run's counts."""
    listed = list(attestations)
    return {
        "attestations": len(listed),
        "attestations_verified": sum(1 for a in listed if a.verified),
    }


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What a stage that judges many resources returns: findings, the errors that make the
    run incomplete, and its own records (evaluations, attestations, the policies it ran)."""

    findings: tuple[Finding, ...] = ()
    errors: tuple[StageError, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()
    # What people should know that is neither a finding nor an error, for the run's notes
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# A whole run


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Everything one run learned, before or after it is stored; built from model values."""

    run: Run
    git: GitCommit | None
    findings: tuple[Finding, ...]
    errors: tuple[StageError, ...]
    summary: DriftSummary
    statuses: tuple[ResourceStatus, ...]
    evaluations: tuple[Evaluation, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()

    @property
    def complete(self) -> bool:
        return self.run.status == "complete"

    @property
    def notes(self) -> tuple[str, ...]:
        """What the findings cannot say (`Run.notes`), for people."""
        return self.run.notes

    def drift_exit_code(self) -> ExitCode:
        """`auditor drift`: like `kubectl diff`, 1 when there is drift; 3 when incomplete."""
        if not self.complete:
            return ExitCode.INCOMPLETE
        drifted = any(f.category == "drift" for f in self.findings)
        return ExitCode.FINDINGS if drifted else ExitCode.CLEAN

    def audit_exit_code(self, fail_on: str) -> ExitCode:
        """`auditor audit`: 3 when a stage could not finish, 1 for findings at `fail_on` or above."""
        if not self.complete:
            return ExitCode.INCOMPLETE
        if any(at_least(f.severity, fail_on) for f in self.findings):
            return ExitCode.FINDINGS
        return ExitCode.CLEAN


# ---------------------------------------------------------------------------------------------
# A stored run, read back: what `auditor report`, `findings` and `history` show

RESOURCE_STATUSES = ("in_sync", "drifted", "missing", "unmanaged", "live", "desired")

FindingStatus = Literal["open", "resolved"]


def iso(moment: datetime | None) -> str | None:
    """How reports and `-o json` write a time: ISO-8601 in UTC, or None."""
    return _isoformat(moment, moment.tzinfo, moment.fold) if moment is not None else None


@lru_cache(maxsize=4096)
def _isoformat(moment: datetime, zone: tzinfo | None, fold: int) -> str:
    # Cached: `auditor findings -o json` writes the same few run times for thousands of
    # findings. Keyed with the zone and fold too: equal instants can read differently.
    return moment.isoformat()


# ---------------------------------------------------------------------------------------------
# Admission

AdmissionOperation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


# ---------------------------------------------------------------------------------------------
# The values only some commands build, defined beside this module and loaded on first use.
#
# Defining a frozen dataclass compiles its methods (~1 ms each on 2 slow cores); `auditor
# drift` builds none of these 19, and paid for all of them at every start. They are imported
# from here like every other value (`from auditor.model import Evaluation`): PEP 562's module
# `__getattr__` loads their module the first time one of them is asked for.

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("ModelRef", "ServedModel", "Attestation", "ProvenanceReason", "ProvenanceResult"),
        "auditor.model._provenance",
    ),
    **dict.fromkeys(
        ("PolicyMessage", "Evaluation", "PolicyInput", "PolicyInfo"), "auditor.model._policy"
    ),
    **dict.fromkeys(
        ("ResourceRecord", "FindingHistory", "SourceLocation", "ReportFinding", "RunReport"),
        "auditor.model._stored",
    ),
    **dict.fromkeys(
        (
            "AdmissionRequest",
            "DecisionReason",
            "AdmissionDecision",
            "StoredDecision",
            "AdmissionSummary",
        ),
        "auditor.model._admission",
    ),
}

if TYPE_CHECKING:  # what the type checker sees; `X as X` marks each as this module's export
    from auditor.model._admission import AdmissionDecision as AdmissionDecision
    from auditor.model._admission import AdmissionRequest as AdmissionRequest
    from auditor.model._admission import AdmissionSummary as AdmissionSummary
    from auditor.model._admission import DecisionReason as DecisionReason
    from auditor.model._admission import StoredDecision as StoredDecision
    from auditor.model._policy import Evaluation as Evaluation
    from auditor.model._policy import PolicyInfo as PolicyInfo
    from auditor.model._policy import PolicyInput as PolicyInput
    from auditor.model._policy import PolicyMessage as PolicyMessage
    from auditor.model._provenance import Attestation as Attestation
    from auditor.model._provenance import ModelRef as ModelRef
    from auditor.model._provenance import ProvenanceReason as ProvenanceReason
    from auditor.model._provenance import ProvenanceResult as ProvenanceResult
    from auditor.model._provenance import ServedModel as ServedModel
    from auditor.model._stored import FindingHistory as FindingHistory
    from auditor.model._stored import ReportFinding as ReportFinding
    from auditor.model._stored import ResourceRecord as ResourceRecord
    from auditor.model._stored import RunReport as RunReport
    from auditor.model._stored import SourceLocation as SourceLocation


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once: later lookups find it as a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
