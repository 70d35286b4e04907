"""gc_paused: no collections while it lasts, and none owed for what it built when it ends."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from auditor.gc_pause import gc_paused


class Node:
    def __init__(self) -> None:
        self.next: object = None


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_inside_a_pause_leaves_the_collector_off_until_the_outer_one_ends() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def collections_after_a_pause(built: int) -> list[int]:
    """The generations collected from the end of a pause that built `built` objects (kept)
    until 100 more are made after it."""
    walked: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            walked.append(info["generation"])

    gc.collect()
    gc.callbacks.append(record)  # before the pause ends: ending it allocates
    try:
        with gc_paused():
            kept = [Node() for _ in range(built)]
        more = [Node() for _ in range(100)]
    finally:
        gc.callbacks.remove(record)
    assert len(kept) == built and len(more) == 100
    return walked


def test_what_a_large_pause_built_is_not_walked_by_the_next_collection() -> None:
    assert collections_after_a_pause(50_000) == []  # far past the youngest's threshold
    assert gc.get_count()[0] < gc.get_threshold()[0]


def test_a_small_pause_is_left_to_the_collector() -> None:
    # past the threshold, but a request's worth: the youngest generation walked as usual
    assert collections_after_a_pause(2_000)[:1] == [0]


def test_cyclic_garbage_made_during_a_large_pause_is_still_collected() -> None:
    with gc_paused():
        kept = [Node() for _ in range(50_000)]
        first, second = Node(), Node()
        first.next, second.next = second, first
        gone = weakref.ref(first)
        del first, second
    assert gone() is not None  # a cycle: only a collection frees it
    gc.collect()
    assert gone() is None
    assert len(kept) == 50_000


def test_objects_frozen_on_purpose_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            built = [Node() for _ in range(50_000)]  # a pause large enough to age its objects
        # Still frozen, and nothing added: unfreeze() would have made it 0, a freeze() left
        # in place frozen + 50,000. (Frozen objects freed meanwhile lower it a little.)
        assert frozen / 2 < gc.get_freeze_count() <= frozen
        assert len(built) == 50_000
    finally:
        gc.unfreeze()
