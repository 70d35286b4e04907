"""The human-readable diff: grouped by resource, with class, who changed it and when."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from auditor.model import AuditResult, Finding

SEVERITY_STYLE = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
CHECK_MARK = {
    "drift.changed": ("~", "yellow"),
    "drift.removed": ("-", "red"),
    "drift.missing": ("-", "red"),
    "drift.unmanaged": ("+", "green"),
    "drift.added": ("+", "yellow"),
}
MAX_VALUE_CHARS = 160


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def _line(finding: Finding) -> str:
    mark, style = CHECK_MARK.get(finding.check, ("!", "magenta"))
    severity = finding.severity
    head = (
        f"  [{style}]{mark}[/] [{SEVERITY_STYLE[severity]}]{severity:<8}[/] "
        f"[bold]{escape(finding.drift_class or finding.category):<8}[/] "
    )
    if finding.check == "drift.missing":
        body = "in Git, not in the cluster"
    elif finding.check == "drift.unmanaged":
        body = "live, not in Git (unmanaged)"
    elif finding.check == "drift.removed":
        body = f"{escape(finding.path)}: removed from Git, still live: {escape(_value(finding.actual))}"
    elif finding.check == "drift.added":
        body = f"{escape(finding.path)}: not in Git, added live: {escape(_value(finding.actual))}"
    elif finding.category == "drift":
        body = (
            f"{escape(finding.path)}: [green]{escape(_value(finding.expected))}[/] in Git, "
            f"[red]{escape(_value(finding.actual))}[/] live"
        )
    else:
        body = escape(finding.message)
    if finding.changed_by:
        who = finding.changed_by
        when = f" at {who.time}" if who.time else ""
        body += f" [dim](changed by {escape(who.manager)} {escape(who.operation)}{when})[/]"
    return head + body


def render_text(result: AuditResult, console: Console) -> None:
    run = result.run
    commit = run.git_commit[:12] if run.git_commit else "?"
    clusters = ", ".join(c.name for c in run.clusters) or "-"
    console.print(
        f"[bold]auditor[/] {escape(run.git_repo)} @ {commit} ({escape(run.git_revision)}) "
        f"vs {escape(clusters)}",
        highlight=False,
    )
    by_resource: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_resource[(finding.ref.cluster, finding.ref.display())].append(finding)
    for (cluster, display), findings in by_resource.items():
        where = f" [dim]({escape(cluster)})[/]" if len(run.clusters) > 1 else ""
        console.print(f"\n[bold]{escape(display)}[/]{where}", highlight=False)
        for finding in findings:
            console.print(_line(finding), highlight=False, soft_wrap=True)
    for error in result.errors:
        target = f" {error.target}" if error.target else ""
        console.print(
            f"\n[bold red]incomplete[/] {escape(error.cluster)}{escape(target)}: "
            f"{escape(error.message)}",
            highlight=False,
        )
    s = result.summary
    console.print(
        f"\n{s.resources} resources: {s.in_sync} in sync, {s.drifted} drifted, "
        f"{s.missing} missing, {s.unmanaged} unmanaged; {len(result.findings)} findings"
        + (f"; [bold red]run incomplete ({len(result.errors)} errors)[/]" if result.errors else ""),
        highlight=False,
    )
