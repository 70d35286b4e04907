"""A separate process writing to a store, for the crash and concurrency tests.

python -m tests.store.child record DB PREFIX COUNT GO_FILE
python -m tests.store.child pause-in-finish DB RUN_ID FINDINGS_BEFORE_PAUSE
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from auditor.model import Finding, StageError
from auditor.store import Store
from tests.store.factories import make_finding, make_record, make_run


def record(db: str, prefix: str, count: int, go_file: str) -> None:
    with Store.open(db) as store:
        print("READY", flush=True)
        while not Path(go_file).exists():
            time.sleep(0.005)
        for index in range(count):
            run = make_run(f"{prefix}-{index:03d}", minutes=index)
            store.begin_run(run)
            time.sleep(0.005)  # the audit itself, between its two transactions
            store.finish_run(
                run,
                resources=[make_record(f"model-{n}") for n in range(5)],
                findings=[make_finding(f"model-{n}") for n in range(50)],
                errors=[StageError("live", f"{prefix} {index}: forbidden")],
                exit_code=1,
            )
    print("DONE", flush=True)


class PausingFindings(Sequence[Finding]):
    """Findings that stop half-way through being written, so the parent can kill us there."""

    def __init__(self, before_pause: int) -> None:
        self.before_pause = before_pause

    def __len__(self) -> int:
        return self.before_pause * 2

    @overload
    def __getitem__(self, index: int) -> Finding: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Finding]: ...
    def __getitem__(self, index: int | slice) -> Finding | Sequence[Finding]:
        raise NotImplementedError("iterated only")

    def __iter__(self) -> Iterator[Finding]:
        padding = "x" * 1024  # big rows, so the open transaction spills into the WAL file
        for index in range(len(self)):
            if index == self.before_pause:
                print("PAUSED", flush=True)
                time.sleep(60)  # the parent SIGKILLs us here
            yield make_finding(f"model-{index}", message=padding)


def pause_in_finish(db: str, run_id: str, before_pause: int) -> None:
    with Store.open(db) as store:
        # A small page cache makes SQLite write uncommitted pages to the WAL mid-transaction,
        # the state a real large run is in when it is killed.
        store.db.execute("PRAGMA cache_size = 20")
        run = make_run(run_id, minutes=10)
        store.begin_run(run)
        print("BEGUN", flush=True)
        store.finish_run(
            run,
            resources=[make_record()],
            findings=PausingFindings(before_pause),
            errors=[],
            exit_code=1,
        )
    print("FINISHED", flush=True)  # never reached


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "record":
        record(args[0], args[1], int(args[2]), args[3])
    elif mode == "pause-in-finish":
        pause_in_finish(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")
