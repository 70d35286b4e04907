"""Pausing the cyclic garbage collector around work that builds many acyclic objects.

A module of its own so that commands which never read YAML (`auditor findings`, `runs`,
`history`) can pause the collector without importing the YAML loader.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pauses the cyclic garbage collector while something large and acyclic is built: a
    parsed document, a run being recorded, a query's answer.

    Each burst of allocations triggers a collection that walks everything alive, and such
    work allocates millions of small objects: pausing it halves the time to load a big
    snapshot.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _age_young_objects()
            gc.enable()


# Past this many young objects a pause built something large (a run's findings, a query's
# answer), not a small document a long-running server parses for each request.
_MANY_YOUNG = 10_000


def _age_young_objects() -> None:
    """Moves every object the collector tracks into its oldest generation, without walking
    them, when the pause built many: they are still young, and the first allocation after
    the collector is back would walk all of them (6-16 ms of reading 10,000 open findings as
    model values, 0.1 s at the end of a 10,000-resource audit). freeze() and unfreeze() each
    splice lists, so they cost the same for ten objects or ten million; cyclic garbage among
    them waits for the next full collection, which is why small pauses are left to the
    collector. Not done where something froze objects on purpose (the policy worker keeps
    its inherited pages shared): unfreeze() would thaw those too."""
    if gc.get_count()[0] > _MANY_YOUNG and gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
