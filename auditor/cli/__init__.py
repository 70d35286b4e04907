"""`auditor`: the click group, its global options, and the entry point that turns every error
into a diagnosis and an exit code (DESIGN "Exit codes").

One module per command group sits beside this one; each only parses options, calls the
library, prints, and picks the exit code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import traceback
from typing import NoReturn

import click

from auditor import __version__
from auditor.cli.options import VERBOSITY, Process
from auditor.errors import AuditorError, no_room
from auditor.exit_codes import ExitCode

# `\b` keeps click from rewrapping the table into one paragraph.
HELP_EPILOG = f"""\b
Exit codes:
  {ExitCode.CLEAN:>3d}  clean: in sync, verified, every policy passed
  {ExitCode.FINDINGS:>3d}  drift (drift), findings at or above --fail-on (audit), a failed
       policy or test, a rejected model (verify)
  {ExitCode.USAGE:>3d}  usage, config or input error: the message names the file, key and line
  {ExitCode.INCOMPLETE:>3d}  incomplete: a stage could not finish (a cluster or OPA server
       unreachable, a kind forbidden, a policy that errored); never reported as clean
  {ExitCode.INTERNAL:>3d}  internal error: a bug in auditor, never bad input
  {ExitCode.INTERRUPTED:>3d}  interrupted (Ctrl-C); {ExitCode.TERMINATED:d} on SIGTERM: the run is stored
       as interrupted
"""


# Each command and the module that defines it. A command's module is imported when it runs
# (or when --help lists it): `auditor drift` runs in a fresh process for every check, and the
# other commands' imports were a tenth of its start-up. verify imports model-signing only
# inside its commands, so listing it costs nothing either.
COMMANDS: dict[str, str] = {
    "admission": "auditor.cli.admission",
    "audit": "auditor.cli.audit",
    "deploy": "auditor.cli.deploy",
    "doctor": "auditor.cli.doctor",
    "drift": "auditor.cli.drift",
    "findings": "auditor.cli.history",
    "history": "auditor.cli.history",
    "policy": "auditor.cli.policy",
    "prune": "auditor.cli.history",
    "report": "auditor.cli.report",
    "runs": "auditor.cli.history",
    "store": "auditor.cli.store",
    "verify": "auditor.cli.verify",
}


class Commands(click.Group):
    """The `auditor` group: its commands loaded by name from `COMMANDS` when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = getattr(importlib.import_module(COMMANDS[cmd_name]), cmd_name)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(
    cls=Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=HELP_EPILOG
)
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", count=True, help="more logging on stderr (-vv for debug)")
@click.option("-q", "--quiet", is_flag=True, help="errors only on stderr: no progress, no warnings")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Policy and drift audit for GitOps-managed ML serving on Kubernetes.

    Logs go to stderr: plain lines on a terminal, JSON lines otherwise (AUDITOR_LOG_FORMAT=text
    or json decides instead)."""
    from auditor.observe.logs import setup_logging

    verbosity = -1 if quiet else verbose
    ctx.meta[VERBOSITY] = verbosity
    setup_logging(verbosity)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so it unwinds like Ctrl-C: temporary folders
    removed, the run stored as `interrupted`, workers stopped."""

    exit_code = ExitCode.TERMINATED

    def __str__(self) -> str:
        return "SIGTERM"


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes print a diagnosis and exit 2, never a traceback.

    Called without `argv`, it is the process's entry point, and a command may end the process
    itself once its output is written (`options.finish`)."""
    Process.owned = argv is None
    if Process.owned and sys.stderr is None:
        _stderr_to_devnull()
    if Process.owned and _stdout_closed():
        _refuse_closed_stdout()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        # without standalone mode, click returns what `ctx.exit(n)` asked for (--help and
        # --version included) instead of exiting: that is the exit code
        code = cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns Ctrl-C into Abort; 130 is what shells report for SIGINT, 143 for SIGTERM.
        click.echo("auditor: interrupted", err=True)
        signalled = exc if isinstance(exc, Terminated) else exc.__cause__
        sys.exit(getattr(signalled, "exit_code", ExitCode.INTERRUPTED))
    except AuditorError as exc:
        click.echo(f"auditor: error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if not no_room(exc):
            _internal_error(exc)
        # The machine, not auditor: a full or failing disk under the output (`> file`), a
        # report or a temporary folder. Said like the store's "database or disk is full".
        click.echo(f"auditor: error: {exc.filename or _OUTPUTS}: {exc.strerror}", err=True)
        if Process.owned:
            # stdout still holds what could not be written: the interpreter's last flush must
            # not fail again with a trace
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitCode.USAGE)
    except Exception as exc:  # a bug, not a user mistake: say so, keep the trace opt-in
        _internal_error(exc)
    sys.exit(code if isinstance(code, int) else ExitCode.CLEAN)


_OUTPUTS = "writing the output (stdout), a report or a temporary file"


def _stdout_closed() -> bool:
    """Whether the process was started with no stdout (`>&-`): Python then has no
    `sys.stdout` at all."""
    if sys.stdout is None:
        return True
    try:
        os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return True
    return False


def _stderr_to_devnull() -> None:
    """Started with no stderr (`2>&-`): diagnostics are discarded, as asked, but descriptor 2
    is given to /dev/null before anything is opened. Left free, the first file opened (the
    store, a report) would take its number, and whatever writes to stderr (Git, kubectl, the
    policy engine dying) would write into that file."""
    null = os.open(os.devnull, os.O_WRONLY)
    if null != 2:  # descriptors below 2 were closed too: stdout's is checked next
        os.dup2(null, 2)
        os.close(null)
    sys.stderr = open(  # noqa: SIM115 (the process's stderr, never closed)
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
    )


def _refuse_closed_stdout() -> NoReturn:
    """Refuses to start, before anything is opened: with descriptor 1 closed, the first file
    opened (the store, a report) would take its number, and a Git or kubectl child process
    writing to its stdout would write into that file."""
    click.echo(
        "auditor: error: stdout is closed (started with >&-): the command's output could not "
        "be written; send it to a file or to /dev/null instead",
        err=True,
    )
    sys.exit(ExitCode.USAGE)


def _internal_error(exc: Exception) -> NoReturn:
    """A bug, not a user mistake: says so, keeps the trace opt-in."""
    click.echo(f"auditor: internal error: {type(exc).__name__}: {exc}", err=True)
    if os.environ.get("AUDITOR_DEBUG"):
        traceback.print_exception(exc)
    else:
        click.echo("  set AUDITOR_DEBUG=1 for the traceback, and please report it", err=True)
    sys.exit(ExitCode.INTERNAL)


__all__ = ["cli", "main"]
