"""Decisions to the store in batches, from a thread of their own: a response never waits.

`submit` only puts the decision on a bounded queue; when the queue is full (the store is
slower than the webhook for long) the decision is dropped, counted and logged rather than
delaying admission. The writer thread takes what is queued, up to `batch` at a time, and hands
it to the sink (one transaction per batch). `close` (the server's shutdown, on SIGTERM) writes
everything still queued before it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from auditor.model import AdmissionDecision

log = logging.getLogger(__name__)


class Sink(Protocol):
    def __call__(self, decisions: Sequence[AdmissionDecision]) -> None: ...

    def close(self) -> None: ...


_STOP = object()
# How long the writer waits after a decision for others to write with it: a decision reaches
# the store this much later at most, never a response.
LINGER_SECONDS = 0.05


class DecisionWriter:
    """A bounded queue of decisions and the thread that writes them to a sink."""

    def __init__(
        self,
        sink_factory: Callable[[], Sink],
        *,
        capacity: int,
        batch: int = 500,
        linger: float = LINGER_SECONDS,
        on_error: Callable[[str, int], None] = lambda kind, n: None,
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._sink_factory = sink_factory
        self._batch = batch
        self._linger = linger
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="auditor-decisions", daemon=True)
        self._thread.start()
        self.written = 0

    def submit(self, decision: AdmissionDecision) -> bool:
        """Queues `decision`; False (dropped) when the queue is full. Never blocks."""
        try:
            self._queue.put_nowait(decision)
        except queue.Full:
            self._on_error("dropped", 1)
            log.error("admission: decision for %s not stored: queue full", decision.request.uid)
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Writes what is queued, then stops the thread (within `timeout` seconds)."""
        self._queue.put(_STOP)  # blocks only if full, while the thread is draining it
        self._thread.join(timeout)

    def _take(self) -> list[object]:
        """The next batch: the first decision queued, then, `linger` seconds later, whatever
        else is queued (a transaction per decision would keep this thread, and the GIL, busy
        at a few hundred decisions a second; sleeping rather than waiting on the queue spares
        the server a thread wake-up per decision)."""
        items = [self._queue.get()]
        if items[0] is not _STOP and self._linger > 0:
            time.sleep(self._linger)
        while len(items) < self._batch and items[-1] is not _STOP:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _run(self) -> None:
        sink = self._sink_factory()
        try:
            stopping = False
            while not stopping:
                items = self._take()
                stopping = any(item is _STOP for item in items)
                batch = [i for i in items if isinstance(i, AdmissionDecision)]
                if batch:
                    self._write(sink, batch)
        finally:
            sink.close()

    def _write(self, sink: Sink, batch: list[AdmissionDecision]) -> None:
        try:
            sink(batch)
            self.written += len(batch)
        except Exception as exc:  # the store is down or full: count it, keep serving
            self._on_error("store", len(batch))
            log.error("admission: %d decisions not stored: %s", len(batch), exc)


__all__ = ["DecisionWriter", "Sink"]
