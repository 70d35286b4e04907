"""What every command group shares: the `-o text|json` option, one JSON object on stdout, and
the console text goes to."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])
VERBOSITY = "auditor.verbosity"  # click context meta: -q is -1, -v 1, -vv 2


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
    """One JSON object on stdout; logs and diagnostics go to stderr."""
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def console() -> Console:
    # rich colours only on a terminal; NO_COLOR and pipes get plain text.
    return Console(highlight=False, soft_wrap=True)
