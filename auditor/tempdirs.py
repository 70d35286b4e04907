"""Temporary folders that never outlive their run, even a run that was killed.

A run copies the commit for kustomize, writes signature bundles for model-signing, and gives
gpg a home: those folders are removed when the run ends or is interrupted (their owners use
them as context managers). A run killed outright (SIGKILL, OOM) cannot clean up, so each
folder's name carries the process id, and the next run removes folders whose process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "auditor-"
_OWNED = re.compile(rf"^{PREFIX}(?P<pid>\d+)-")


def make_temp_dir(purpose: str) -> Path:
    """A new private folder (mode 0700) named `auditor-<pid>-<purpose>-...`."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{purpose}-"))


@contextlib.contextmanager
def temp_dir(purpose: str) -> Iterator[Path]:
    """`make_temp_dir`, removed when the block ends, however it ends."""
    path = make_temp_dir(purpose)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_stale_temp_dirs(root: str | None = None) -> list[Path]:
    """Removes the folders of runs whose process no longer exists; returns what it removed."""
    base = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            match = _OWNED.match(entry.name)
            if match is None or not entry.is_dir() or entry.is_symlink():
                continue
            pid = int(match["pid"])
            if pid == os.getpid() or _alive(pid):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.info("removed %d temporary folder(s) left by killed runs", len(removed))
    return removed


__all__ = ["make_temp_dir", "sweep_stale_temp_dirs", "temp_dir"]
