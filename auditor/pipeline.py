"""The one orchestration: config -> desired, live -> drift -> provenance -> policy -> store.

This is the library API the CLI, the cron job and the tests call: `check_drift` for a diff
without a store, `run_audit` for a recorded run. Each cluster is audited by `_audit_cluster`
(desired in scope, live, drift, provenance, policy inputs); policies are evaluated once for the
whole run; the admission server and fleet shards call the same stage functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from auditor.checks import DRIFT_MISSING, apply_overrides
from auditor.config import ClusterSource, Config, GitSource
from auditor.desired import read_desired
from auditor.desired.git import open_repo
from auditor.drift import compute_drift
from auditor.errors import AuditorError, ConfigError, no_room
from auditor.exit_codes import ExitCode
from auditor.gc_pause import gc_paused
from auditor.live.read import read_live
from auditor.model import (
    EMPTY_SUMMARY,
    AuditResult,
    ClusterInfo,
    DesiredState,
    DriftResult,
    LiveRead,
    Resource,
    Run,
    RunStatus,
    StageError,
    StageOutcome,
    Trigger,
    attestation_counts,
    policy_counts,
    run_counts,
)
from auditor.observe import events
from auditor.observe.events import Progress, no_progress
from auditor.redact import redact_url
from auditor.scope import KindSelector, Scope
from auditor.shards import (
    Shard,
    order_attestations,
    order_errors,
    order_evaluations,
    order_findings,
    positions,
    publish_pin,
    read_pin,
    select,
)

# What only an audit needs (policy inputs and evaluation, the models each resource serves, the
# store, RBAC) is imported where it is used: `auditor drift` starts in a fresh process for
# every check, and those imports were a third of its start-up.
if TYPE_CHECKING:
    from auditor.model import ModelRef, PolicyInput, ProvenanceResult, ServedModel
    from auditor.provenance.stage import ProvenanceStage
    from auditor.rbac import ReadAccess
    from auditor.store import Store

log = logging.getLogger(__name__)

MatchKey = tuple[str, str, str, str]
POD = KindSelector(group="", kind="Pod")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _ClusterAudit:
    """What one cluster contributed to the run."""

    info: ClusterInfo
    drift: DriftResult
    errors: tuple[StageError, ...]
    inputs: tuple[PolicyInput, ...]
    inventory: tuple[Resource, ...]


@dataclass(frozen=True, slots=True)
class _ClusterRead:
    """One cluster read and compared: the part of its audit that may run beside others'."""

    source: ClusterSource
    live: LiveRead
    drift: DriftResult
    desired: tuple[Resource, ...]  # Git's objects in scope, addressed to this cluster
    served: Mapping[MatchKey, ServedModel]
    pods: tuple[Resource, ...]  # in scope, for the digest an OCI model runs


def _now() -> datetime:
    return datetime.now(UTC)


def check_drift(config: Config, *, trigger: Trigger = "cli", run_id: str = "") -> AuditResult:
    """Git at the pinned commit against every configured cluster, drift only. Raises
    AuditorError for input that cannot be used (exit 2); a cluster that cannot be fully read
    makes the run incomplete."""
    return run_pipeline(config, trigger=trigger, run_id=run_id, policies=False, provenance=False)


@dataclass(frozen=True, slots=True)
class Fleet:
    """How a run covers the configured clusters: all of them or one shard's, and how many it
    reads at once (`concurrency:` in auditor.yaml, `--concurrency`)."""

    shard: Shard | None = None
    concurrency: int | None = None  # None: the config's
    pin: Path | None = None  # the fleet run's pinned commit (`--pin-commit`, `shards.read_pin`)


ALL_CLUSTERS = Fleet()


