"""What the commands that read the store share: `--store FILE`, opened only if it exists
(reading never creates an empty store where a path was mistyped)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from auditor.errors import ConfigError

if TYPE_CHECKING:
    from auditor.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def store_option(func: F) -> F:
    return click.option(
        "--store",
        "store_path",
        required=True,
        type=click.Path(dir_okay=False),
        help="the SQLite store auditor audit recorded runs in",
    )(func)


@contextmanager
def open_store(path: str) -> Iterator[Store]:
    """The store at `path`, closed after use; a damaged file is said to be one (exit 2),
    naming it, whenever reading it finds the damage."""
    from auditor.store import Store
    from auditor.store.schema import raise_store_failure

    if not Path(path).is_file():
        raise ConfigError(
            "no store at this path", file=path, hint="auditor audit --store FILE writes one"
        )
    with Store.open(path) as store:
        try:
            yield store
        except sqlite3.Error as exc:
            raise_store_failure(exc, path)
