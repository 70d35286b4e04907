"""What `auditor admission decisions` and `auditor findings --admission` share: the filters
over the webhook's stored decisions, and how a decision is printed (text or `-o json`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from auditor.cli.options import print_json
from auditor.cli.stored import open_store
from auditor.defaults import DECISION_RESULTS

F = TypeVar("F", bound=Callable[..., Any])
DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"]
DEFAULT_LIMIT = 50


def decision_filters(func: F) -> F:
    """--result (repeatable), --namespace (a glob) and --limit; --since is each command's."""
    func = click.option(
        "--limit",
        type=click.IntRange(min=1),
        help=f"at most this many decisions, newest first [default: {DEFAULT_LIMIT}]",
    )(func)
    func = click.option(
        "--namespace", "namespace", help="only objects in these namespaces (a glob)"
    )(func)
    return click.option(
        "--result",
        "results",
        type=click.Choice(DECISION_RESULTS),
        multiple=True,
        help="only decisions with this result (repeatable)",
    )(func)


def decision_line(row: Mapping[str, Any]) -> str:
    """One decision for people: when, result, operation, object; each reason below it."""
    where = f"{row['namespace']}/{row['name']}" if row["namespace"] else row["name"]
    dry_run = " (dry run)" if row.get("dry_run") else ""
    head = (
        f"{row['time']} {str(row['result']).upper():9} {row['operation']:6} {row['kind']} {where}"
        f"{dry_run}"
    )
    if row.get("commit_sha"):
        head += f"  @ {str(row['commit_sha'])[:12]}"
    reasons = row["reasons"] if isinstance(row["reasons"], list) else []
    return "\n".join([head] + [f"    {r['check']}: {r['message']}" for r in reasons])


def show_decisions(
    store_path: str,
    *,
    output: str,
    denied_only: bool = False,
    results: Sequence[str] = (),
    namespace: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> None:
    """The webhook's decisions from the store, newest first: `{"decisions": [...]}` with
    `-o json`, one line each (and their reasons) otherwise, the count on stderr."""
    with open_store(store_path) as store:
        rows = store.decisions(
            denied_only=denied_only,
            results=results,
            namespace=namespace,
            since=since.replace(tzinfo=UTC) if since else None,
            limit=limit or DEFAULT_LIMIT,
        )
    if output == "json":
        print_json({"decisions": rows})
        return
    for row in rows:
        click.echo(decision_line(row))
    click.echo(f"{len(rows)} decisions", err=True)


__all__ = ["DATE_FORMATS", "decision_filters", "decision_line", "show_decisions"]
