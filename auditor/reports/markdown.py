"""A Markdown report of one run, for people (the `--report` file of `auditor audit`)."""

from __future__ import annotations

import json
from typing import Any

from auditor.model import SEVERITIES, AuditResult


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
            where = " ".join(x for x in (error.cluster, error.target) if x)
            lines.append(f"- {where}: {_cell(error.message)}" if where else f"- {error.message}")
    if result.notes:
        lines += ["", "## Notes: what these findings cannot say", ""]
        lines += ["- " + note.replace("\n", " ") for note in result.notes]
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
