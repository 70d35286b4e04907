"""`auditor report --format junit`: JUnit XML for CI dashboards.

One `testsuite` per category; one `testcase` per policy x resource evaluation, per resource
for drift and provenance, and per stage error. Every finding's message is in a `failure`
(several findings on one resource are listed in its one failure); a policy that raised, or a
stage that could not finish, is an `error`. XML is built with ElementTree, which escapes
every value; characters XML 1.0 cannot carry at all (NUL, escapes) become U+FFFD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from auditor.model import Evaluation, ReportFinding, ResourceRef, RunReport

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _name(ref: ResourceRef | None) -> str:
    if ref is None:
        return "(no object)"
    return f"{ref.cluster}: {ref.display()}" if ref.cluster else ref.display()


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=_text(classname), name=_text(name), time="0")


def _fail(case: ET.Element, findings: list[ReportFinding]) -> None:
    worst = findings[0].finding
    failure = ET.SubElement(
        case,
        "failure",
        message=_text(worst.message or worst.check),
        type=_text(worst.check),
    )
    failure.text = _text(
        "\n".join(
            f"[{f.finding.severity}] {f.finding.check} {f.finding.path}: {f.finding.message}"
            for f in findings
        )
    )


def _by_resource(findings: Iterable[ReportFinding]) -> dict[tuple[str, ...], list[ReportFinding]]:
    groups: dict[tuple[str, ...], list[ReportFinding]] = {}
    for f in findings:
        ref = f.finding.ref
        groups.setdefault((ref.cluster, ref.kind, ref.namespace, ref.name), []).append(f)
    return groups


def _resource_suite(root: ET.Element, report: RunReport, category: str) -> ET.Element:
    """Drift and provenance: a testcase per resource the category judged, failing with its
    findings. Drift judged every resource of the run; provenance those it verified."""
    suite = ET.SubElement(root, "testsuite", name=category)
    found = _by_resource(f for f in report.findings if f.finding.category == category)
    refs: dict[tuple[str, ...], ResourceRef] = {
        key: items[0].finding.ref for key, items in found.items()
    }
    if category == "drift":
        records = (r.ref for r in report.resources if r.status != "live" and r.status != "desired")
    else:
        records = (a.ref for a in report.attestations if a.ref is not None)
    for ref in records:
        refs.setdefault((ref.cluster, ref.kind, ref.namespace, ref.name), ref)
    for key in sorted(refs):
        case = _case(suite, f"{category}.{refs[key].kind or 'object'}", _name(refs[key]))
        if key in found:
            _fail(case, found[key])
    return suite


def _evaluation_case(
    suite: ET.Element, evaluation: Evaluation, findings: list[ReportFinding]
) -> None:
    """A failed evaluation fails with its findings (a warn too: every finding is a failure,
    whatever its severity, as for drift); one that raised is an error."""
    case = _case(suite, evaluation.policy, _name(evaluation.ref))
    if evaluation.result == "error":
        error = ET.SubElement(case, "error", message=_text(evaluation.error or "policy error"))
        error.text = _text(evaluation.error or "")
    elif findings:
        _fail(case, findings)
    elif evaluation.result in ("fail", "warn"):
        failure = ET.SubElement(
            case,
            "failure",
            message=_text(evaluation.messages[0].msg if evaluation.messages else ""),
            type=_text(evaluation.policy),
        )
        failure.text = _text("\n".join(f"[{m.rule}] {m.msg}" for m in evaluation.messages))


def _policy_suite(root: ET.Element, report: RunReport) -> None:
    suite = ET.SubElement(root, "testsuite", name="policy")
    of: dict[tuple[str, str], list[ReportFinding]] = {}
    for item in report.findings:
        if item.finding.category == "policy":
            of.setdefault((item.finding.check, _name(item.finding.ref)), []).append(item)
    for evaluation in sorted(report.evaluations, key=lambda e: (e.policy, _name(e.ref))):
        _evaluation_case(suite, evaluation, of.get((evaluation.policy, _name(evaluation.ref)), []))
    # a policy finding no evaluation of this run carries (a store written by hand) still shows
    covered = {(e.policy, _name(e.ref)) for e in report.evaluations}
    for _key, items in sorted(
        _by_resource(
            f
            for f in report.findings
            if f.finding.category == "policy"
            and (f.finding.check, _name(f.finding.ref)) not in covered
        ).items()
    ):
        _fail(_case(suite, items[0].finding.check, _name(items[0].finding.ref)), items)


def _error_suite(root: ET.Element, report: RunReport) -> None:
    suite = ET.SubElement(root, "testsuite", name="error")
    for item in (f for f in report.findings if f.finding.category == "error"):
        f = item.finding
        case = _case(suite, f.check, _name(f.ref))
        error = ET.SubElement(case, "error", message=_text(f.message), type=_text(f.check))
        error.text = _text(f.message)
    for stage_error in report.errors:
        case = _case(
            suite, f"stage.{stage_error.stage}", stage_error.target or stage_error.cluster or "run"
        )
        error = ET.SubElement(case, "error", message=_text(stage_error.message), type="incomplete")
        error.text = _text(stage_error.message)


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", "0")
    suite.set("time", "0")


def junit_document(report: RunReport) -> str:
    run = report.run
    root = ET.Element("testsuites", name=_text(f"auditor run {run.id}"))
    _resource_suite(root, report, "drift")
    _resource_suite(root, report, "provenance")
    _policy_suite(root, report)
    _error_suite(root, report)
    for suite in root.findall("testsuite"):
        suite.set("timestamp", run.started.strftime("%Y-%m-%dT%H:%M:%S"))
        _count(suite)
    for attribute in ("tests", "failures", "errors"):
        root.set(attribute, str(sum(int(s.get(attribute, "0")) for s in root.findall("testsuite"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
