"""Reports for people: Markdown and one self-contained HTML file, from Jinja2 templates in the
top-level `reports/` folder (shipped as `auditor.shipped.reports`).

Every value comes from Git or the cluster and is hostile until escaped: HTML templates are
autoescaped, Markdown values go through `md` (entities for `<>&`, backslashes for the
Markdown punctuation, control characters and line breaks flattened). The HTML page carries a
Content-Security-Policy that allows only its own inline script and style, by hash: even a
value that escaped escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from auditor.model import SEVERITIES, ReportFinding, RunReport, StoredDecision
from auditor.reports.escaping import as_text, markdown_text, printable, truncated
from auditor.reports.summary import Summary, TrendPoint, by_severity, summarize
from auditor.shipped import shipped_path

MAX_VALUE = 300


def flat(value: Any, limit: int = 0) -> str:
    """A value as one line of text (HTML autoescapes it): strings as they are, anything else
    as JSON, control and invisible characters shown as visible escapes (`escaping.printable`)."""
    if value is None:
        return ""
    text = printable(as_text(value))
    return truncated(text, limit) if limit else text


def md(value: Any, limit: int = 0) -> str:
    """A value safe in Markdown text and table cells: shown, never interpreted, one line."""
    if value is None:
        return ""
    return markdown_text(value, limit=limit or None)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


@cache
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(shipped_path("reports"))),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update({"md": md, "flat": flat, "when": when, "percent": percent})
    return env


def _resource(finding: ReportFinding) -> str:
    ref = finding.finding.ref
    return f"{ref.cluster}: {ref.display()}" if ref.cluster else ref.display()


def _changed_by(finding: ReportFinding) -> str:
    who = finding.finding.changed_by
    if who is None:
        return ""
    return " ".join(x for x in (who.manager, who.operation, who.time or "") if x)


def _decided(decision: StoredDecision) -> str:
    """The object a decision judged, with its cluster when it has one."""
    return f"{decision.cluster}: {decision.display()}" if decision.cluster else decision.display()


def _reasons(decision: StoredDecision) -> str:
    return "; ".join(f"{r.check}: {r.message}" for r in decision.reasons)


def _context(report: RunReport) -> dict[str, Any]:
    summary = summarize(report)
    return {
        "report": report,
        "run": report.run,
        "summary": summary,
        "severities": SEVERITIES,
        "new": by_severity(report.new),
        "still_open": by_severity(report.still_open),
        "resolved": by_severity(report.resolved),
        "findings": by_severity(report.findings),
        "resource": _resource,
        "changed_by": _changed_by,
        "decided": _decided,
        "reasons": _reasons,
        "clusters": ", ".join(c.name for c in report.run.clusters),
        "max_value": MAX_VALUE,
    }


def render_md(report: RunReport) -> str:
    return _environment(False).get_template("report.md.j2").render(_context(report))


@dataclass(frozen=True, slots=True)
class Bar:
    """One run of the trend chart: stacked rectangles per severity, bottom up."""

    x: int
    point: TrendPoint
    segments: tuple[tuple[str, int, int], ...]  # severity, y, height


CHART_HEIGHT = 120
BAR_WIDTH = 18
BAR_GAP = 6


def trend_bars(summary: Summary) -> list[Bar]:
    peak = max((p.total for p in summary.trend), default=0) or 1
    bars = []
    for index, point in enumerate(summary.trend):
        y = CHART_HEIGHT
        segments = []
        for severity in reversed(SEVERITIES):
            count = point.by_severity.get(severity, 0)
            if not count:
                continue
            height = max(1, round(count / peak * (CHART_HEIGHT - 10)))
            y -= height
            segments.append((severity, y, height))
        bars.append(Bar(index * (BAR_WIDTH + BAR_GAP), point, tuple(segments)))
    return bars


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(report: RunReport) -> str:
    env = _environment(True)
    folder = shipped_path("reports")
    style = (folder / "report.css").read_text(encoding="utf-8")
    script = (folder / "report.js").read_text(encoding="utf-8")
    context = _context(report)
    bars = trend_bars(context["summary"])
    context.update(
        {
            "style": Markup(style),
            "script": Markup(script),
            "csp": (
                f"default-src 'none'; style-src {_csp_hash(style)}; "
                f"script-src {_csp_hash(script)}; img-src data:; base-uri 'none'; "
                "form-action 'none'"
            ),
            "bars": bars,
            "chart_width": max(len(bars) * (BAR_WIDTH + BAR_GAP), BAR_WIDTH),
            "chart_height": CHART_HEIGHT,
            "bar_width": BAR_WIDTH,
        }
    )
    return env.get_template("report.html.j2").render(context)
