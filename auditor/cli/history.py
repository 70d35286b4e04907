"""`auditor findings`, `auditor runs`, `auditor history`, `auditor prune`: the store's history
for people (text) and scripts (`-o json`, one object on stdout)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

import click

from auditor.cli.decisions import DATE_FORMATS, decision_filters, show_decisions
from auditor.cli.options import output_option, print_json
from auditor.cli.stored import open_store, store_option
from auditor.defaults import SEVERITIES
from auditor.errors import ConfigError
from auditor.gc_pause import gc_paused

if TYPE_CHECKING:
    from auditor.model import ReportFinding
    from auditor.store import FindingLine, KnownFilters

CATEGORIES = ("drift", "provenance", "policy", "error")


def _day(moment: datetime | None) -> str:
    return _minute(moment, moment.tzinfo, moment.fold) if moment else "-"


@lru_cache(maxsize=4096)
def _minute(moment: datetime, zone: tzinfo | None, fold: int) -> str:
    # Cached: `auditor findings` writes the same few run times for thousands of findings.
    # Keyed with the zone and fold too: equal instants can read differently.
    return moment.strftime("%Y-%m-%d %H:%M")


def _line(item: FindingLine) -> str:
    status = item.status
    state = (
        f"open since {_day(item.open_since)}"
        if status == "open"
        else f"resolved {_day(item.resolved_at)}"
    )
    where = f"{item.cluster}: " if item.cluster else ""
    # ResourceRef.display()
    shown = f"{item.namespace}/{item.name}" if item.namespace else item.name
    return (
        f"{item.severity:<8} {status:<8} {item.check}  {where}{item.kind} {shown} {item.path}\n"
        f"         {item.message}\n"
        f"         first seen {_day(item.first_seen)}, {item.runs_seen} runs, {state};"
        f" {item.fingerprint}"
    )


def _line_of(item: ReportFinding) -> FindingLine:
    from auditor.store import FindingLine

    f, h, ref = item.finding, item.history, item.finding.ref
    return FindingLine(
        f.severity, f.check, ref.cluster, ref.kind, ref.namespace, ref.name, f.path, f.message,
        f.fingerprint, h.first_seen, h.runs_seen, h.open_since, h.resolved_at,
    )  # fmt: skip


def _refuse(given: dict[str, object], why: str, hint: str | None = None) -> None:
    """A usage error for the first option given that does not apply."""
    for option, value in given.items():
        if value:
            raise ConfigError(f"{option} {why}", key=option, hint=hint)


@click.command()
@store_option
@click.option("--open", "open_only", is_flag=True, help="only findings still open")
@click.option("--severity", type=click.Choice(SEVERITIES), help="only this severity")
@click.option("--category", type=click.Choice(CATEGORIES), help="only this category")
@click.option(
    "--since",
    type=click.DateTime(DATE_FORMATS),
    help="only findings first seen (decisions made) at or after this date (UTC)",
)
@click.option(
    "--admission",
    is_flag=True,
    help="the admission webhook's decisions instead of the audits' findings",
)
@click.option("--check", help="only findings of checks or policies matching this glob")
@click.option("--cluster", help="only findings on objects of this cluster")
@decision_filters
@output_option
def findings(
    store_path: str,
    open_only: bool,
    severity: str | None,
    category: str | None,
    since: datetime | None,
    admission: bool,
    check: str | None,
    cluster: str | None,
    results: tuple[str, ...],
    namespace: str | None,
    limit: int | None,
    output: str,
) -> None:
    """Every finding the store knows, once each as last seen, with its history; with
    --admission, the webhook's decisions, newest first (--result, --namespace, --limit)."""
    if admission:
        _refuse(
            {
                "--open": open_only,
                "--severity": severity,
                "--category": category,
                "--check": check,
                "--cluster": cluster,
            },
            "filters findings, not admission decisions",
            hint="with --admission: --result, --namespace, --since, --limit",
        )
        show_decisions(
            store_path,
            output=output,
            results=results,
            namespace=namespace,
            since=since,
            limit=limit,
        )
        return
    _refuse(
        {"--result": results, "--limit": limit},
        "filters admission decisions: add --admission",
    )
    filters: KnownFilters = {
        "open_only": open_only,
        "severity": severity,
        "category": category,
        "since": since.replace(tzinfo=UTC) if since else None,
        "check": check,
        "cluster": cluster,
        "namespace": namespace,
    }
    # Only what is shown is read: a line's values for text, JSON made by SQLite for a pipe.
    # A person at a terminal gets the JSON indented, from the model values.
    with open_store(store_path) as store, gc_paused():
        if output == "json" and sys.stdout.isatty():
            print_json({"findings": [item.to_json() for item in store.known_findings(**filters)]})
            return
        if output == "json":
            texts = store.known_findings_json(**filters)
            sys.stdout.write('{"findings": [' + ", ".join(texts) + "]}\n")
            return
        lines = store.known_finding_lines(**filters)
    if lines:  # one write: click.echo per line costs as much as building the line
        with gc_paused():
            click.echo("\n".join(map(_line, lines)))
    click.echo(f"{len(lines)} findings", err=True)


