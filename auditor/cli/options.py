"""What every command group shares: the `-o text|json` option, one JSON object on stdout, and
the console text goes to."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:  # rich loads only for text output (40 ms)
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])
VERBOSITY = "auditor.verbosity"  # click context meta: -q is -1, -v 1, -vv 2


class Process:
    """Whether the command running is all this process does: set by `main` when it is the
    process's entry point (the console script, `python -m auditor`), and not when a program or
    a test calls it and goes on afterwards."""

    owned = False


def finish(code: int) -> NoReturn:
    """Ends the command with exit code `code`. When the command is the whole process, the
    process ends here, its output flushed, without freeing what the command built: the
    objects of a large run take long to free (0.25 s of `auditor drift` at 10,000 resources,
    after its output is written), and nothing would use them again."""
    if Process.owned:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


def verbosity() -> int:
    """The -v/-q of the `auditor` group, for commands that show progress."""
    return int(click.get_current_context().meta.get(VERBOSITY, 0))


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people, json (one object on stdout) for scripts",
    )(func)


def print_json(document: Any) -> None:
    """One JSON object on stdout; logs and diagnostics go to stderr.

    Indented for a person at a terminal; one line for a pipe or a file, where scripts read
    it: json's C encoder only writes without indentation, and the pure-Python one it falls
    back to takes seconds on a large audit (3.2 s for 50,000 resources).
    """
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(document, indent=indent, default=str))
    sys.stdout.write("\n")


def console() -> Console:
    from rich.console import Console

    # rich colours only on a terminal; NO_COLOR and pipes get plain text.
    return Console(highlight=False, soft_wrap=True)
