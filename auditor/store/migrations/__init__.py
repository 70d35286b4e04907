"""Ordered, forward-only schema migrations: one module per step.

A migration is a module named `mNNNN_what_it_does.py` in this package that defines
`migrate(db: sqlite_utils.Database) -> None`. Its number is the schema version it
brings the store to. Adding a table is dropping one new module here: `auditor.store.schema`
finds it, runs it once per store inside the store's write lock and records it in
`schema_version`. A published migration is never edited: a store in the field has already
run it, so a change is always a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

_MODULE_NAME = re.compile(r"^m(\d{4})_[a-z0-9_]+$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the module name, recorded in `schema_version` for people reading the store
    apply: Callable[[Database], None]


@dataclass(frozen=True, slots=True)
class _ModuleStep:
    """A migration module's `migrate`, imported when a store needs the step: nearly every
    open finds the store at the latest version, and loading every step's code (and what it
    imports) was a tenth of the start-up of `auditor findings`."""

    module: str

    def __call__(self, db: Database) -> None:
        importlib.import_module(self.module).migrate(db)


def discover(package: str = __name__) -> tuple[Migration, ...]:
    """Every migration module in `package`, ordered by version.

    Versions must run 1..N with no gap or duplicate: a gap is a mis-named or missing module,
    and applying around it would leave stores whose version number lies about their schema.
    """
    found: list[Migration] = []
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        match = _MODULE_NAME.match(info.name)
        if match:
            step = _ModuleStep(f"{package}.{info.name}")
            found.append(Migration(int(match.group(1)), info.name, step))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        names = ", ".join(migration.name for migration in found)
        raise RuntimeError(
            f"store migrations in {package} must be numbered 1..N without gaps: {names}"
        )
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = discover()
LATEST_VERSION: int = MIGRATIONS[-1].version
