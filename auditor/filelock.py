"""An exclusive lock next to a file, held across processes (flock), for work that two runs
must not do on the same file at once: fetching into one Git cache, merging into one store."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def locked_beside(path: Path, suffix: str = ".lock") -> Iterator[None]:
    """Holds `<path><suffix>` locked (creating it and its folder) until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + suffix), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
