"""What the pipeline says while it runs: a `StageEvent` when a stage starts, finishes or fails,
per cluster for the per-cluster stages. Plain values through a callback, so the pipeline knows
nothing of terminals, log formats or metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

StageState = Literal["started", "finished", "failed"]


@dataclass(frozen=True, slots=True)
class StageEvent:
    """A stage of a run started, finished or failed."""

    stage: str  # desired, live, drift, provenance, policy, store
    state: StageState
    cluster: str = ""  # "" for the stages run once for the whole run
    # what the stage got through: resources, findings, errors (its StageErrors)
    counts: Mapping[str, int] = field(default_factory=dict)
    seconds: float | None = None  # on finished and failed
    reason: str = ""  # on failed: the error's class, never its values

    @property
    def ok(self) -> bool:
        """Finished, and nothing it was asked to do is missing."""
        return self.state == "finished" and not self.counts.get("errors")


Progress = Callable[[StageEvent], None]


def no_progress(event: StageEvent) -> None:
    """The default listener: nobody is watching."""


@contextmanager
def stage(progress: Progress, name: str, cluster: str = "") -> Iterator[dict[str, int]]:
    """Emits `started`, then `finished` with the counts the block put in the yielded dict, or
    `failed` when the block raised (the exception goes on)."""
    progress(StageEvent(stage=name, state="started", cluster=cluster))
    counts: dict[str, int] = {}
    began = time.monotonic()

    def ended(state: StageState, reason: str = "") -> StageEvent:
        seconds = time.monotonic() - began
        return StageEvent(name, state, cluster, dict(counts), seconds, reason)

    try:
        yield counts
    except BaseException as exc:
        progress(ended("failed", type(exc).__name__))
        raise
    progress(ended("finished"))


def fan_out(*listeners: Progress) -> Progress:
    """One listener that tells each of `listeners`, in order."""

    def tell(event: StageEvent) -> None:
        for listener in listeners:
            listener(event)

    return tell


__all__ = ["Progress", "StageEvent", "fan_out", "no_progress", "stage"]
