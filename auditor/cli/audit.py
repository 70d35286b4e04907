"""`auditor audit`: the full audit, recorded in the store, with an optional report file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from auditor.cli.options import console, finish, output_option, print_json, verbosity
from auditor.defaults import SEVERITIES
from auditor.gc_pause import gc_paused

if TYPE_CHECKING:
    from auditor.model import AuditResult


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(), help="auditor.yaml")
@click.option("--store", "store_path", type=click.Path(), help="SQLite store [config: store]")
@click.option("--fail-on", type=click.Choice(SEVERITIES), help="exit 1 at this severity [high]")
@click.option(
    "--report",
    "report_path",
    type=click.Path(),
    help="write a report, its format from the suffix: .md .html .json .sarif .junit.xml "
    ".policyreport.yaml (rendered from the stored run when there is a store)",
)
@click.option(
    "--trigger",
    type=click.Choice(["cli", "cron"]),
    default="cli",
    show_default=True,
    help="what started the run, as the store records it (the CronJob passes cron)",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="audit only the clusters whose stable hash falls in shard I of N (0-based, as an "
    "Indexed Job's JOB_COMPLETION_INDEX), into this shard's store; see auditor store merge",
)
@click.option(
    "--run-id",
    help="the run's id; every shard of one fleet run passes the same (e.g. the Job's name)",
)
@click.option(
    "--pin-commit",
    type=click.Path(dir_okay=False),
    help="a file every shard of a fleet run sees: the first shard writes the commit "
    "git.revision names there, and every shard audits that commit (deploy/fleet passes one)",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=256),
    help="clusters read at once [config: concurrency, 4]",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="write the run's metrics here, for node-exporter's textfile collector (*.prom)",
)
@click.option(
    "--pushgateway",
    metavar="URL",
    help="push the run's metrics to this Prometheus Pushgateway (job auditor)",
)
@output_option
def audit(
    config_file: str,
    store_path: str | None,
    fail_on: str | None,
    report_path: str | None,
    trigger: Literal["cli", "cron"],
    shard: str | None,
    run_id: str | None,
    pin_commit: str | None,
    concurrency: int | None,
    metrics_file: str | None,
    pushgateway: str | None,
    output: str,
) -> None:
    """Run a full audit and record it. Exit 0 clean, 1 findings, 2 error, 3 incomplete."""
    from auditor.config import load_config

    config = load_config(config_file)
    threshold = fail_on or config.fail_on
    report = report_path or config.report
    if report:
        # the renderers and their templates load only for a report (a tenth of a second)
        from auditor.reports.files import check_report_path

        check_report_path(report)
    from auditor.observe.run import MetricsTargets, watched_run
    from auditor.pipeline import Fleet, run_audit  # the cluster client loads only when reading
    from auditor.shards import check_run_id, parse_shard

    fleet = Fleet(
        shard=parse_shard(shard) if shard else None,
        concurrency=concurrency,
        pin=Path(pin_commit) if pin_commit else None,
    )
    targets = MetricsTargets(file=metrics_file, pushgateway=pushgateway)
    # the GC paused to the end: the output is built from the run's objects (pipeline.py)
    with gc_paused(), watched_run(targets, verbosity()) as watched:
        result = run_audit(
            config,
            store_path=store_path,
            trigger=trigger,
            run_id=check_run_id(run_id) if run_id else None,
            fleet=fleet,
            progress=watched.progress,
            fail_on=threshold,
        )
        watched.finish(result, result.audit_exit_code(threshold))
        if report:
            _write_report(result, report, store_path or config.store, threshold)
        if output == "json":
            from auditor.reports.documents import audit_document

            print_json(audit_document(result, fail_on=threshold))
        else:
            from auditor.reports.text import render_text

            render_text(result, console())
            if result.run.id:
                from auditor.observe.progress import announce_run

                announce_run(result.run.id, result.run.status)
    # the store is closed and the metrics exported by now: the run's objects are not freed
    # one by one on the way out (options.finish)
    finish(result.audit_exit_code(threshold))


def _write_report(result: AuditResult, path: str, store: str | None, fail_on: str) -> None:
    """The report of the stored run (with its history) when there is a store, else of the
    run in memory."""
    from auditor.reports.files import write_report
    from auditor.reports.inmemory import report_of_result
    from auditor.store import Store

    report = None
    if store:
        with Store.open(store) as opened:
            report = opened.report(result.run.id)
    if report is None:
        report = report_of_result(result, exit_code=result.audit_exit_code(fail_on))
    write_report(report, path)


__all__ = ["audit"]
