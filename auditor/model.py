"""The typed values that flow between pipeline stages: every value that crosses a stage
boundary is defined here, and nowhere else.

Stages never pass dicts-with-conventions to each other: desired produces a `DesiredState`
(the `GitCommit`, its `Resource`s and a reader of the commit's files), live produces
`Resource`s, drift a `DriftResult`, provenance a `ProvenanceResult` per serving resource plus
`Attestation`s, policy `Evaluation`s; every stage produces `Finding`s and `StageError`s, and
the store records a `Run` with all of them (an `AuditResult`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any, Literal, Protocol

from auditor.defaults import SEVERITIES, DecisionResult, Severity
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
class ModelRef:
    """The model a serving resource runs."""

    uri: str | None
    digest: str | None  # `sha256:<hex>`
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One resource, desired and/or live, with the model each side names, read once per run
    (`serving.served_models`) for every stage that asks."""

    desired: Resource | None
    live: Resource | None
    declared: ModelRef | None  # what Git names
    live_model: ModelRef | None  # what the live object names

    @property
    def subject(self) -> Resource:
        """The object judged: the live one when it is live, else Git's."""
        subject = self.live or self.desired
        assert subject is not None
        return subject

    @property
    def model(self) -> ModelRef | None:
        """The model the judged object names (the policy input's `model`)."""
        return self.live_model if self.live is not None else self.declared

    @property
    def serves_a_model(self) -> bool:
        return self.declared is not None or self.live_model is not None


@dataclass(frozen=True, slots=True)
class ChangedBy:
    """Who last wrote a field, from the live object's managedFields."""

    manager: str
    operation: str
    time: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"manager": self.manager, "operation": self.operation, "time": self.time}


_json_string = json.encoder.encode_basestring_ascii


def fingerprint(
    category: str, check: str, ref: ResourceRef, path: str, discriminator: str = ""
) -> str:
    """Stable identity of a finding across runs: the same problem hashes the same.

    `discriminator` keeps apart findings of one check at one path that are different problems
    (two messages of one policy); it is left out when empty, so such findings keep the
    identity they always had.
    """
    identity = [category, check, ref.cluster, ref.group, ref.kind, ref.namespace, ref.name, path]
    if discriminator:
        identity.append(discriminator)
    try:
        # Exactly json.dumps(identity) for a list of strings, without building an encoder:
        # the store computes 100,000 of these for a large run.
        text = "[" + ", ".join(map(_json_string, identity)) + "]"
    except TypeError:
        text = json.dumps(identity)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
    ref: ResourceRef  # the live ref when the object is live, else the desired one
    status: ResourceStatusName
    desired_origin: str | None  # `path@commit`; None for unmanaged objects
    desired_line: int | None = None  # where its document starts in that file, when known


@dataclass(frozen=True, slots=True)
class DriftResult:
    findings: tuple[Finding, ...]
    summary: DriftSummary
    statuses: tuple[ResourceStatus, ...]
    # What the comparison could not check, for people (e.g. a snapshot without managedFields):
    # neither drift nor a reason the run is incomplete.
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Provenance


@dataclass(frozen=True, slots=True)
class Attestation:
    """One verification the provenance stage made, pass or fail (a row of `attestations`)."""

    ref: ResourceRef | None
    attestation: str  # model-signature | image-signature | slsa-provenance | intoto-layout | commit
    verified: bool
    source: str = ""
    bundle_digest: str | None = None
    subject_digest: str | None = None
    authority: str | None = None
    identity: str | None = None
    reason: str | None = None  # the check id of the failure, e.g. provenance.digest_mismatch
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ProvenanceReason:
    """Why a signature binding does not hold, as the policy input lists it."""

    check: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message}