def run_pipeline(
    config: Config,
    *,
    trigger: Trigger = "cli",
    run_id: str = "",
    policies: bool = True,
    provenance: bool = True,
    fleet: Fleet = ALL_CLUSTERS,
    progress: Progress = no_progress,
) -> AuditResult:
    """Every stage over every cluster (of `fleet.shard`, when given), without storing. With
    `provenance` (and a `trust:` section) serving resources are verified; with `policies`
    every resource in scope is judged with inputs that carry those provenance results (or say
    provenance is not configured). Clusters are read `concurrency` at a time; the result is
    in the configured order whatever order they finish in."""
    started = _now()
    # The cyclic GC paused for the whole run: a run builds millions of acyclic objects (parsed
    # manifests, the snapshot, findings) and keeps them to the end, so every collection walks
    # all of them and frees nothing; paused per file instead, each file's end set one off
    # (24-30% of `auditor drift` at 10,000-50,000 resources).
    with gc_paused():
        stage = _provenance_stage(config) if provenance and config.verifies_provenance else None
        with events.stage(progress, "desired") as counts:
            source = pinned(config.git, fleet.pin) if fleet.pin else config.git
            desired = read_desired(source, limits=config.limits, keep_files=stage is not None)
            # the run names the revision as configured; its commit is the pinned one
            desired = dataclasses.replace(
                desired, git=dataclasses.replace(desired.git, revision=config.git.revision)
            )
            counts["resources"] = len(desired.resources)
        log.info(
            "Git %s at %s: commit %s, %d objects",
            desired.repo,
            desired.revision,
            desired.commit,
            len(desired.resources),
        )
        try:
            return _run(config, desired, stage, policies, trigger, run_id, started, fleet, progress)
        finally:
            if stage is not None:
                stage.close()
            if desired.files is not None:
                desired.files.close()


def pinned(source: GitSource, pin: Path) -> GitSource:
    """`source` at the commit its fleet run pinned in `pin`: the commit its revision names
    now when this shard is the first to get here, else the one the first shard pinned."""
    commit = read_pin(pin)
    if commit is None:
        repo = open_repo(source.repo, revision=source.revision, cache_dir=source.cache_dir)
        commit = publish_pin(pin, repo.resolve(source.revision))
        log.info("pinned the fleet run to commit %s (%s) in %s", commit, source.revision, pin)
    return dataclasses.replace(source, revision=commit)


def _provenance_stage(config: Config) -> ProvenanceStage:
    # imported here: model-signing, sigstore and in-toto take ~0.4 s to import, which a run
    # without a `trust:` section (every `auditor drift`) never needs
    from auditor.provenance.stage import ProvenanceStage

    return ProvenanceStage(config)


def _run(
    config: Config,
    desired: DesiredState,
    stage: ProvenanceStage | None,
    policies: bool,
    trigger: Trigger,
    run_id: str,
    started: datetime,
    fleet: Fleet,
    progress: Progress = no_progress,
) -> AuditResult:
    scope = Scope.from_desired(
        desired.resources,
        kinds=config.scope.kinds,
        namespaces=config.scope.namespaces,
        exclude_namespaces=config.scope.exclude_namespaces,
    )
    provenance = StageOutcome()
    if stage is not None:
        assert desired.files is not None
        stage.start(desired.repo, desired.files)
        stage.verify_commit()
    with_inputs = policies and config.policy.enabled
    clusters = _audit_clusters(
        config, desired, scope, stage, fleet, progress, with_inputs=with_inputs
    )
    if stage is not None:
        provenance = stage.outcome()
    judged = _judge(config, clusters, progress) if with_inputs else StageOutcome()
    places = positions(c.name for c in config.clusters)
    findings = order_findings(
        apply_overrides(
            [
                *(f for c in clusters for f in c.drift.findings),
                *provenance.findings,
                *judged.findings,
            ],
            config.severity_overrides,
        ),
        places,
    )
    errors = tuple(
        order_errors(
            (*(e for c in clusters for e in c.errors), *provenance.errors, *judged.errors),
            places,
        )
    )
    summary = sum((c.drift.summary for c in clusters), EMPTY_SUMMARY)
    status: RunStatus = "incomplete" if errors else "complete"
    counts = run_counts(summary, findings, errors)
    if with_inputs:
        counts.update(policy_counts(judged.evaluations))
    if stage is not None:
        counts.update(attestation_counts(provenance.attestations))
    run = Run(
        id=run_id,
        trigger=trigger,
        started=started,
        finished=_now(),
        status=status,
        git_repo=desired.repo,
        git_revision=desired.revision,
        git_commit=desired.commit,
        clusters=tuple(_judged(c.info, errors) for c in clusters),
        counts=counts,
        trust_policy_digest=config.trust.digest if config.trust is not None else "",
        # sorted: each names its cluster, and a fleet merged from shards lists them alike
        notes=(*sorted(note for c in clusters for note in c.drift.notes), *judged.notes),
    )
    return AuditResult(
        run=run,
        git=desired.git,
        findings=tuple(findings),
        errors=errors,
        summary=summary,
        statuses=tuple(s for c in clusters for s in c.drift.statuses),
        evaluations=tuple(order_evaluations(judged.evaluations, places)),
        attestations=tuple(order_attestations(provenance.attestations, places)),
        policies=judged.policies,
    )


