"""A Markdown report of one run, for people (the `--report` file of `auditor audit`)."""

from __future__ import annotations

import json
from typing import Any

from auditor.audit import AuditResult
from auditor.model import SEVERITIES


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 120 else text[:119] + "…"


def render_markdown(result: AuditResult, *, fail_on: str) -> str:
    run = result.run
    s = result.summary
    lines = [
        f"# auditor report: run {run.id or '(not stored)'}",
        "",
        f"- status: **{run.status}**",
        f"- Git: `{run.git_repo}` at `{run.git_commit}` ({run.git_revision})",
        f"- clusters: {', '.join(c.name for c in run.clusters) or '-'}",
        f"- started: {run.started.isoformat()}",
        f"- exit code: {result.audit_exit_code(fail_on)} (fail on {fail_on} and above)",
        "",
        "## Summary",
        "",
        "| resources | in sync | drifted | missing | unmanaged |",
        "| --- | --- | --- | --- | --- |",
        f"| {s.resources} | {s.in_sync} | {s.drifted} | {s.missing} | {s.unmanaged} |",
        "",
        "| severity | findings |",
        "| --- | --- |",
    ]
    for severity in SEVERITIES:
        count = sum(1 for f in result.findings if f.severity == severity)
        lines.append(f"| {severity} | {count} |")
    if result.errors:
        lines += ["", "## Incomplete: what could not be checked", ""]
        for error in result.errors:
            where = " ".join(x for x in (error.cluster, error.target) if x)
            lines.append(f"- {where}: {_cell(error.message)}" if where else f"- {error.message}")
    lines += ["", "## Findings", ""]
    if not result.findings:
        lines.append("No findings.")
    else:
        lines += [
            "| severity | check | class | resource | path | Git | live | changed by |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        order = {name: i for i, name in enumerate(SEVERITIES)}
        for f in sorted(result.findings, key=lambda f: order[f.severity]):
            who = ""
            if f.changed_by:
                who = f"{f.changed_by.manager} {f.changed_by.operation} {f.changed_by.time or ''}"
            lines.append(
                f"| {f.severity} | {f.check} | {f.drift_class or ''} | "
                f"{_cell(f.ref.display())} | `{_cell(f.path)}` | {_cell(f.expected)} | "
                f"{_cell(f.actual)} | {_cell(who.strip())} |"
            )
    return "\n".join(lines) + "\n"