@dataclass(frozen=True, slots=True)
class ProvenanceResult:
    """The provenance of one serving resource: the policy input's `provenance` document.

    Frozen and typed on this side; `to_json()` is the document `policies/input.schema.json`
    describes. A resource nothing could be verified for has `verified` False and its reasons
    (`unverified`, `not_configured`): fail closed.
    """

    verified: bool
    reasons: tuple[ProvenanceReason, ...] = ()
    signers: tuple[Mapping[str, str], ...] = ()
    # The parts below exist only when the model was checked (not for `unverified` documents).
    checked: bool = False
    digest: str | None = None
    declared_digest: str | None = None
    mode: str | None = None  # files | bundle | image | none
    requirement: str | None = None
    datasets: tuple[Mapping[str, Any], ...] = ()
    attestations: str | None = None  # `dir@commit` when the directory exists
    slsa: Mapping[str, Any] | None = None
    layout: Mapping[str, Any] | None = None
    running: Mapping[str, Any] | None = None

    @classmethod
    def unverified(cls, check: str, message: str) -> ProvenanceResult:
        """The provenance of a resource nothing was verified for, and why (fail closed)."""
        return cls(verified=False, reasons=(ProvenanceReason(check, message),))

    @classmethod
    def not_configured(cls) -> ProvenanceResult:
        """Without a `trust:` section nothing is verified, and the policy input says so."""
        return cls.unverified(
            "provenance.not_configured",
            "provenance is not verified: auditor.yaml has no `trust:` section",
        )

    def to_json(self) -> dict[str, Any]:
        signature: dict[str, Any] = {"verified": self.verified, "signers": list(self.signers)}
        if self.checked:
            signature.update(
                {
                    "digest": self.digest,
                    "declared_digest": self.declared_digest,
                    "mode": self.mode,
                    "requirement": self.requirement,
                }
            )
        signature["findings"] = [r.to_json() for r in self.reasons]
        out: dict[str, Any] = {
            "signature": signature,
            "datasets": [dict(d) for d in self.datasets],
            "evaluation": {},
        }
        if self.checked:
            out.update(
                {
                    "attestations": self.attestations,
                    "slsa": _plain(self.slsa),
                    "layout": _plain(self.layout),
                    "running": _plain(self.running),
                }
            )
        return out


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value is not None else None


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
class PolicyMessage:
    rule: RuleName
    msg: str
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One policy x one resource: kept for every pair, pass included."""

    policy: str
    ref: ResourceRef | None
    result: EvaluationResult
    messages: tuple[PolicyMessage, ...] = ()
    duration_ms: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """One input document (DESIGN "Policy input and output") and the resource it is about."""

    ref: ResourceRef | None
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """A policy as its METADATA describes it: what SARIF rules, JUnit and PolicyReport name.

    `id` is the check id its findings carry; the rest comes from the `# METADATA` block (or a
    Gatekeeper constraint) and is stored with the run, so a report of an old run names the
    policies as they were then.
    """

    id: str
    title: str = ""
    description: str = ""
    severity: Severity = "high"  # of deny/violation messages
    warn_severity: Severity = "low"
    controls: tuple[str, ...] = ()
    source: str = ""  # the file it was loaded from
    kind: str = "rego"  # rego | gatekeeper
    digest: str = ""  # `sha256:` of its Rego (and a Gatekeeper constraint's spec) as evaluated


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What a stage that judges many resources returns: findings, the errors that make the
    run incomplete, and its own records (evaluations, attestations, the policies it ran)."""

    findings: tuple[Finding, ...] = ()
    errors: tuple[StageError, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()


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


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """One resource a run looked at, and what the run concluded about it.

    `status` is a drift verdict (`in_sync`, `drifted`, `missing`, `unmanaged`) or, when no
    comparison was made, the side it was read from (`live`, `desired`). Bodies are never
    stored: `body_digest` is enough to tell whether an object changed between runs. `origin`
    and `line` say where Git declares it (`path@commit`, the document's first line).
    """

    ref: ResourceRef
    status: str
    origin: str
    body_digest: str | None = None
    line: int | None = None

    def __post_init__(self) -> None:
        if self.status not in RESOURCE_STATUSES:
            raise ValueError(
                f"{self.ref.display()}: resource status {self.status!r} is not one of"
                f" {', '.join(RESOURCE_STATUSES)}"
            )

    @property
    def git_path(self) -> str | None:
        """The repo-relative file that declares it, when Git does (`origin` is `path@commit`)."""
        path, at, commit = self.origin.rpartition("@")
        if not at or not path or not commit or self.origin.startswith("snapshot:"):
            return None
        return path


FindingStatus = Literal["open", "resolved"]


def iso(moment: datetime | None) -> str | None:
    """How reports and `-o json` write a time: ISO-8601 in UTC, or None."""
    return _isoformat(moment, moment.tzinfo, moment.fold) if moment is not None else None


@lru_cache(maxsize=4096)
def _isoformat(moment: datetime, zone: tzinfo | None, fold: int) -> str:
    # Cached: `auditor findings -o json` writes the same few run times for thousands of
    # findings. Keyed with the zone and fold too: equal instants can read differently.
    return moment.isoformat()


@dataclass(frozen=True, slots=True)
class FindingHistory:
    """A finding across runs (DESIGN "Reports and history"), by fingerprint.

    Times are the start times of the runs that saw it. It is `open` until a complete run of
    its scope (its cluster) no longer has it: an incomplete run did not look, so it never
    resolves anything; `open_since` is where the current unbroken streak of sightings began.
    """

    first_seen: datetime
    last_seen: datetime
    runs_seen: int
    open_since: datetime | None
    resolved_at: datetime | None

    @property
    def status(self) -> FindingStatus:
        return "resolved" if self.resolved_at is not None else "open"

    def to_json(self) -> dict[str, Any]:
        return {
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "runs_seen": self.runs_seen,
            "open_since": iso(self.open_since),
            "resolved_at": iso(self.resolved_at),
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where Git declares the resource a finding is about: a repo-relative file and line."""

    path: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ReportFinding:
    """A stored finding with its history; `new` when the previous run did not have it."""

    finding: Finding
    history: FindingHistory
    new: bool = False
    location: SourceLocation | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding of `-o json` plus its history (DESIGN `auditor findings -o json`)."""
        return {**self.finding.to_json(), **self.history.to_json()}


@dataclass(frozen=True, slots=True)
class RunReport:
    """One stored run as every report renders it: read back from the store, never re-audited.

    `previous` is the complete run before it over the same clusters (for "new since" and "resolved
    since"); `resolved` the findings of that run this one no longer has (when this run is
    incomplete they may just not have been looked at, and the reports say so); `trend` the
    finished runs over the same clusters up to this one, oldest first.
    """

    run: Run
    exit_code: int | None
    findings: tuple[ReportFinding, ...]
    evaluations: tuple[Evaluation, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    errors: tuple[StageError, ...] = ()
    resources: tuple[ResourceRecord, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()
    previous: Run | None = None
    resolved: tuple[ReportFinding, ...] = ()
    trend: tuple[Run, ...] = ()
    # the webhook's decisions since the previous run; None when the store holds none at all
    admission: AdmissionSummary | None = None

    @property
    def complete(self) -> bool:
        return self.run.status == "complete"

    @property
    def new(self) -> tuple[ReportFinding, ...]:
        return tuple(f for f in self.findings if f.new)

    @property
    def still_open(self) -> tuple[ReportFinding, ...]:
        return tuple(f for f in self.findings if not f.new)


# -- admission ---------------------------------------------------------------------------

AdmissionOperation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


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
