"""The one orchestration: config -> desired, live -> drift -> provenance -> policy -> store.

This is the library API the CLI, the cron job and the tests call: `check_drift` for a diff
without a store, `run_audit` for a recorded run. Each cluster is audited by `_audit_cluster`
(desired in scope, live, drift, provenance, policy inputs); policies are evaluated once for the
whole run; the admission server and fleet shards call the same stage functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from auditor.checks import DRIFT_MISSING, apply_overrides
from auditor.config import ClusterSource, Config
from auditor.desired import read_desired
from auditor.drift import compute_drift
from auditor.errors import AuditorError
from auditor.exit_codes import ExitCode
from auditor.live.read import read_live
from auditor.model import (
    EMPTY_SUMMARY,
    SEVERITIES,
    AuditResult,
    ClusterInfo,
    DesiredState,
    DriftResult,
    DriftSummary,
    Finding,
    LiveRead,
    ModelRef,
    PolicyInput,
    ProvenanceResult,
    Resource,
    ResourceRecord,
    Run,
    RunStatus,
    StageError,
    StageOutcome,
    Trigger,
)
from auditor.policy.stage import build_inputs, evaluate_inputs, evaluation_counts
from auditor.redact import redact_url
from auditor.safeyaml import gc_paused
from auditor.scope import KindSelector, Scope
from auditor.serving import declared_models, is_oci, served_models
from auditor.tempdirs import sweep_stale_temp_dirs

if TYPE_CHECKING:
    from auditor.provenance.stage import ProvenanceStage
    from auditor.store import Store

log = logging.getLogger(__name__)

MatchKey = tuple[str, str, str, str]
POD = KindSelector(group="", kind="Pod")


@dataclass(frozen=True, slots=True)
class _ClusterAudit:
    """What one cluster contributed to the run."""

    info: ClusterInfo
    drift: DriftResult
    errors: tuple[StageError, ...]
    inputs: tuple[PolicyInput, ...]
    inventory: tuple[Resource, ...]


def _now() -> datetime:
    return datetime.now(UTC)


def check_drift(config: Config, *, trigger: Trigger = "cli", run_id: str = "") -> AuditResult:
    """Git at the pinned commit against every configured cluster, drift only. Raises
    AuditorError for input that cannot be used (exit 2); a cluster that cannot be fully read
    makes the run incomplete."""
    return run_pipeline(config, trigger=trigger, run_id=run_id, policies=False, provenance=False)


def run_pipeline(
    config: Config,
    *,
    trigger: Trigger = "cli",
    run_id: str = "",
    policies: bool = True,
    provenance: bool = True,
) -> AuditResult:
    """Every stage over every cluster, without storing. With `provenance` (and a `trust:`
    section) serving resources are verified; with `policies` every resource in scope is judged
    with inputs that carry those provenance results (or say provenance is not configured)."""
    started = _now()
    # The cyclic GC paused for the whole run: a run builds millions of acyclic objects (parsed
    # manifests, the snapshot, findings) and keeps them to the end, so every collection walks
    # all of them and frees nothing; paused per file instead, each file's end set one off
    # (24-30% of `auditor drift` at 10,000-50,000 resources).
    with gc_paused():
        stage = _provenance_stage(config) if provenance and config.verifies_provenance else None
        desired = read_desired(config.git, limits=config.limits, keep_files=stage is not None)
        try:
            return _run(config, desired, stage, policies, trigger, run_id, started)
        finally:
            if stage is not None:
                stage.close()
            if desired.files is not None:
                desired.files.close()


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
    # the models Git declares, and below what each side serves, only for the stages that
    # read them (provenance, policy inputs): `auditor drift` compares bodies alone
    judges = policies and config.policy.enabled
    declared = declared_models(desired.resources) if stage is not None or judges else {}
    clusters = [
        _audit_cluster(config, desired, declared, scope, cluster, stage, with_inputs=policies)
        for cluster in config.clusters
    ]
    if stage is not None:
        provenance = stage.outcome()
    judged = _judge(config, clusters) if judges else StageOutcome()
    findings = apply_overrides(
        [
            *(f for c in clusters for f in c.drift.findings),
            *provenance.findings,
            *judged.findings,
        ],
        config.severity_overrides,
    )
    errors = (
        *(e for c in clusters for e in c.errors),
        *provenance.errors,
        *judged.errors,
    )
    summary = sum((c.drift.summary for c in clusters), EMPTY_SUMMARY)
    status: RunStatus = "incomplete" if errors else "complete"
    counts = _counts(summary, findings, errors)
    if judges:
        counts.update(evaluation_counts(judged))
    if stage is not None:
        counts["attestations"] = len(provenance.attestations)
        counts["attestations_verified"] = sum(1 for a in provenance.attestations if a.verified)
    run = Run(
        id=run_id,
        trigger=trigger,
        started=started,
        finished=_now(),
        status=status,
        git_repo=desired.repo,
        git_revision=desired.revision,
        git_commit=desired.commit,
        clusters=tuple(c.info for c in clusters),
        counts=counts,
        trust_policy_digest=config.trust.digest if config.trust is not None else "",
        notes=tuple(note for c in clusters for note in c.drift.notes),
    )
    return AuditResult(
        run=run,
        git=desired.git,
        findings=findings,
        errors=errors,
        summary=summary,
        statuses=tuple(s for c in clusters for s in c.drift.statuses),
        evaluations=judged.evaluations,
        attestations=provenance.attestations,
        policies=judged.policies,
    )


def _judge(config: Config, clusters: Sequence[_ClusterAudit]) -> StageOutcome:
    """Every policy over every cluster's inputs, once for the run."""
    inputs = [i for c in clusters for i in c.inputs]
    # Gatekeeper's data.inventory at audit time is what Git declares in scope.
    inventory = [r.body for c in clusters for r in c.inventory]
    return evaluate_inputs(config.policy, inputs, inventory)


