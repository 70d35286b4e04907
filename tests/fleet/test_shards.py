"""Which shard a cluster falls in, and clusters read concurrently in their configured order."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from auditor.errors import ConfigError
from auditor.pipeline import in_order
from auditor.shards import Shard, check_run_id, parse_shard, select, shard_of


def test_a_cluster_falls_in_the_same_shard_on_every_machine() -> None:
    # the first 8 bytes of sha256(name), mod N (worked out with hashlib by hand), not Python's
    # per-process salted hash(): shards of one fleet run on different nodes must agree
    assert [shard_of(f"cluster-{i:03d}", 3) for i in range(8)] == [1, 0, 2, 2, 1, 1, 1, 2]
    assert shard_of("prod-eu-west-1", 1) == 0


def test_every_cluster_is_in_exactly_one_shard_and_shards_are_balanced() -> None:
    names = [f"cluster-{i:03d}" for i in range(500)]
    shards = [select(names, Shard(i, 10), str) for i in range(10)]
    assert sorted(n for shard in shards for n in shard) == names
    assert all(30 <= len(shard) <= 70 for shard in shards)  # 50 each, give or take


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1of3", "write I/N"),
        ("3/3", "index must be 0 to N-1"),
        ("0/0", "index must be 0 to N-1"),
        ("-1/3", "write I/N"),
    ],
)
def test_a_bad_shard_names_the_option(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_shard(text)
    assert info.value.key == "--shard"


def test_a_shard_reads_as_written() -> None:
    assert parse_shard("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"


@pytest.mark.parametrize("run_id", ["", "../etc", "a b", "x" * 129, "-start"])
def test_a_run_id_is_a_safe_name(run_id: str) -> None:
    with pytest.raises(ConfigError, match="run id"):
        check_run_id(run_id)


def test_results_come_in_item_order_whatever_order_they_finish_in() -> None:
    finished: list[int] = []
    done = {n: threading.Event() for n in range(10)}

    def work(n: int) -> int:
        # items 0-2 each wait for the next one: 3 finishes first, then 2, 1, 0 (not a timing
        # guess, which a loaded machine can turn around)
        if n < 3:
            assert done[n + 1].wait(timeout=30), f"item {n + 1} never finished"
        finished.append(n)
        done[n].set()
        return n * n

    assert list(in_order(work, list(range(10)), 4)) == [n * n for n in range(10)]
    # they did finish out of order
    assert finished.index(3) < finished.index(2) < finished.index(1) < finished.index(0)


def test_no_more_than_concurrency_items_run_at_once() -> None:
    running = Counter[str]()
    peak = 0
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal peak
        with lock:
            running["now"] += 1
            peak = max(peak, running["now"])
        time.sleep(0.005)
        with lock:
            running["now"] -= 1
        return n

    assert list(in_order(work, list(range(20)), 3)) == list(range(20))
    assert 1 < peak <= 3


def test_an_error_in_one_item_is_raised_in_order() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ConfigError(f"cluster {n}: kubeconfig is unusable")
        return n

    results = in_order(work, list(range(6)), 3)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ConfigError, match="cluster 2"):
        next(results)
