"""`auditor store merge OUT STORE...`: the shard stores of fleet runs, merged into one store,
and the admission decisions of replica stores gathered with them.

Each shard of a fleet run (`auditor audit --shard I/N --run-id ID`) records its run under the
fleet's run id, with which shard it is, how many there are, and the fleet's clusters in their
configured order (`run_shards`). The merge puts the shards of each run id back together as
one run, recorded through the store's own writer (`begin_run`, then `appending_run`), so its
history is applied exactly as a single process's run would be:

- rows in the order one process would have written them (`auditor.shards`): findings,
  evaluations and errors by stage, then by the cluster's configured position; what is about
  no cluster (the audited commit, checked by every shard) once;
- streamed: each shard's rows are read by cursors in that order and written a cluster at a
  time (`auditor.store.shardrows`), so the merge holds one cluster's rows, never the fleet's;
- counts recomputed from the merged rows by the pipeline's own rules, and a policy that
  failed in several shards one error counting all its failures, as one process reports it;
- a shard missing, unfinished, failed or interrupted leaves its clusters `not audited` and the
  run `incomplete` with an error naming the shard and its clusters: never a clean fleet;
- idempotent by run id: a run already merged from these shards is left as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    Evaluation,
    Finding,
    PolicyInfo,
    ResourceRecord,
    Run,
    StageError,
    attestation_counts,
    policy_counts,
    policy_failure,
    run_counts,
)
from auditor.shards import FINDING_BLOCKS, POLICY_BLOCK, Shard, order_errors, positions
from auditor.store import Store, shardrows
from auditor.store.decisions_merge import has_decisions, merge_decisions
from auditor.store.schema import utc_timestamp, write_transaction
from auditor.store.shardrows import ShardRun, Stream, cluster_stream, finding_stream, shard_run
from auditor.store.shards import ShardRecord, record_shards, shard_records
from auditor.store.writer import RunRows, appending_run

log = logging.getLogger(__name__)
T = TypeVar("T")

NOT_AUDITED = "not audited"
_SHARD_CACHE_KIB = 2048
_BATCH = 5000  # evaluations or resources written at once: one cluster's may be tens of thousands


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    run_id: str
    status: str
    exit_code: int
    merged: bool  # False: the store held this run from these shards already
    shards: tuple[int, ...]  # the shards given
    count: int  # how many shards the fleet run has


@dataclass(frozen=True, slots=True)
class MergeResult:
    runs: tuple[MergeOutcome, ...]
    decisions: int  # admission decisions added (those the store held already are not)


def merge_stores(out: str | Path, stores: Sequence[str | Path]) -> MergeResult:
    """Merges every fleet run found in `stores` into the store `out`, oldest first, and adds
    the admission decisions they hold that `out` does not.

    ConfigError (nothing written for that run) for a file that holds neither a shard run nor
    a decision, two files with the same shard of one run, shards that disagree on the fleet
    or the audited commit, or a run older than the newest one already in `out`.
    """
    out = Path(out)
    with contextlib.ExitStack() as opened:
        runs: list[ShardRun] = []
        replicas: list[Path] = []
        for path in map(Path, stores):
            store = opened.enter_context(_source(path, out))
            found = [shard_run(path, store.db, r) for r in shard_records(store.db)]
            if not found and not has_decisions(store.db):
                raise ConfigError(
                    "not a shard store: none of its runs was audited with --shard, and it"
                    " holds no admission decision",
                    file=str(path),
                    hint="shard stores are written by `auditor audit --shard I/N --run-id ID`",
                )
            runs += found
            if has_decisions(store.db):
                replicas.append(path.resolve())
        groups = _grouped(runs)
        # one merge into `out` at a time: two would both find a run missing and both record it
        with locked_beside(out, ".merge-lock"), Store.open(out) as target:
            outcomes = tuple(
                _merge_run(target, group)
                for group in sorted(groups.values(), key=lambda g: min(r.run.started for r in g))
            )
            added = merge_decisions(target.db, list(dict.fromkeys(replicas)))
    return MergeResult(outcomes, added)


def _source(path: Path, out: Path) -> Store:
    if not path.is_file():
        raise ConfigError("no such shard store", file=str(path))
    if out.exists() and path.resolve() == out.resolve():
        raise ConfigError("the store merged into is given as a store to merge", file=str(path))
    store = Store.open(path)
    # read once, in order: the store's usual 64 MiB page cache per shard would hold most of
    # every shard's file by the end, and the merge's memory would grow with the fleet
    store.db.execute(f"PRAGMA cache_size = -{_SHARD_CACHE_KIB}")
    return store


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
    commits = {r.run.git_commit for r in used}
    if len(commits) > 1:
        shown = ", ".join(f"shard {r.record.shard} at {r.run.git_commit[:12]}" for r in used)
        raise ConfigError(
            f"shards of run {run_id} audited different commits ({shown}): one fleet run is"
            " one commit, and its branch moved while the shards ran",
            file=str(used[-1].store),
            hint="give every shard the same --pin-commit FILE (deploy/fleet does), or pin"
            " git.revision to a commit or tag",
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
    used = [r for r in runs if r.used]
    store.begin_run(_fleet_run(runs))
    try:
        record_shards(store.db, [r.record for r in runs])
        with appending_run(store.db, record.run_id) as rows:
            tally = _append(rows, used, positions(record.fleet))
            errors = _errors(runs, tally)
            run = _merged_run(runs, tally, errors)
            exit_code = ExitCode.INCOMPLETE if run.status != "complete" else _worst(used)
            rows.finish(run, errors=errors, exit_code=exit_code)
    except BaseException:
        # a shard refused halfway (rows out of order) or the merge stopped: its rows were rolled
        # back with the transaction, and the begun row goes too, so the store is as it was
        _forget_unfinished(store, record.run_id)
        raise
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
    started = min(r.run.started for r in runs)
    latest = store.run("latest")
    if latest is not None and str(latest["started"]) > utc_timestamp(started):
        raise ConfigError(
            f"run {runs[0].record.run_id} started before the store's latest run"
            f" {latest['id']}: its findings' history would be applied out of order",
            file=str(store.path),
            hint="merge fleet runs in the order they ran",
        )


@dataclass
class _Tally:
    """What the counts and errors of the merged run need from its rows, counted as they are
    written: of each kind of row, the first one and how many there were."""

    findings: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    results: dict[str, list[Any]] = field(default_factory=dict)
    attestations: dict[bool, list[Any]] = field(default_factory=dict)
    failures: dict[str, list[Any]] = field(default_factory=dict)  # policy -> [first error, n]

    def counted(self, items: Iterable[T], kinds: dict[Any, list[Any]], kind: Any) -> Iterator[T]:
        for item in items:
            seen = kinds.setdefault(kind(item), [item, 0])
            seen[1] += 1
            yield item

    def evaluations(self, evaluations: Sequence[Evaluation]) -> Sequence[Evaluation]:
        for e in self.counted(evaluations, self.results, lambda e: e.result):
            if e.result == "error":
                self.failures.setdefault(e.policy, [e.error or "", 0])[1] += 1
        return evaluations

    @staticmethod
    def each(kinds: Mapping[Any, list[Any]]) -> Iterator[Any]:
        """As many rows as were counted, each kind's first standing for all of its kind: the
        count rules (`run_counts` and friends) read only what makes the kind."""
        return itertools.chain.from_iterable(itertools.repeat(i, n) for i, n in kinds.values())


def _append(rows: RunRows, used: Sequence[ShardRun], places: Mapping[str, int]) -> _Tally:
    """Every row of the used shards, in the order one process writes them, a cluster (of a
    stage block, for findings) at a time."""
    rows.policies(_policies(used))
    findings = finding_stream(used, places)
    evaluations = cluster_stream(
        used, shardrows.evaluations, lambda e: e.ref.cluster if e.ref else "", places
    )
    resources = cluster_stream(used, shardrows.resources, lambda r: r.ref.cluster, places)
    attestations = cluster_stream(
        used, shardrows.attestations, lambda a: a.ref.cluster if a.ref else "", places
    )
    tally = _Tally()
    for block in range(FINDING_BLOCKS):
        # -1: about no cluster; len(places): a cluster the fleet does not list
        for position in range(-1, len(places) + 1):
            part = _once_if(position, findings.take((block, position)), _finding_identity)
            rows.findings(tally.counted(part, tally.findings, lambda f: (f.severity, f.category)))
            if block == POLICY_BLOCK:
                # a cluster's evaluations with its policy findings: they share messages
                _cluster_rows(rows, tally, position, evaluations, resources, attestations)
            rows.end_part()
    return tally


def _cluster_rows(
    rows: RunRows,
    tally: _Tally,
    position: int,
    evaluations: Stream[Evaluation],
    resources: Stream[ResourceRecord],
    attestations: Stream[Attestation],
) -> None:
    key = (0, position)
    for judged in _batches(evaluations.take(key)):
        rows.evaluations(tally.evaluations(judged))
    for records in _batches(resources.take(key)):
        rows.resources(records)
    part = _once_if(position, attestations.take(key), _attestation_identity)
    rows.attestations(tally.counted(part, tally.attestations, lambda a: a.verified))


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, _BATCH)):
        yield batch


def _finding_identity(finding: Finding) -> object:
    return finding.fingerprint


def _attestation_identity(a: Attestation) -> object:
    return (a.attestation, a.source, a.subject_digest, a.authority, a.verified)


def _once_if(position: int, items: Iterable[T], key: Callable[[T], object]) -> Iterator[T]:
    """The rows about no cluster (position -1; every shard checked the commit) once each."""
    if position != -1:
        yield from items
        return
    seen: set[object] = set()
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            yield item


def _errors(runs: Sequence[ShardRun], tally: _Tally) -> list[StageError]:
    """The shards' errors as one process has them: those about no cluster once, a policy's
    failures in every shard as one error counting them all, and one per unused shard."""
    shard_errors = [
        *_once_if(
            -1,
            (e for r in runs if r.used for e in r.errors if not e.cluster),
            lambda e: (e.stage, e.target, e.message),
        ),
        *(e for r in runs if r.used for e in r.errors if e.cluster),
    ]
    failed = {e.target for e in shard_errors if _policy_failure(e, tally)}
    errors: list[StageError] = []
    placed = False
    for error in shard_errors:
        if not _policy_failure(error, tally):
            errors.append(error)
        elif not placed:
            # where the first shard's failure was, every failed policy in the order one
            # process meets them (the order of the merged evaluations)
            errors += [
                policy_failure(policy, first, count)
                for policy, (first, count) in tally.failures.items()
                if policy in failed
            ]
            placed = True
    return order_errors([*errors, *_shard_errors(runs)], positions(runs[0].record.fleet))


def _policy_failure(error: StageError, tally: _Tally) -> bool:
    """Whether a shard's error is its count of a policy's failed evaluations."""
    return (
        error.stage == "policy"
        and not error.cluster
        and error.target in tally.failures
        and error.message.startswith(f"policy {error.target} failed: ")
    )


def _fleet_run(runs: Sequence[ShardRun]) -> Run:
    """The fleet run as begun: what is known before its rows are merged."""
    used = [r for r in runs if r.used]
    base = (used or list(runs))[0].run
    return Run(
        id=runs[0].record.run_id,
        trigger=base.trigger,
        started=min(r.run.started for r in runs),
        finished=max((r.run.finished for r in used if r.run.finished), default=base.started),
        status="running",
        git_repo=base.git_repo,
        git_revision=base.git_revision,
        git_commit=base.git_commit,
        clusters=_clusters(runs),
        counts={},
        trust_policy_digest=base.trust_policy_digest,
        notes=tuple(sorted(n for r in used for n in r.run.notes)),
    )


def _merged_run(runs: Sequence[ShardRun], tally: _Tally, errors: Sequence[StageError]) -> Run:
    used = [r for r in runs if r.used]
    summary = sum((_summary(r.run.counts) for r in used), EMPTY_SUMMARY)
    counts = run_counts(summary, tally.each(tally.findings), errors)
    if any("policy_pass" in r.run.counts for r in used):
        counts.update(policy_counts(tally.each(tally.results)))
    if any("attestations" in r.run.counts for r in used):
        counts.update(attestation_counts(tally.each(tally.attestations)))
    return dataclasses.replace(
        _fleet_run(runs), status="incomplete" if errors else "complete", counts=counts
    )


def _policies(used: Sequence[ShardRun]) -> list[PolicyInfo]:
    found: dict[str, PolicyInfo] = {}
    for run in used:
        for policy in run.policies:
            found.setdefault(policy.id, policy)
    return list(found.values())


def _summary(counts: Mapping[str, int]) -> DriftSummary:
    """A shard's drift summary, from its counts (each summary field is one)."""
    return DriftSummary(**{k: int(counts.get(k, 0)) for k in EMPTY_SUMMARY.to_json()})


def _worst(used: Sequence[ShardRun]) -> int:
    """A complete fleet's exit code: 1 when any shard had findings at its --fail-on."""
    return max((r.exit_code or 0 for r in used), default=0)


def _clusters(runs: Sequence[ShardRun]) -> tuple[ClusterInfo, ...]:
    """Every cluster of the fleet in configured order; those of unused shards not audited."""
    seen = {c.name: c for r in runs if r.used for c in r.run.clusters}
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
            status = run.run.status if run.run.finished else "never finished"
            reasons = "; ".join(e.message for e in run.errors)
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


__all__ = ["MergeOutcome", "MergeResult", "merge_stores"]