def _audit_cluster(
    config: Config,
    desired: DesiredState,
    declared: Mapping[MatchKey, ModelRef | None],
    scope: Scope,
    cluster: ClusterSource,
    stage: ProvenanceStage | None,
    *,
    with_inputs: bool,
) -> _ClusterAudit:
    """Desired in scope against one cluster's live objects: drift, provenance, policy inputs."""
    # Pods are read only when models are verified and Git declares an OCI model, whose
    # running digest they hold.
    verifies_models = stage is not None and config.trust is not None
    needs_pods = verifies_models and any(is_oci(m) for m in declared.values())
    read_scope = _with_pods(scope) if needs_pods else scope
    live = read_live(cluster, read_scope, config.limits)
    desired_here = _for_cluster(desired.resources, cluster.name, scope)
    live_here = [r for r in live.resources if scope.includes(r.ref)]
    drift = compute_drift(desired_here, live_here, scope=scope, settings=config.drift)
    for note in drift.notes:
        log.warning("%s", note)  # on stderr as it happens; the result keeps it for the reports
    if live.unread:
        # A kind that could not be read would show up as "missing": those objects are
        # unknown, and the run is incomplete, which says so.
        drift = _drop_unknown(drift, live)
    wants_inputs = with_inputs and config.policy.enabled
    if stage is None and not wants_inputs:
        return _ClusterAudit(
            info=live.info, drift=drift, errors=live.errors, inputs=(), inventory=()
        )
    served = served_models(desired_here, live_here, declared)
    results: Mapping[MatchKey, ProvenanceResult] | None = None
    if stage is not None:
        results = stage.verify(cluster.name, served, _pods(live.resources, scope))
    inputs: list[PolicyInput] = []
    if wants_inputs:
        inputs = build_inputs(
            git=desired.git,
            cluster=cluster.name,
            served=served,
            drift=drift.findings,
            provenance=results,
        )
    return _ClusterAudit(
        info=live.info,
        drift=drift,
        errors=live.errors,
        inputs=tuple(inputs),
        inventory=tuple(desired_here),
    )


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


def _counts(
    summary: DriftSummary, findings: Sequence[Finding], errors: Sequence[StageError]
) -> dict[str, int]:
    by_severity = Counter(f.severity for f in findings)
    by_category = Counter(f.category for f in findings)
    counts = dataclasses.asdict(summary)
    counts["findings"] = len(findings)
    counts.update({severity: by_severity.get(severity, 0) for severity in SEVERITIES})
    counts.update({f"category_{c}": n for c, n in sorted(by_category.items())})
    counts["errors"] = len(errors)
    return counts


def run_audit(
    config: Config, *, store_path: str | None = None, trigger: Trigger = "cli"
) -> AuditResult:
    """A full audit recorded in the store. The run row is written first, as `running`; it
    ends `complete` or `incomplete`, `failed` when an error stopped it, `interrupted` on
    SIGINT/SIGTERM. A run killed outright stays `running` with no finish time: never missing,
    never "clean". Credentials in the Git URL never reach the store."""
    from auditor.store import Store

    sweep_stale_temp_dirs()
    path = store_path or config.store
    started = _now()
    store = Store.open(path) if path else None
    placeholder = Run(
        id=_new_run_id(started),
        trigger=trigger,
        started=started,
        finished=None,
        status="running",
        git_repo=redact_url(config.git.repo),
        git_revision=config.git.revision,
        git_commit="",
    )
    if store is None:
        return run_pipeline(config, trigger=trigger, run_id=placeholder.id)
    with store, gc_paused():  # writing the run builds as many objects as the run did
        store.begin_run(placeholder, config_path=config.path)
        try:
            result = run_pipeline(config, trigger=trigger, run_id=placeholder.id)
        except AuditorError as exc:
            _record_stop(store, placeholder, "failed", exc.diagnostics(), exc.exit_code)
            raise
        except KeyboardInterrupt as exc:
            code = getattr(exc, "exit_code", ExitCode.INTERRUPTED)
            _record_stop(
                store, placeholder, "interrupted", f"interrupted ({exc or 'SIGINT'})", code
            )
            raise
        except Exception as exc:
            why = f"internal error: {type(exc).__name__}: {exc}"
            _record_stop(store, placeholder, "failed", why, ExitCode.INTERNAL)
            raise
        _record_result(store, result, config.fail_on)
    return result


def _new_run_id(started: datetime) -> str:
    from auditor.store import new_run_id

    return new_run_id(started)


def _record_stop(
    store: Store, placeholder: Run, status: RunStatus, message: str, exit_code: int
) -> None:
    """A run that did not get to its end, with the reason as its one error."""
    error = StageError(stage="audit", message=message)
    stopped = dataclasses.replace(placeholder, status=status, finished=_now(), counts={"errors": 1})
    store.finish_run(stopped, resources=(), findings=(), errors=(error,), exit_code=exit_code)


def _record_result(store: Store, result: AuditResult, fail_on: str) -> None:
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


__all__ = ["check_drift", "run_audit", "run_pipeline"]
