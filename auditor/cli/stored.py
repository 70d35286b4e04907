"""What the commands that read the store share: `--store FILE`, opened only if it exists
(reading never creates an empty store where a path was mistyped)."""

from __future__ import annotations

from collections.abc import Callable
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


def open_store(path: str) -> Store:
    from auditor.store import Store

    if not Path(path).is_file():
        raise ConfigError(
            "no store at this path", file=path, hint="auditor audit --store FILE writes one"
        )
    return Store.open(path)