def _audit_clusters(
    config: Config,
    desired: DesiredState,
    scope: Scope,
    stage: ProvenanceStage | None,
    fleet: Fleet,
    progress: Progress,
    *,
    with_inputs: bool,
) -> list[_ClusterAudit]:
    """The fleet's (or shard's) clusters, read `concurrency` at a time, in configured order."""
    # the models Git declares, and what each side serves, only for the stages that read them
    # (provenance, policy inputs): `auditor drift` compares bodies alone
    needs_models = stage is not None or with_inputs
    declared: Mapping[MatchKey, ModelRef | None] = {}
    if needs_models:
        from auditor.serving import declared_models

        declared = declared_models(desired.resources)
    sources = select(config.clusters, fleet.shard, lambda c: c.name)

    def observe(source: ClusterSource) -> _ClusterRead:
        return _read_cluster(
            config, desired, declared, scope, source, stage, progress, needs_models=needs_models
        )

    return [
        # provenance and policy inputs in the configured order, on this thread: the
        # provenance stage keeps per-run state and its findings in the order it is called
        _finish_cluster(read, desired, stage, progress, with_inputs=with_inputs)
        for read in in_order(observe, sources, fleet.concurrency or config.concurrency)
    ]


def _judged(info: ClusterInfo, errors: Sequence[StageError]) -> ClusterInfo:
    """The cluster's identity with how its audit ended: incomplete when an error names it."""
    incomplete = any(e.cluster == info.name for e in errors)
    return dataclasses.replace(info, status="incomplete" if incomplete else "complete")


def in_order(work: Callable[[T], R], items: Sequence[T], concurrency: int) -> Iterator[R]:
    """`work` over `items` on up to `concurrency` threads, results yielded in item order.

    At most twice `concurrency` results wait to be taken, so a slow first cluster never makes
    the whole fleet's live objects pile up in memory. Cluster reads wait on the network, which
    threads overlap; an error raised by `work` is raised here, and what was not started yet
    never starts.
    """
    if concurrency <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="auditor-cluster")
    pending: deque[Future[R]] = deque()
    upcoming = iter(items)
    try:
        for item in upcoming:
            pending.append(pool.submit(work, item))
            if len(pending) >= 2 * concurrency:
                break
        while pending:
            result = pending.popleft().result()
            following = next(upcoming, None)
            if following is not None:
                pending.append(pool.submit(work, following))
            yield result
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _judge(
    config: Config, clusters: Sequence[_ClusterAudit], progress: Progress = no_progress
) -> StageOutcome:
    """Every policy over every cluster's inputs, once for the run."""
    from auditor.policy.stage import evaluate_inputs

    inputs = [i for c in clusters for i in c.inputs]
    # Gatekeeper's data.inventory at audit time is what Git declares in scope.
    inventory = [r.body for c in clusters for r in c.inventory]
    with events.stage(progress, "policy") as counts:
        judged = evaluate_inputs(config.policy, inputs, inventory)
        counts.update(
            evaluations=len(judged.evaluations),
            findings=len(judged.findings),
            errors=len(judged.errors),
        )
    return judged


def _read_cluster(
    config: Config,
    desired: DesiredState,
    declared: Mapping[MatchKey, ModelRef | None],
    scope: Scope,
    cluster: ClusterSource,
    stage: ProvenanceStage | None,
    progress: Progress = no_progress,
    *,
    needs_models: bool = True,
) -> _ClusterRead:
    """Desired in scope against one cluster's live objects: the read and the drift, which
    touch nothing shared and so may run beside other clusters'."""
    # Pods are read only when models are verified and Git declares an OCI model, whose
    # running digest they hold.
    verifies_models = stage is not None and config.trust is not None
    needs_pods = verifies_models and _declares_oci(declared)
    read_scope = _with_pods(scope) if needs_pods else scope
    with events.stage(progress, "live", cluster.name) as counts:
        live = read_live(cluster, read_scope, config.limits)
        counts.update(resources=len(live.resources), errors=len(live.errors))
    desired_here = _for_cluster(desired.resources, cluster.name, scope)
    live_here = [r for r in live.resources if scope.includes(r.ref)]
    with events.stage(progress, "drift", cluster.name) as counts:
        drift = compute_drift(desired_here, live_here, scope=scope, settings=config.drift)
        counts.update(resources=drift.summary.resources, findings=len(drift.findings))
    for note in drift.notes:
        log.warning("%s", note)  # on stderr as it happens; the result keeps it for the reports
    if live.unread:
        # A kind that could not be read would show up as "missing": those objects are
        # unknown, and the run is incomplete, which says so.
        drift = _drop_unknown(drift, live)
    served: Mapping[MatchKey, ServedModel] = {}
    if needs_models:
        from auditor.serving import served_models

        served = served_models(desired_here, live_here, declared)
    pods = tuple(_pods(live.resources, scope)) if stage is not None else ()
    return _ClusterRead(cluster, live, drift, tuple(desired_here), served, pods)


