"""A Markdown report of one run, for people (the `--report` file of `auditor audit`)."""

from __future__ import annotations

from typing import Any

from auditor.model import SEVERITIES, AuditResult, Finding
from auditor.reports.escaping import markdown_text

MAX_CELL_CHARS = 120  # a value (Git, live) in the findings table
MAX_MESSAGE_CHARS = 1000  # a message is what a reader acts on: shown whole, within reason


def _cell(value: Any, limit: int = MAX_CELL_CHARS) -> str:
    """A value from Git, the cluster or a policy as literal text in a table cell."""
    return markdown_text(value, limit=limit)


def render_markdown(result: AuditResult, *, fail_on: str) -> str:
    run = result.run
    s = result.summary
    lines = [
        f"# auditor report: run {run.id or '(not stored)'}",
        "",
        f"- status: **{run.status}**",
        f"- Git: {_cell(run.git_repo)} at `{run.git_commit}` ({_cell(run.git_revision)})",
        f"- clusters: {', '.join(_cell(c.name) for c in run.clusters) or '-'}",
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
    if result.evaluations:
        lines += ["", "## Policies", "", _policy_headline(result), ""]
        lines += ["| policy | evaluated | passed | failed | warned | errors |"]
        lines += ["| --- | --- | --- | --- | --- | --- |"]
        for policy, c in policy_counts(result).items():
            lines.append(
                f"| {_cell(policy)} | {sum(c.values())} | {c['pass']} | {c['fail']} | "
                f"{c['warn']} | {c['error']} |"
            )
    if result.errors:
        lines += ["", "## Incomplete: what could not be checked", ""]
        for error in result.errors:
            # the stage leads every line, so a message can never start a Markdown block
            where = " ".join(_cell(x) for x in (error.stage, error.cluster, error.target) if x)
            lines.append(f"- {where}: {_cell(error.message, MAX_MESSAGE_CHARS)}")
    if result.notes:
        lines += ["", "## Notes: what these findings cannot say", ""]
        lines += ["- " + _cell(note, MAX_MESSAGE_CHARS) for note in result.notes]
    lines += ["", "## Findings", ""]
    if not result.findings:
        lines.append("No findings.")
    else:
        lines += [
            "| severity | check | class | resource | message | path | Git | live | changed by |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        order = {name: i for i, name in enumerate(SEVERITIES)}
        lines += [_finding_row(f) for f in sorted(result.findings, key=lambda f: order[f.severity])]
    return "\n".join(lines) + "\n"


def _finding_row(f: Finding) -> str:
    who = ""
    if f.changed_by:
        who = f"{f.changed_by.manager} {f.changed_by.operation} {f.changed_by.time or ''}"
    return (
        f"| {f.severity} | {_cell(f.check)} | {f.drift_class or ''} | {_cell(f.ref.display())} | "
        f"{_cell(f.message, MAX_MESSAGE_CHARS)} | {_cell(f.path)} | {_cell(f.expected)} | "
        f"{_cell(f.actual)} | {_cell(who.strip())} |"
    )


def policy_counts(result: AuditResult) -> dict[str, dict[str, int]]:
    """Per policy, how its evaluations came out (every policy x resource pair, pass included)."""
    counts: dict[str, dict[str, int]] = {}
    for ev in result.evaluations:
        per = counts.setdefault(ev.policy, {"pass": 0, "fail": 0, "warn": 0, "error": 0})
        per[ev.result] += 1
    return dict(sorted(counts.items()))


def _policy_headline(result: AuditResult) -> str:
    total = len(result.evaluations)
    passed = sum(1 for ev in result.evaluations if ev.result == "pass")
    return f"{passed} of {total} policy evaluations passed."