@click.command()
@store_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@output_option
def runs(store_path: str, limit: int, output: str) -> None:
    """The runs in the store, newest first (unfinished ones included)."""
    from auditor.reports.runjson import run_json
    from auditor.store.values import run_of

    with open_store(store_path) as store:
        rows = store.runs(limit)
    values = [(run_of(row), row.get("exit_code")) for row in rows]
    if output == "json":
        print_json({"runs": [run_json(run, code) for run, code in values]})
        return
    for run, code in values:
        clusters = ",".join(c.name for c in run.clusters) or "-"
        findings_count = run.counts.get("findings", "-")
        finished = "never finished" if run.finished is None and run.status != "running" else ""
        click.echo(
            f"{run.id}  {run.status:<11} {run.trigger:<5} {_day(run.started)}  "
            f"{clusters}  findings {findings_count}  exit {code if code is not None else '-'}"
            + (f"  {finished}" if finished else "")
        )


@click.command()
@store_option
@click.argument("fingerprint")
@output_option
def history(store_path: str, fingerprint: str, output: str) -> None:
    """One finding across runs: first and last seen, open since or resolved at, and every
    run over its cluster since it appeared, with whether it had it."""
    with open_store(store_path) as store:
        found = store.sightings(fingerprint)
    if found is None:
        raise ConfigError(
            f"no finding with fingerprint {fingerprint!r} in the store",
            file=store_path,
            hint="`auditor findings --store FILE` lists them with their fingerprints",
        )
    item, timeline = found
    if output == "json":
        print_json(
            {
                "finding": item.to_json(),
                "runs": [sighting.to_json() for sighting in timeline],
            }
        )
        return
    click.echo(_line(_line_of(item)))
    for sighting in timeline:
        mark = "seen" if sighting.seen else "absent"
        click.echo(
            f"  {sighting.run.id}  {_day(sighting.run.started)}  {sighting.run.status:<10} {mark}"
        )


@click.command()
@store_option
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    required=True,
    help="keep runs started this many days back",
)
@click.option("--vacuum", is_flag=True, help="give the freed space back to the file system")
@output_option
def prune(store_path: str, keep_days: int, vacuum: bool, output: str) -> None:
    """Delete runs older than --keep-days with all their rows. Findings still open keep their
    history (first seen, open since, runs seen)."""
    from auditor.model import iso

    with open_store(store_path) as store:
        result = store.prune(keep_days, vacuum=vacuum)
    if output == "json":
        print_json(result.to_json())
        return
    sys.stdout.write(
        f"deleted {result.runs} runs started before {iso(result.cutoff)}; "
        f"forgot {result.forgotten} findings resolved before then\n"
    )


__all__ = ["findings", "history", "prune", "runs"]