def _finish_cluster(
    read: _ClusterRead,
    desired: DesiredState,
    stage: ProvenanceStage | None,
    progress: Progress,
    *,
    with_inputs: bool,
) -> _ClusterAudit:
    """One cluster's provenance and policy inputs, on what its read produced."""
    name = read.source.name
    results: Mapping[MatchKey, ProvenanceResult] | None = None
    if stage is not None:
        with events.stage(progress, "provenance", name) as counts:
            results = stage.verify(name, read.served, read.pods)
            counts["resources"] = len(results)
    inputs: list[PolicyInput] = []
    if with_inputs:
        from auditor.policy.stage import build_inputs

        inputs = build_inputs(
            git=desired.git,
            cluster=name,
            served=read.served,
            drift=read.drift.findings,
            provenance=results,
        )
    return _ClusterAudit(
        info=read.live.info,
        drift=read.drift,
        errors=read.live.errors,
        inputs=tuple(inputs),
        inventory=read.desired,
    )


def _declares_oci(declared: Mapping[MatchKey, ModelRef | None]) -> bool:
    from auditor.serving import is_oci

    return any(is_oci(m) for m in declared.values())


def _with_pods(scope: Scope) -> Scope:
    """The scope plus Pods, whose container statuses hold the digest an OCI model runs.

    Only the read widens: drift and policies still see the original scope's objects.
    """
    if any(k.matches("", "Pod") for k in scope.kinds):
        return scope
    return dataclasses.replace(scope, kinds=(*scope.kinds, POD))


def _pods(resources: Iterable[Resource], scope: Scope) -> list[Resource]:
    return [
        r
        for r in resources
        if r.ref.group == "" and r.ref.kind == "Pod" and scope.includes_namespace(r.ref.namespace)
    ]


def _for_cluster(resources: Iterable[Resource], cluster: str, scope: Scope) -> list[Resource]:
    """Desired objects re-addressed to one cluster, limited to the scope."""
    out = []
    for resource in resources:
        if not scope.includes(resource.ref):
            continue
        ref = dataclasses.replace(resource.ref, cluster=cluster)
        out.append(dataclasses.replace(resource, ref=ref))
    return out


def _drop_unknown(result: DriftResult, live: LiveRead) -> DriftResult:
    """Missing findings for objects a failed live read could have held are unknowns, not drift."""
    kept = tuple(f for f in result.findings if f.check != DRIFT_MISSING or live.was_read(f.ref))
    statuses = tuple(s for s in result.statuses if s.status != "missing" or live.was_read(s.ref))
    dropped = len(result.statuses) - len(statuses)
    summary = dataclasses.replace(
        result.summary,
        missing=result.summary.missing - dropped,
        resources=result.summary.resources - dropped,
    )
    return dataclasses.replace(result, findings=kept, statuses=statuses, summary=summary)


