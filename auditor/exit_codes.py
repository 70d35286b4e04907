"""The exit codes of every auditor command: one table that scripts, cron alerts and the CLI
share (DESIGN "Exit codes").

`auditor drift` follows `kubectl diff` (1 means drift); every other command uses 1 for
findings at or above `--fail-on`, or a verification that was rejected.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    CLEAN = 0
    """Nothing to report: in sync, verified, every policy passed."""
    FINDINGS = 1
    """Drift (`drift`), findings at or above `--fail-on` (`audit`), a rejected verification."""
    USAGE = 2
    """A user or input mistake: bad flags, config, manifests; the message names what."""
    INCOMPLETE = 3
    """A stage could not finish (cluster unreachable, a kind forbidden, OPA down): the run is
    stored as `incomplete` and says what is missing. Never reported as clean."""
    INTERNAL = 4
    """A bug in auditor, never bad input: the message says so and asks for a report."""
    INTERRUPTED = 130
    """Ctrl-C, as shells report SIGINT (128 + 2); the run is stored as `interrupted`."""
    TERMINATED = 143
    """SIGTERM (128 + 15), as Kubernetes stops a CronJob's pod; the run is `interrupted`."""


__all__ = ["ExitCode"]
