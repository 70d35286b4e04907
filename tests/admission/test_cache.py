"""The verdict cache: bounded in entries and in age."""

from __future__ import annotations

from auditor.admission.cache import VerdictCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_verdict_is_served_until_its_ttl_then_verified_again() -> None:
    clock = Clock()
    cache: VerdictCache[str, str] = VerdictCache(10, ttl=60, clock=clock)
    cache.put("k", "verified")
    clock.now = 59.9
    assert cache.get("k") == "verified"
    clock.now = 60.0
    assert cache.get("k") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_verdict_goes_first_when_full() -> None:
    cache: VerdictCache[str, int] = VerdictCache(2, ttl=60, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_size_zero_keeps_nothing() -> None:
    cache: VerdictCache[str, int] = VerdictCache(0, ttl=60)
    cache.put("a", 1)
    assert cache.get("a") is None
    assert len(cache) == 0
