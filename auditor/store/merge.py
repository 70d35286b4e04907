"""`auditor store merge OUT SHARD...`: the shard stores of fleet runs, merged into one store.

Each shard of a fleet run (`auditor audit --shard I/N --run-id ID`) records its run under the
fleet's run id, with which shard it is, how many there are, and the fleet's clusters in their
configured order (`run_shards`). The merge puts the shards of each run id back together as
one run, recorded through the store's own `begin_run`/`finish_run`, so its history is
applied exactly as a single process's run would be:

- rows in the order one process would have written them (`auditor.shards`): findings,
  evaluations and errors by stage, then by the cluster's configured position; what is about
  no cluster (the audited commit, checked by every shard) once;
- counts recomputed from the merged rows by the pipeline's own rules;
- a shard missing, unfinished, failed or interrupted leaves its clusters `not audited` and the
  run `incomplete` with an error naming the shard and its clusters: never a clean fleet;
- idempotent by run id: a run already merged from these shards is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from auditor.errors import ConfigError
from auditor.exit_codes import ExitCode
from auditor.filelock import locked_beside
from auditor.model import (
    EMPTY_SUMMARY,
    Attestation,
    ClusterInfo,
    DriftSummary,
    Finding,
    PolicyInfo,
    Run,
    RunReport,
    StageError,
    attestation_counts,
    policy_counts,
    run_counts,
)
from auditor.shards import (
    Shard,
    order_attestations,
    order_errors,
    order_evaluations,
    order_findings,
    order_resources,
    positions,
)
from auditor.store import Store
from auditor.store.schema import utc_timestamp, write_transaction
from auditor.store.shards import ShardRecord, record_shards, shard_records

log = logging.getLogger(__name__)
T = TypeVar("T")

USED = ("complete", "incomplete")  # a shard run that got as far as recording what it saw
NOT_AUDITED = "not audited"


@dataclass(frozen=True, slots=True)
class ShardRun:
    """One shard of a fleet run as its store recorded it."""

    store: Path
    record: ShardRecord
    report: RunReport

    @property
    def used(self) -> bool:
        return self.report.run.finished is not None and self.report.run.status in USED


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    run_id: str
    status: str
    exit_code: int
    merged: bool  # False: the store held this run from these shards already
    shards: tuple[int, ...]  # the shards given
    count: int  # how many shards the fleet run has


def merge_stores(out: str | Path, shard_stores: Sequence[str | Path]) -> list[MergeOutcome]:
    """Merges every fleet run found in `shard_stores` into the store `out`, oldest first.

    ConfigError (nothing written for that run) for a file that holds no shard run, two files
    with the same shard of one run, shards that disagree on the fleet or the audited commit,
    or a run older than the newest one already in `out`.
    """
    groups = _grouped([run for path in shard_stores for run in _shard_runs(Path(path))])
    outcomes = []
    # one merge into `out` at a time: two would both find a run missing and both record it
    with locked_beside(Path(out), ".merge-lock"), Store.open(out) as store:
        for runs in sorted(groups.values(), key=lambda rs: min(r.report.run.started for r in rs)):
            outcomes.append(_merge_run(store, runs))
    return outcomes


def _shard_runs(path: Path) -> list[ShardRun]:
    if not path.is_file():
        raise ConfigError("no such shard store", file=str(path))
    with Store.open(path) as store:
        records = shard_records(store.db)
        if not records:
            raise ConfigError(
                "not a shard store: none of its runs was audited with --shard",
                file=str(path),
                hint="shard stores are written by `auditor audit --shard I/N --run-id ID`",
            )
        found = []
        for record in records:
            report = store.report(record.run_id)
            assert report is not None  # run_shards rows belong to runs (foreign key)
            found.append(ShardRun(path, record, report))
    return found


def _grouped(runs: Iterable[ShardRun]) -> dict[str, list[ShardRun]]:
    groups: dict[str, dict[int, ShardRun]] = {}
    for run in runs:
        shards = groups.setdefault(run.record.run_id, {})
        earlier = shards.get(run.record.shard)
        if earlier is None:
            shards[run.record.shard] = run
        elif earlier.store.resolve() != run.store.resolve():
            raise ConfigError(
                f"shard {run.record.shard} of run {run.record.run_id} is in two stores:"
                f" {earlier.store} and {run.store}",
                file=str(run.store),
                hint="give each shard's store once; a retried shard replaces its store",
            )
    for run_id, shards in groups.items():
        _check_agree(run_id, list(shards.values()))
    return {run_id: [s[i] for i in sorted(s)] for run_id, s in groups.items()}


def _check_agree(run_id: str, runs: Sequence[ShardRun]) -> None:
    """Shards of one run must describe one fleet at one commit."""
    first = runs[0]
    for other in runs[1:]:
        if (other.record.shards, other.record.fleet) != (first.record.shards, first.record.fleet):
            raise ConfigError(
                f"shards of run {run_id} disagree on the fleet: {first.store} is shard"
                f" {first.record.shard} of {first.record.shards} over"
                f" {len(first.record.fleet)} clusters, {other.store} shard"
                f" {other.record.shard} of {other.record.shards} over"
                f" {len(other.record.fleet)}",
                file=str(other.store),
                hint="every shard of a fleet run must use the same auditor.yaml and N",
            )
    used = [r for r in runs if r.used]
    commits = {r.report.run.git_commit for r in used}
    if len(commits) > 1:
        shown = ", ".join(f"shard {r.record.shard} at {r.report.run.git_commit[:12]}" for r in used)
        raise ConfigError(
            f"shards of run {run_id} audited different commits ({shown}): one fleet run is"
            " one commit",
            file=str(used[-1].store),
            hint="pin git.revision to a commit or tag for sharded runs",
        )


def _merge_run(store: Store, runs: Sequence[ShardRun]) -> MergeOutcome:
    record = runs[0].record
    given = tuple(r.record.shard for r in runs)
    existing = store.run(record.run_id)
    if existing is not None and existing["finished"] is None:
        # an earlier merge died between begin and finish: nothing of it counts yet
        _forget_unfinished(store, record.run_id)
        existing = None
    if existing is not None:
        return _already_merged(store, record, given, existing)
    _check_newest(store, runs)
    run, findings, errors = _merged_run(runs)
    used = [r for r in runs if r.used]
    exit_code = ExitCode.INCOMPLETE if run.status != "complete" else _worst(used)
    store.begin_run(run)
    record_shards(store.db, [r.record for r in runs])
    reports = [r.report for r in used]
    places = positions(record.fleet)
    store.finish_run(
        run,
        resources=order_resources((x for r in reports for x in r.resources), places),
        findings=findings,
        errors=errors,
        exit_code=exit_code,
        evaluations=order_evaluations((e for r in reports for e in r.evaluations), places),
        attestations=_attestations(reports, places),
        policies=_policies(reports),
    )
    log.info("merged run %s from shards %s of %d", run.id, given, record.shards)
    return MergeOutcome(run.id, run.status, exit_code, True, given, record.shards)


def _already_merged(
    store: Store, record: ShardRecord, given: tuple[int, ...], existing: Mapping[str, Any]
) -> MergeOutcome:
    merged = {r.shard for r in shard_records(store.db, record.run_id)}
    late = sorted(set(given) - merged)
    if late:
        raise ConfigError(
            f"run {record.run_id} is already in the store, merged from shards"
            f" {sorted(merged) or 'none'}; shard(s) {late} came too late: a recorded run is"
            " never changed",
            file=str(store.path),
            hint="merge every shard of a fleet run in one `auditor store merge`",
        )
    exit_code = existing.get("exit_code")
    return MergeOutcome(
        record.run_id,
        str(existing["status"]),
        int(exit_code) if isinstance(exit_code, int) else int(ExitCode.INCOMPLETE),
        False,
        given,
        record.shards,
    )


def _forget_unfinished(store: Store, run_id: str) -> None:
    with write_transaction(store.db):
        store.db.execute("DELETE FROM runs WHERE id = ? AND finished IS NULL", [run_id])


def _check_newest(store: Store, runs: Sequence[ShardRun]) -> None:
    """History is applied in the order runs are recorded: an older run cannot come later."""
    started = min(r.report.run.started for r in runs)
    latest = store.run("latest")
    if latest is not None and str(latest["started"]) > utc_timestamp(started):
        raise ConfigError(
            f"run {runs[0].record.run_id} started before the store's latest run"
            f" {latest['id']}: its findings' history would be applied out of order",
            file=str(store.path),
            hint="merge fleet runs in the order they ran",
        )


def _merged_run(runs: Sequence[ShardRun]) -> tuple[Run, list[Finding], list[StageError]]:
    record = runs[0].record
    places = positions(record.fleet)
    used = [r for r in runs if r.used]
    reports = [r.report for r in used]
    findings = order_findings(
        _once_for_the_run(
            (rf.finding for r in reports for rf in r.findings),
            lambda f: f.ref.cluster,
            lambda f: f.fingerprint,
        ),
        places,
    )
    errors = order_errors(
        [
            *_once_for_the_run(
                (e for r in reports for e in r.errors),
                lambda e: e.cluster,
                lambda e: (e.stage, e.target, e.message),
            ),
            *_shard_errors(runs),
        ],
        places,
    )
    summary = sum((_summary(r.run.counts) for r in reports), EMPTY_SUMMARY)
    counts = run_counts(summary, findings, errors)
    if any("policy_pass" in r.run.counts for r in reports):
        counts.update(policy_counts(e for r in reports for e in r.evaluations))
    if any("attestations" in r.run.counts for r in reports):
        counts.update(attestation_counts(_attestations(reports, places)))
    base = (used or list(runs))[0].report.run
    run = Run(
        id=record.run_id,
        trigger=base.trigger,
        started=min(r.report.run.started for r in runs),
        finished=max((r.run.finished for r in reports if r.run.finished), default=base.started),
        status="incomplete" if errors else "complete",
        git_repo=base.git_repo,
        git_revision=base.git_revision,
        git_commit=base.git_commit,
        clusters=_clusters(runs),
        counts=counts,
        trust_policy_digest=base.trust_policy_digest,
        notes=tuple(sorted(n for r in reports for n in r.run.notes)),
    )
    return run, findings, errors


def _once_for_the_run(
    items: Iterable[T], cluster: Callable[[T], str], key: Callable[[T], object]
) -> list[T]:
    """Every item, but those about no cluster (every shard checked the commit) only once."""
    seen: set[object] = set()
    out = []
    for item in items:
        if not cluster(item):
            identity = key(item)
            if identity in seen:
                continue
            seen.add(identity)
        out.append(item)
    return out


def _attestations(reports: Sequence[RunReport], places: Mapping[str, int]) -> list[Attestation]:
    return order_attestations(
        _once_for_the_run(
            (a for r in reports for a in r.attestations),
            lambda a: a.ref.cluster if a.ref else "",
            lambda a: (a.attestation, a.source, a.subject_digest, a.authority, a.verified),
        ),
        places,
    )


def _policies(reports: Sequence[RunReport]) -> list[PolicyInfo]:
    found: dict[str, PolicyInfo] = {}
    for report in reports:
        for policy in report.policies:
            found.setdefault(policy.id, policy)
    return list(found.values())


def _summary(counts: Mapping[str, int]) -> DriftSummary:
    """A shard's drift summary, from its counts (each summary field is one)."""
    return DriftSummary(**{k: int(counts.get(k, 0)) for k in EMPTY_SUMMARY.to_json()})


