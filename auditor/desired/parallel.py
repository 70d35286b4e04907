"""Parsing many manifests on two cores: a forked process parses part of the files meanwhile.

PyYAML builds every mapping and string in Python, one core's worth of work: 1.5 s for 10,000
objects, a third of `auditor drift`. Past `PARALLEL_MIN_BYTES` of YAML, a child forked from this
process (it has the file contents and the parser already, nothing to send it) parses the later
files while this process parses the earlier ones, and sends its objects back pickled, which
reads back several times faster than parsing. Results come back in file order; the first bad
file in that order is the error, as when parsing alone. Without fork (or a second core) the
files are parsed here, one after the other.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from auditor.errors import InputError

if TYPE_CHECKING:  # multiprocessing loads only when there is enough to parse in two processes
    from multiprocessing.connection import Connection

Item = TypeVar("Item")
Parsed = TypeVar("Parsed")

PARALLEL_MIN_BYTES = 2 * 1024 * 1024
# The child's share of the bytes. This process reads the child's objects back, and the child
# pickles them first, which cost about the same (0.1 s each for 10,000 objects, against 1.5 s
# to parse them all): even halves end together.
CHILD_SHARE = 0.5


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def parse_all(
    items: Sequence[Item], sizes: Sequence[int], parse: Callable[[Item], Parsed]
) -> Iterator[Parsed]:
    """`parse(item)` for every item, in order; the later items in a forked child when the
    items are large enough and a second core is there. An InputError from `parse` is raised
    for the first item (in order) that had one."""
    total = sum(sizes)
    if total < PARALLEL_MIN_BYTES or _cores() < 2 or not _can_fork():
        yield from (parse(item) for item in items)
        return
    split, seen = len(items), 0
    for index, size in enumerate(sizes):
        if seen >= total * (1 - CHILD_SHARE):
            split = index
            break
        seen += size
    import multiprocessing

    context: Any = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(theirs, items[split:], parse), name="auditor-parse", daemon=True
    )
    child.start()
    theirs.close()
    try:
        # this process's share first: its error, if any, is the earliest
        mine = [parse(item) for item in items[:split]]
        try:
            status, payload = ours.recv()
        except EOFError:  # the child died (killed, out of memory): its share is parsed here
            status, payload = "ok", [parse(item) for item in items[split:]]
    finally:
        ours.close()
        if child.is_alive():
            with contextlib.suppress(OSError, ValueError):
                child.kill()
        child.join()
        child.close()
    yield from mine
    if status == "error":
        raise payload
    if status != "ok":
        raise RuntimeError(f"manifest parser process: {payload}")
    yield from payload


def _child(conn: Connection, items: Sequence[Any], parse: Callable[[Any], Any]) -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides, and kills this one
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        answer: tuple[str, Any] = ("ok", [parse(item) for item in items])
    except InputError as exc:
        answer = ("error", exc)
    except Exception as exc:  # a bug: the parent reports it as one
        answer = ("bug", f"{type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):
        conn.send(answer)
    conn.close()


__all__ = ["PARALLEL_MIN_BYTES", "parse_all"]
