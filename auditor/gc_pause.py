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
    """Pauses the cyclic garbage collector while a large document is built.

    Parsing allocates millions of small acyclic objects, and each allocation burst triggers a
    collection that walks everything alive: pausing it halves the time to load a big snapshot.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
