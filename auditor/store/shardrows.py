"""A shard's run read back from its store in the run's order, a row at a time.

`auditor store merge` puts a fleet run together from its shards without holding it: each
table of each shard is read by one cursor in position order, and `Stream.take` hands over
the rows of one cluster (or one stage block of one cluster) at a time. A shard wrote its rows
in the fleet's one order (`auditor.shards`), so the rows of a cluster are together and
clusters come in configured order; a store whose rows are not is refused, never merged
out of order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlite_utils import Database

from auditor.errors import ConfigError
from auditor.model import (
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    ResourceRecord,
    Run,
    StageError,
)
from auditor.shards import finding_key, row_key
from auditor.store.shards import ShardRecord
from auditor.store.values import (
    FINDING_COLUMNS,
    attestation_of,
    error_of,
    evaluation_of,
    finding_from,
    policy_of,
    resource_of,
    run_of,
)

T = TypeVar("T")
Key = tuple[int, int]

_FINDINGS = (
    f"SELECT {', '.join('v.' + c for c in FINDING_COLUMNS)} FROM run_findings rf"
    " JOIN finding_values v ON v.id = rf.content WHERE rf.run = ? ORDER BY rf.position"
)
_POLICIES = (
    "SELECT p.* FROM run_policies rp JOIN policies p ON p.id = rp.policy"
    " WHERE rp.run = ? ORDER BY p.policy"
)


@dataclass(frozen=True, slots=True)
class ShardRun:
    """One shard of a fleet run as its store recorded it: the run, not yet its rows."""

    store: Path
    db: Database
    record: ShardRecord
    run: Run
    seq: int
    exit_code: int | None
    errors: tuple[StageError, ...]
    policies: tuple[PolicyInfo, ...]

    @property
    def used(self) -> bool:
        """Whether it got as far as recording what it saw (complete or incomplete)."""
        return self.run.finished is not None and self.run.status in ("complete", "incomplete")


def shard_run(store: Path, db: Database, record: ShardRecord) -> ShardRun:
    row = first_row(db, "SELECT * FROM runs WHERE id = ?", [record.run_id])
    assert row is not None  # run_shards rows belong to runs (foreign key)
    return ShardRun(
        store=store,
        db=db,
        record=record,
        run=run_of(row),
        seq=int(row["seq"]),
        exit_code=row.get("exit_code"),
        errors=tuple(
            error_of(r)
            for r in db.query("SELECT * FROM errors WHERE run_id = ? ORDER BY id", [record.run_id])
        ),
        policies=tuple(policy_of(r) for r in db.query(_POLICIES, [row["seq"]])),
    )


def findings(run: ShardRun) -> Iterator[Finding]:
    for values in run.db.execute(_FINDINGS, [run.seq]):
        yield finding_from(values)


def evaluations(run: ShardRun) -> Iterator[Evaluation]:
    sql = "SELECT * FROM evaluations WHERE run_id = ? ORDER BY position"
    return map(evaluation_of, run.db.query(sql, [run.record.run_id]))


def resources(run: ShardRun) -> Iterator[ResourceRecord]:
    sql = "SELECT * FROM resources WHERE run_id = ? ORDER BY position"
    return map(resource_of, run.db.query(sql, [run.record.run_id]))


def attestations(run: ShardRun) -> Iterator[Attestation]:
    sql = "SELECT * FROM attestations WHERE run_id = ? ORDER BY id"
    return map(attestation_of, run.db.query(sql, [run.record.run_id]))


class Stream(Generic[T]):
    """The rows of every shard of a run, of one table, in the merged run's order.

    The shards' cursors merged by `key` (stable: on equal keys, the earlier shard's rows
    first, as one list of every shard's rows sorted would have them); `take(key)` yields the
    rows with that key, which must be asked for in ascending order.
    """

    def __init__(
        self,
        runs: Sequence[ShardRun],
        read: Callable[[ShardRun], Iterator[T]],
        key: Callable[[T], Key],
    ) -> None:
        self._key = key
        self._rows = heapq.merge(*(self._checked(r, read(r)) for r in runs), key=key)
        self._head: T | None = next(self._rows, None)

    def _checked(self, run: ShardRun, rows: Iterable[T]) -> Iterator[T]:
        last: Key | None = None
        for row in rows:
            key = self._key(row)
            if last is not None and key < last:
                raise ConfigError(
                    f"shard store of run {run.record.run_id} holds its rows out of the fleet's"
                    " order: it was not written by `auditor audit --shard`",
                    file=str(run.store),
                )
            last = key
            yield row

    def take(self, key: Key) -> Iterator[T]:
        while self._head is not None and self._key(self._head) <= key:
            head, self._head = self._head, next(self._rows, None)
            yield head


def finding_stream(runs: Sequence[ShardRun], places: Mapping[str, int]) -> Stream[Finding]:
    return Stream(runs, findings, lambda f: finding_key(f, places))


def cluster_stream(
    runs: Sequence[ShardRun],
    read: Callable[[ShardRun], Iterator[T]],
    cluster: Callable[[T], str],
    places: Mapping[str, int],
) -> Stream[T]:
    return Stream(runs, read, lambda row: row_key(cluster(row), places))


def first_row(db: Database, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
    rows = list(db.query(sql, params))
    return rows[0] if rows else None