def run_audit(
    config: Config,
    *,
    store_path: str | None = None,
    trigger: Trigger = "cli",
    run_id: str | None = None,
    fleet: Fleet = ALL_CLUSTERS,
    progress: Progress = no_progress,
    fail_on: str | None = None,
) -> AuditResult:
    """A full audit recorded in the store. The run row is written first, as `running`; it
    ends `complete` or `incomplete`, `failed` when an error stopped it, `interrupted` on
    SIGINT/SIGTERM. A run killed outright stays `running` with no finish time: never missing,
    never "clean". Credentials in the Git URL never reach the store.

    `run_id` names the run (shards of one fleet run share it); with `fleet.shard` the run
    is recorded as that shard, for `auditor store merge`. The stored exit code is judged at
    `fail_on` (the command's `--fail-on`), else at the config's."""
    from auditor.store import Store
    from auditor.tempdirs import sweep_stale_temp_dirs

    sweep_stale_temp_dirs()
    path = store_path or config.store
    if fleet.shard is not None and not path:
        raise ConfigError(
            "--shard needs a store (--store or store: in auditor.yaml): shards are merged from"
            " their stores",
            key="--shard",
        )
    if fleet.shard is not None and not run_id:
        raise ConfigError(
            "--shard needs --run-id: every shard of one fleet run passes the same id, which is "
            "how the merge knows they are one run",
            key="--run-id",
        )
    started = _now()
    store = Store.open(path) if path else None
    if store is not None and run_id and store.run(run_id) is not None:
        store.close()
        raise ConfigError(f"run {run_id} is already in the store {path}", key="--run-id")
    placeholder = Run(
        id=run_id or _new_run_id(started),
        trigger=trigger,
        started=started,
        finished=None,
        status="running",
        git_repo=redact_url(config.git.repo),
        git_revision=config.git.revision,
        git_commit="",
    )
    if store is None:
        return run_pipeline(
            config, trigger=trigger, run_id=placeholder.id, fleet=fleet, progress=progress
        )
    with store, gc_paused():  # writing the run builds as many objects as the run did
        store.begin_run(placeholder, config_path=config.path)
        if fleet.shard is not None:
            store.record_shard(placeholder.id, fleet.shard, [c.name for c in config.clusters])
        try:
            result = run_pipeline(
                config, trigger=trigger, run_id=placeholder.id, fleet=fleet, progress=progress
            )
        except (Exception, KeyboardInterrupt) as exc:
            _record_stop(store, placeholder, *_stopped_by(exc))
            raise
        with events.stage(progress, "store") as counts:
            _record_result(store, result, fail_on or config.fail_on)
            counts["findings"] = len(result.findings)
    return result


def read_access(config: Config) -> tuple[Scope, list[ReadAccess]]:
    """The scope, and every kind `run_audit` lists from a cluster under this config, for RBAC
    and the doctor: the kinds `scope.kinds` names (Git is read only when it names none, to learn
    Git's), and Pods when models are verified (an OCI model's running digest is in its Pods)."""
    resources: Sequence[Resource] = ()
    if config.scope.kinds is None:
        resources = read_desired(config.git, limits=config.limits, keep_files=False).resources
    return scope_and_access(config, resources)


def scope_and_access(
    config: Config, resources: Sequence[Resource]
) -> tuple[Scope, list[ReadAccess]]:
    """The run's scope given what Git declares (`resources`), and the kinds to list in it."""
    scope = Scope.from_desired(
        resources,
        kinds=config.scope.kinds,
        namespaces=config.scope.namespaces,
        exclude_namespaces=config.scope.exclude_namespaces,
    )
    from auditor.rbac import resources_to_read

    declared = {(r.ref.group, r.ref.kind) for r in resources}
    return scope, resources_to_read(scope, declared=declared, pods=config.trust is not None)


def _new_run_id(started: datetime) -> str:
    from auditor.store import new_run_id

    return new_run_id(started)


def _stopped_by(exc: BaseException) -> tuple[RunStatus, str, int]:
    """How a run that did not get to its end is recorded: its status, the reason and the exit
    code, as the command says them."""
    if isinstance(exc, AuditorError):
        return "failed", exc.diagnostics(), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        code = getattr(exc, "exit_code", ExitCode.INTERRUPTED)
        return "interrupted", f"interrupted ({exc or 'SIGINT'})", code
    if no_room(exc):  # the machine's disk, not a bug: exit 2
        return (
            "failed",
            f"{exc.filename or 'a file'}: {exc.strerror} (no room to write)",
            ExitCode.USAGE,
        )
    return "failed", f"internal error: {type(exc).__name__}: {exc}", ExitCode.INTERNAL


def _record_stop(
    store: Store, placeholder: Run, status: RunStatus, message: str, exit_code: int
) -> None:
    """A run that did not get to its end, with the reason as its one error."""
    error = StageError(stage="audit", message=message)
    stopped = dataclasses.replace(placeholder, status=status, finished=_now(), counts={"errors": 1})
    store.finish_run(stopped, resources=(), findings=(), errors=(error,), exit_code=exit_code)


def _record_result(store: Store, result: AuditResult, fail_on: str) -> None:
    from auditor.model import ResourceRecord

    records = [
        ResourceRecord(
            ref=s.ref, status=s.status, origin=s.desired_origin or "", line=s.desired_line
        )
        for s in result.statuses
    ]
    store.finish_run(
        result.run,
        resources=records,
        findings=result.findings,
        errors=result.errors,
        exit_code=result.audit_exit_code(fail_on),
        evaluations=result.evaluations,
        attestations=result.attestations,
        policies=result.policies,
    )


__all__ = [
    "ALL_CLUSTERS",
    "Fleet",
    "check_drift",
    "in_order",
    "read_access",
    "run_audit",
    "run_pipeline",
    "scope_and_access",
]
