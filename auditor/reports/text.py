"""The human-readable diff: grouped by resource, with class, who changed it and when."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

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
    return printable(truncated(json.dumps(value, sort_keys=True, default=str), MAX_VALUE_CHARS))


def _shown(text: str) -> str:
    """Markup for text from Git, the cluster or a policy, shown as it is: rich markup in it is
    printed, not applied, and control characters (a terminal escape sequence, a newline that
    would forge a line of the report) appear as visible escapes."""
    return escape(printable(text))


# A line of the report as (text, style) pieces: a rich Text made of them is neither parsed
# for markup nor escaped first, which was half of the time of printing an audit's 12,000
# lines. What the pieces hold comes through `printable` (and `_value`), so it cannot move or
# recolour the terminal's text.
Piece = tuple[str, str]


def _line(finding: Finding) -> list[Piece]:
    mark, style = CHECK_MARK.get(finding.check, ("!", "magenta"))
    severity = finding.severity
    pieces: list[Piece] = [
        ("  ", ""),
        (mark, style),
        (" ", ""),
        (f"{severity:<8}", SEVERITY_STYLE[severity]),
        (" ", ""),
        (f"{printable(finding.drift_class or finding.category):<8}", "bold"),
        (" ", ""),
    ]
    if finding.check == "drift.missing":
        pieces.append(("in Git, not in the cluster", ""))
    elif finding.check == "drift.unmanaged":
        pieces.append(("live, not in Git (unmanaged)", ""))
    elif finding.check == "drift.removed":
        text = f"{printable(finding.path)}: removed from Git, still live: {_value(finding.actual)}"
        pieces.append((text, ""))
    elif finding.check == "drift.added":
        text = f"{printable(finding.path)}: not in Git, added live: {_value(finding.actual)}"
        pieces.append((text, ""))
    elif finding.category == "drift":
        pieces += [
            (f"{printable(finding.path)}: ", ""),
            (_value(finding.expected), "green"),
            (" in Git, ", ""),
            (_value(finding.actual), "red"),
            (" live", ""),
        ]
    else:
        pieces.append((printable(finding.message), ""))
    if finding.changed_by:
        who = finding.changed_by
        when = f" at {who.time}" if who.time else ""
        changed = (
            f"(changed by {printable(who.manager)} {printable(who.operation)}{printable(when)})"
        )
        pieces += [(" ", ""), (changed, "dim")]
    return pieces


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
    # resources has 12,000 lines (two seconds a line at a time).
    lines = Text()
    for (cluster, display), findings in by_resource.items():
        lines.append("\n")
        lines.append(printable(display), "bold")
        if len(run.clusters) > 1:
            lines.append(" ")
            lines.append(f"({printable(cluster)})", "dim")
        lines.append("\n")
        for finding in findings:
            for text, style in _line(finding):
                lines.append(text, style or None)
            lines.append("\n")
    if lines and console.color_system is None:
        # no colours (a pipe, a file, NO_COLOR): what rich would write is the plain text
        console.file.write(lines.plain)
    elif lines:
        console.print(lines, highlight=False, soft_wrap=True, end="")
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