def _worst(used: Sequence[ShardRun]) -> int:
    """A complete fleet's exit code: 1 when any shard had findings at its --fail-on."""
    return max((r.report.exit_code or 0 for r in used), default=0)


def _clusters(runs: Sequence[ShardRun]) -> tuple[ClusterInfo, ...]:
    """Every cluster of the fleet in configured order; those of unused shards not audited."""
    seen = {c.name: c for r in runs if r.used for c in r.report.run.clusters}
    return tuple(
        seen.get(name, ClusterInfo(name=name, status=NOT_AUDITED)) for name in runs[0].record.fleet
    )


def _shard_errors(runs: Sequence[ShardRun]) -> list[StageError]:
    """One error per shard that is missing or saw nothing, naming its clusters."""
    record = runs[0].record
    by_index = {r.record.shard: r for r in runs}
    errors = []
    for index in range(record.shards):
        shard = Shard(index, record.shards)
        clusters = [c for c in record.fleet if shard.holds(c)]
        run = by_index.get(index)
        if run is not None and run.used:
            continue
        if run is None:
            why = "missing: no store of it was given to the merge"
        else:
            status = run.report.run.status if run.report.run.finished else "never finished"
            reasons = "; ".join(e.message for e in run.report.errors)
            why = f"{status}" + (f" ({reasons})" if reasons else "")
        shown = ", ".join(clusters) if clusters else "no clusters"
        errors.append(
            StageError(
                stage="fleet",
                target=f"shard {shard}",
                message=f"shard {shard} of run {record.run_id} {why}: not audited: {shown}",
            )
        )
    return errors


__all__ = ["MergeOutcome", "merge_stores"]
