"""Verdicts kept for a while: bounded in size (least recently used out first) and in age.

The webhook verifies the same model again and again (every replica, every rollout, every
`kubectl apply` of an unchanged object); a verification costs hashing and signature checks,
a hit costs a dictionary lookup. A verdict is trusted for `ttl` seconds at most, so a trust
material or model change that does not show in the key (a model file replaced under
`models.root`) is seen within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from auditor.lru import LRU

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class VerdictCache(Generic[K, V]):
    """At most `size` entries, each for `ttl` seconds; `size` 0 keeps nothing. Thread-safe."""

    def __init__(
        self, size: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: LRU[K, tuple[float, V]] = LRU(max(size, 1))
        self._enabled = size > 0 and ttl > 0
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        entry = self._items.get(key) if self._enabled else None
        fresh = entry is not None and entry[0] > self._clock()
        with self._lock:
            if fresh:
                self.hits += 1
            else:
                self.misses += 1
        return entry[1] if fresh and entry is not None else None

    def put(self, key: K, value: V) -> None:
        if self._enabled:
            self._items.put(key, (self._clock() + self._ttl, value))

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items) if self._enabled else 0


__all__ = ["VerdictCache"]
