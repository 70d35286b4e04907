"""`auditor policy eval` and `auditor policy test`: Rego policies (and Gatekeeper templates)
outside an audit; the library is auditor.policy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from auditor.cli.options import output_option, print_json
from auditor.defaults import DEFAULT_POLICY_TIMEOUT_SECONDS

F = TypeVar("F", bound=Callable[..., Any])


def timeout_option(help: str) -> Callable[[F], F]:
    """`--timeout SECONDS`: the time budget of one engine call, as `policy.timeout_seconds`."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_POLICY_TIMEOUT_SECONDS,
        show_default=True,
        metavar="SECONDS",
        help=help,
    )


@click.group()
def policy() -> None:
    """Evaluate and test Rego policies (and Gatekeeper templates)."""


@policy.command("eval")
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    required=True,
    type=click.Path(),
    help="a .rego file or a directory of policies (repeatable)",
)
@click.option(
    "--data", "data_files", multiple=True, type=click.Path(), help="JSON/YAML data merged at data"
)
@click.option(
    "--inventory",
    "inventory_files",
    multiple=True,
    type=click.Path(),
    help="objects for Gatekeeper's data.inventory (repeatable)",
)
@click.option(
    "--vm/--no-vm",
    default=False,
    help="evaluate on regorus's compiled VM, its interpreter checking a sample and answering "
    "what the VM cannot (policy.vm in the config; docs/rvm.md); default: the interpreter",
)
@timeout_option("time budget of one evaluation; an overrun is an error evaluation (exit 3)")
@click.argument("resource_files", nargs=-1, required=True, type=click.Path())
@output_option
def policy_eval(
    policy_paths: tuple[str, ...],
    data_files: tuple[str, ...],
    inventory_files: tuple[str, ...],
    vm: bool,
    timeout: float,
    resource_files: tuple[str, ...],
    output: str,
) -> None:
    """Evaluate policies over objects in files. Exit 0 pass, 1 fail, 2 error, 3 eval error."""
    # Imported here: the policy library and its Rego interpreter take ~0.1 s to import, which
    # commands that evaluate no policy need not pay.
    from auditor.policy.evaluate import evaluate_files, format_outcome, outcome_document

    outcome = evaluate_files(
        policy_paths,
        resource_files,
        data_files=data_files,
        inventory_files=inventory_files,
        timeout=timeout,
        vm=vm,
    )
    if output == "json":
        print_json(outcome_document(outcome))
    else:
        click.echo(format_outcome(outcome), nl=False)
    sys.exit(outcome.exit_code())


@policy.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-v", "--verbose", is_flag=True, help="list every test, not only failures")
@timeout_option("time budget of one test; an overrun is stopped and reported as an error (exit 1)")
def policy_test(paths: tuple[str, ...], verbose: bool, timeout: float) -> None:
    """Run the test_* rules under PATHS like `opa test`. Exit 0 all pass, 1 any fail or error,
    2 no tests or a broken module."""
    from auditor.policy.testing import format_report, run_policy_tests

    report = run_policy_tests(paths, timeout=timeout)
    click.echo(format_report(report, verbose=verbose), nl=False)
    sys.exit(report.exit_code())


__all__ = ["policy"]
