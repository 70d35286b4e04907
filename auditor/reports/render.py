"""Every report format of a stored run, by name and by file suffix (DESIGN "Reports and
history"). `render(report, fmt)` is the one entry point; `intoto` is `render_evidence`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from auditor.errors import ConfigError
from auditor.model import RunReport
from auditor.reports.junit import junit_document
from auditor.reports.policyreport import policyreport_document
from auditor.reports.runjson import report_document
from auditor.reports.sarif import sarif_document


def _json(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


# The Jinja2 environment of the human formats and the signing code of the evidence load with
# the format that needs them: a machine format is written without them.
def _md(report: RunReport) -> str:
    from auditor.reports.human import render_md

    return render_md(report)


def _html(report: RunReport) -> str:
    from auditor.reports.human import render_html

    return render_html(report)


RENDERERS: dict[str, Callable[[RunReport], str]] = {
    "md": _md,
    "html": _html,
    "json": lambda report: _json(report_document(report)),
    "sarif": lambda report: _json(sarif_document(report)),
    "junit": junit_document,
    "policyreport": policyreport_document,
}
FORMATS = (*RENDERERS, "intoto")
# The file each rendered report is named by in the evidence, and written as by --reports-dir.
REPORT_FILES = {
    "md": "report.md",
    "html": "report.html",
    "json": "report.json",
    "sarif": "report.sarif",
    "junit": "report.junit.xml",
    "policyreport": "report.policyreport.yaml",
}
# Longest suffix first: `x.sarif.json` is SARIF, `x.json` the JSON report.
SUFFIXES: tuple[tuple[str, str], ...] = (
    (".sarif.json", "sarif"),
    (".junit.xml", "junit"),
    (".policyreport.yaml", "policyreport"),
    (".policyreport.yml", "policyreport"),
    (".sarif", "sarif"),
    (".json", "json"),
    (".md", "md"),
    (".markdown", "md"),
    (".html", "html"),
    (".htm", "html"),
    (".xml", "junit"),
    (".yaml", "policyreport"),
    (".yml", "policyreport"),
)


def format_for_path(path: str) -> str:
    """The format a report file's name asks for; ConfigError (exit 2) for a suffix that names
    none, rather than a file of another format under a misleading name."""
    lowered = path.lower()
    for suffix, fmt in SUFFIXES:
        if lowered.endswith(suffix):
            return fmt
    known = ", ".join(suffix for suffix, _ in SUFFIXES)
    raise ConfigError(
        f"cannot tell the report format from the file name: use one of {known}",
        file=path,
        hint="signed evidence (intoto) is written by `auditor report --format intoto --sign-key KEY`",
    )


def render(report: RunReport, fmt: str) -> str:
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ConfigError(
            f"unknown report format {fmt!r}: one of {', '.join(RENDERERS)}"
            + (" (intoto needs --sign-key)" if fmt == "intoto" else ""),
            key="--format",
        ) from None
    return renderer(report)


@dataclass(frozen=True, slots=True)
class Evidence:
    envelope: str  # the DSSE envelope, JSON
    reports: dict[str, bytes]  # the reports whose digests it signed, by file name


def render_evidence(report: RunReport, key_pem: bytes, *, key_file: str) -> Evidence:
    """The run's evidence signed with the PEM private key, and the reports it names."""
    from auditor.reports.evidence import sign_statement, statement

    reports = {
        REPORT_FILES[fmt]: renderer(report).encode("utf-8") for fmt, renderer in RENDERERS.items()
    }
    envelope = sign_statement(statement(report, reports), key_pem, key_file=key_file)
    return Evidence(_json(envelope), reports)
