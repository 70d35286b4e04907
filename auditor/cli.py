"""click commands only: parse options, call the library, print, pick the exit code."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from auditor import __version__
from auditor.cli_common import output_option, print_json
from auditor.config import ClusterSource, Config, GitSource, ScopeSettings, is_url, load_config
from auditor.errors import AuditorError, ConfigError
from auditor.model import SEVERITIES

F = TypeVar("F", bound=Callable[..., Any])
EXIT_INTERNAL = 4


def _console() -> Console:
    # rich colours only on a terminal; NO_COLOR and pipes get plain text.
    return Console(highlight=False, soft_wrap=True)


def _write_atomically(path: str, text: str) -> None:
    """A report file is either the old one or the whole new one, never half-written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", count=True, help="more logging on stderr (-vv for debug)")
def cli(verbose: int) -> None:
    """Policy and drift audit for GitOps-managed ML serving on Kubernetes."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="auditor: %(levelname)s: %(message)s"
    )


def _drift_config(
    *,
    config_file: str | None,
    repo: str | None,
    revision: str | None,
    paths: tuple[str, ...],
    snapshots: tuple[str, ...],
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    namespaces: tuple[str, ...],
    default_namespace: str | None,
) -> Config:
    """A Config from `auditor drift` flags, on top of --config when given."""
    base = load_config(config_file) if config_file else None
    if base is None and not repo:
        raise ConfigError(
            "--repo is required (or --config naming a file with git.repo)", key="--repo"
        )
    git = base.git if base else GitSource(repo="")
    if repo:
        git = GitSource(
            repo=repo if is_url(repo) else str(Path(repo).resolve()),
            revision=revision or "HEAD",
            paths=paths or (".",),
            cache_dir=git.cache_dir,
            default_namespace=git.default_namespace,
        )
    else:
        git = dataclasses.replace(git, revision=revision or git.revision, paths=paths or git.paths)
    if default_namespace:
        git = dataclasses.replace(git, default_namespace=default_namespace)
    if snapshots and (kubeconfig or contexts):
        raise ConfigError(
            "--live-snapshot cannot be combined with --kubeconfig or --context",
            key="--live-snapshot",
        )
    if snapshots:
        clusters: tuple[ClusterSource, ...] = (
            ClusterSource(name="snapshot", snapshots=tuple(str(Path(s)) for s in snapshots)),
        )
    elif kubeconfig or contexts or base is None:
        clusters = tuple(
            ClusterSource(name=ctx or "current", kubeconfig=kubeconfig, context=ctx)
            for ctx in (contexts or (None,))
        )
    else:
        clusters = base.clusters
    scope = base.scope if base else ScopeSettings()
    if namespaces:
        scope = dataclasses.replace(scope, namespaces=namespaces)
    if base is not None:
        return dataclasses.replace(base, git=git, clusters=clusters, scope=scope)
    return Config(path="", git=git, clusters=clusters, scope=scope)


@cli.command()
@click.option("--repo", help="Git repository: a local path or a URL")
@click.option("--revision", help="branch, tag or commit  [default: HEAD]")
@click.option("--path", "paths", multiple=True, help="directory in the repo (repeatable)")
@click.option(
    "--live-snapshot",
    "snapshots",
    multiple=True,
    type=click.Path(),
    help="`kubectl get -o json|yaml` output to compare instead of a cluster",
)
@click.option("--kubeconfig", type=click.Path(), help="kubeconfig file")
@click.option("--context", "contexts", multiple=True, help="kubeconfig context (repeatable)")
@click.option(
    "--namespace", "-n", "namespaces", multiple=True, help="limit to these namespaces (repeatable)"
)
@click.option("--default-namespace", help="namespace for Git objects without one [default]")
@click.option("--config", "config_file", type=click.Path(), help="auditor.yaml for ignore rules")
@output_option
def drift(output: str, **flags: Any) -> None:
    """Diff Git at a commit against the cluster. Exit 0 in sync, 1 drift, 2 error, 3 incomplete."""
    from auditor.reports.documents import drift_document
    from auditor.reports.text import render_text

    config = _drift_config(**flags)
    from auditor.pipeline import check_drift  # the cluster client loads only for commands that read

    result = check_drift(config, trigger="cli")
    if output == "json":
        print_json(drift_document(result))
    else:
        render_text(result, _console())
    sys.exit(result.drift_exit_code())


@cli.command()
@click.option("--config", "config_file", required=True, type=click.Path(), help="auditor.yaml")
@click.option("--store", "store_path", type=click.Path(), help="SQLite store [config: store]")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="exit 1 at this severity [high]")
@click.option(
    "--report",
    "report_path",
    type=click.Path(),
    help="write a report: .json for machines, anything else Markdown",
)
@output_option
def audit(
    config_file: str,
    store_path: str | None,
    fail_on: str | None,
    report_path: str | None,
    output: str,
) -> None:
    """Run a full audit and record it. Exit 0 clean, 1 findings, 2 error, 3 incomplete."""
    from auditor.reports.documents import audit_document
    from auditor.reports.markdown import render_markdown
    from auditor.reports.text import render_text

    config = load_config(config_file)
    threshold = fail_on or config.fail_on
    from auditor.pipeline import run_audit

    result = run_audit(config, store_path=store_path, trigger="cron")
    report = report_path or config.report
    if report:
        if report.endswith(".json"):
            text = json.dumps(audit_document(result, fail_on=threshold), indent=2, default=str)
        else:
            text = render_markdown(result, fail_on=threshold)
        _write_atomically(report, text)
    if output == "json":
        print_json(audit_document(result, fail_on=threshold))
    else:
        render_text(result, _console())
        if result.run.id:
            click.echo(f"run {result.run.id}: {result.run.status}", err=True)
    sys.exit(result.audit_exit_code(threshold))


# -- policy --------------------------------------------------------------------------------


@cli.group()
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
@click.argument("resource_files", nargs=-1, required=True, type=click.Path())
@output_option
def policy_eval(
    policy_paths: tuple[str, ...],
    data_files: tuple[str, ...],
    inventory_files: tuple[str, ...],
    resource_files: tuple[str, ...],
    output: str,
) -> None:
    """Evaluate policies over objects in files. Exit 0 pass, 1 fail, 2 error, 3 eval error."""
    from auditor.policy.evaluate import evaluate_files, format_outcome, outcome_document

    outcome = evaluate_files(
        policy_paths, resource_files, data_files=data_files, inventory_files=inventory_files
    )
    if output == "json":
        print_json(outcome_document(outcome))
    else:
        click.echo(format_outcome(outcome), nl=False)
    sys.exit(outcome.exit_code())


@policy.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-v", "--verbose", is_flag=True, help="list every test, not only failures")
def policy_test(paths: tuple[str, ...], verbose: bool) -> None:
    """Run the test_* rules under PATHS like `opa test`. Exit 0 all pass, 1 any fail."""
    from auditor.policy.testing import format_report, run_policy_tests

    report = run_policy_tests(paths)
    click.echo(format_report(report, verbose=verbose), nl=False)
    sys.exit(report.exit_code())


def _register_verify() -> None:
    # The verify group lives in its own module so model-signing is imported only when used.
    from auditor.cli_verify import verify

    cli.add_command(verify)


_register_verify()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes print a diagnosis and exit 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except AuditorError as exc:
        click.echo(f"auditor: error: {exc.diagnostics()}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug, not a user mistake: say so, keep the trace opt-in
        click.echo(f"auditor: internal error: {type(exc).__name__}: {exc}", err=True)
        if os.environ.get("AUDITOR_DEBUG"):
            traceback.print_exc()
        else:
            click.echo("  set AUDITOR_DEBUG=1 for the traceback, and please report it", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)


__all__ = ["cli", "main"]
