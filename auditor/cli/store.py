"""`auditor store merge`: shard stores of fleet runs merged into one store."""

from __future__ import annotations

import sys

import click

from auditor.cli.options import output_option, print_json


@click.group()
def store() -> None:
    """Work on store files as a whole."""


@store.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.argument("stores", nargs=-1, required=True, type=click.Path(dir_okay=False))
@output_option
def merge(out: str, stores: tuple[str, ...], output: str) -> None:
    """Merge the shard stores of fleet runs (`auditor audit --shard I/N --run-id ID`) into
    OUT, one run per run id, and the admission decisions of the stores given (the webhook
    replicas' own stores) that OUT lacks. Merging again changes nothing.

    Exit 0 clean, 1 findings at the shards' --fail-on, 3 incomplete (a shard missing,
    unfinished, failed or incomplete), 2 bad input: the worst over the runs merged.
    """
    from auditor.store.merge import merge_stores

    merged = merge_stores(out, stores)
    if output == "json":
        print_json(
            {
                "store": out,
                "runs": [
                    {
                        "id": o.run_id,
                        "status": o.status,
                        "exit_code": o.exit_code,
                        "merged": o.merged,
                        "shards": list(o.shards),
                        "of": o.count,
                    }
                    for o in merged.runs
                ],
                "decisions_added": merged.decisions,
            }
        )
    else:
        for o in merged.runs:
            done = "merged" if o.merged else "already merged, unchanged"
            shown = ", ".join(str(i) for i in o.shards)
            click.echo(f"run {o.run_id}: {o.status}, shards {shown} of {o.count} ({done})")
        click.echo(f"admission decisions: {merged.decisions} added")
    sys.exit(max((o.exit_code for o in merged.runs), default=0))


__all__ = ["store"]
