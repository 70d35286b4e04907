"""`auditor doctor`: checks that a config can run, and names every part that cannot."""

from __future__ import annotations

import sys

import click

from auditor.cli.options import console, output_option, print_json


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(), help="auditor.yaml")
@output_option
def doctor(config_file: str, output: str) -> None:
    """Check the config, Git at the revision, each cluster and each kind it must list (asked
    with SelfSubjectAccessReview), trust roots and keys, the store and the report.

    Exit 0 when every part works, 2 when the config cannot be loaded, 3 when a part is broken:
    every broken part is named."""
    from rich.markup import escape
    from rich.table import Table

    from auditor.doctor import diagnose

    diagnosis = diagnose(config_file)
    if output == "json":
        print_json(
            {
                "ok": not diagnosis.broken,
                "checks": [c.to_json() for c in diagnosis.checks],
            }
        )
    else:
        table = Table("part", "", "detail", box=None, pad_edge=False)
        for check in diagnosis.checks:
            mark = "[green]ok[/green]" if check.ok else "[red]BROKEN[/red]"
            table.add_row(escape(check.part), mark, escape(check.detail))
        console().print(table)
    if diagnosis.broken:
        names = "; ".join(c.part for c in diagnosis.broken)
        click.echo(f"auditor: doctor: {len(diagnosis.broken)} broken: {names}", err=True)
    sys.exit(diagnosis.exit_code)


__all__ = ["doctor"]
