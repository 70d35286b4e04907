"""The human-readable diff: grouped by resource, with class, who changed it and when."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape

from auditor.model import AuditResult, Finding
from auditor.reports.escaping import printable, truncated

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
    return _shown(truncated(text, MAX_VALUE_CHARS))


def _shown(text: str) -> str:
    """Text from Git, the cluster or a policy, shown as it is: rich markup in it is printed,
    not applied, and control characters (a terminal escape sequence, a newline that would
    forge a line of the report) appear as visible escapes."""
    return escape(printable(text))


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
        body = f"{_shown(finding.path)}: removed from Git, still live: {_value(finding.actual)}"
    elif finding.check == "drift.added":
        body = f"{_shown(finding.path)}: not in Git, added live: {_value(finding.actual)}"
    elif finding.category == "drift":
        body = (
            f"{_shown(finding.path)}: [green]{_value(finding.expected)}[/] in Git, "
            f"[red]{_value(finding.actual)}[/] live"
        )
    else:
        body = _shown(finding.message)
    if finding.changed_by:
        who = finding.changed_by
        when = f" at {who.time}" if who.time else ""
        body += f" [dim](changed by {_shown(who.manager)} {_shown(who.operation)}{_shown(when)})[/]"
    return head + body


def render_text(result: AuditResult, console: Console) -> None:
    run = result.run
    commit = run.git_commit[:12] if run.git_commit else "?"
    clusters = ", ".join(c.name for c in run.clusters) or "-"
    console.print(
        f"[bold]auditor[/] {_shown(run.git_repo)} @ {commit} ({_shown(run.git_revision)}) "
        f"vs {_shown(clusters)}",
        highlight=False,
    )
    by_resource: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_resource[(finding.ref.cluster, finding.ref.display())].append(finding)
    # One print for all of it: rich's cost is mostly per print, and an audit of 10,000
    # resources has 12,000 lines (two seconds a line at a time). Every line closes the styles
    # it opens, so together they render as they would one by one.
    lines: list[str] = []
    for (cluster, display), findings in by_resource.items():
        where = f" [dim]({_shown(cluster)})[/]" if len(run.clusters) > 1 else ""
        lines.append(f"\n[bold]{_shown(display)}[/]{where}")
        lines.extend(_line(finding) for finding in findings)
    if lines:
        console.print("\n".join(lines), highlight=False, soft_wrap=True)
    for error in result.errors:
        target = f" {error.target}" if error.target else ""
        console.print(
            f"\n[bold red]incomplete[/] {_shown(error.cluster)}{_shown(target)}: "
            f"{_shown(error.message)}",
            highlight=False,
        )
    s = result.summary
    console.print(
        f"\n{s.resources} resources: {s.in_sync} in sync, {s.drifted} drifted, "
        f"{s.missing} missing, {s.unmanaged} unmanaged; {len(result.findings)} findings"
        + (f"; [bold red]run incomplete ({len(result.errors)} errors)[/]" if result.errors else ""),
        highlight=False,
    )
