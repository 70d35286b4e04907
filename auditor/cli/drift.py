"""`auditor drift`: Git at a commit against a cluster or snapshot, exit codes like `kubectl diff`.

The flags become a Config in the library (`Config.for_drift`), so this module only parses,
prints and exits.
"""

from __future__ import annotations

import click

from auditor.cli.options import console, finish, output_option, print_json
from auditor.gc_pause import gc_paused


@click.command()
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
def drift(
    repo: str | None,
    revision: str | None,
    paths: tuple[str, ...],
    snapshots: tuple[str, ...],
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    namespaces: tuple[str, ...],
    default_namespace: str | None,
    config_file: str | None,
    output: str,
) -> None:
    """Diff Git at a commit against the cluster. Exit 0 in sync, 1 drift, 2 error, 3 incomplete."""
    from auditor.config import Config
    from auditor.reports.documents import drift_document

    config = Config.for_drift(
        config_file=config_file,
        repo=repo,
        revision=revision,
        paths=paths,
        snapshots=snapshots,
        kubeconfig=kubeconfig,
        contexts=contexts,
        namespaces=namespaces,
        default_namespace=default_namespace,
    )
    from auditor.pipeline import check_drift  # the cluster client loads only for commands that read

    with gc_paused():  # to the end: the output is built from the run's objects (pipeline.py)
        result = check_drift(config, trigger="cli")
        if output == "json":
            print_json(drift_document(result))
        else:
            from auditor.reports.text import render_text

            render_text(result, console())
        finish(result.drift_exit_code())  # still paused: nothing is collected on the way out


__all__ = ["drift"]
