"""Each report format checked by its schema or a standard reader, on a stored run whose values
are hostile: SARIF against the OASIS SARIF 2.1.0 schema, PolicyReports against the
wg-policy v1alpha2 CRDs' OpenAPI schema, JUnit with junitparser, the evidence statement
against the in-toto Statement v1 schema, Markdown escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

from auditor.model import RunReport
from auditor.reports.render import format_for_path, render
from auditor.store import Store
from tests.conftest import PROJECT
from tests.reports.builders import (
    HOSTILE,
    HOSTILE_NAME,
    MODEL,
    POLICY,
    POLICY_INFO,
    REPLICAS,
    ThreeRuns,
)

SCHEMAS = Path(__file__).parent / "schemas"


def crd_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((SCHEMAS / name).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2")
    return version["schema"]["openAPIV3Schema"]


def report_of(runs: ThreeRuns, run_id: str) -> RunReport:
    with Store.open(runs.path) as store:
        report = store.report(run_id)
    assert report is not None
    return report


# -- SARIF ----------------------------------------------------------------------------------


def test_sarif_is_valid_against_the_oasis_sarif_2_1_0_schema(latest: RunReport) -> None:
    document = json.loads(render(latest, "sarif"))
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    assert document["version"] == "2.1.0"


def test_sarif_rules_come_from_the_registry_and_policy_metadata(latest: RunReport) -> None:
    [run] = json.loads(render(latest, "sarif"))["runs"]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["drift.changed"]["shortDescription"]["text"] == "Live field differs from Git"
    policy = rules[POLICY_INFO.id]
    assert policy["shortDescription"]["text"] == POLICY_INFO.title
    assert POLICY_INFO.description in policy["fullDescription"]["text"]
    assert policy["defaultConfiguration"]["level"] == "warning"  # medium
    assert "CIS-K8s-5.1.5" in policy["properties"]["tags"]
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_results_are_located_at_the_git_file_and_line_and_carry_the_fingerprint(
    latest: RunReport,
) -> None:
    [run] = json.loads(render(latest, "sarif"))["runs"]
    by_print = {r["partialFingerprints"]["auditorFingerprint/v1"]: r for r in run["results"]}
    hostile = by_print[HOSTILE.fingerprint]
    physical = hostile["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "apps/evil.yaml"
    assert physical["region"]["startLine"] == 12
    assert hostile["level"] == "error" and hostile["message"]["text"] == HOSTILE.message
    assert hostile["locations"][0]["logicalLocations"][0]["name"] == HOSTILE_NAME
    assert {r["baselineState"] for r in run["results"]} == {"new", "unchanged"}
    assert run["invocations"][0]["executionSuccessful"] is True


def test_sarif_of_an_incomplete_run_says_the_execution_did_not_succeed(runs: ThreeRuns) -> None:
    [run] = json.loads(render(report_of(runs, "r3"), "sarif"))["runs"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert "forbidden" in invocation["toolExecutionNotifications"][0]["message"]["text"]


# -- PolicyReport -----------------------------------------------------------------------------

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def test_policy_reports_are_valid_against_the_wg_policy_crd_schemas(latest: RunReport) -> None:
    documents = list(yaml.safe_load_all(render(latest, "policyreport")))
    schemas = {
        "PolicyReport": crd_schema("wgpolicyk8s.io_policyreports.yaml"),
        "ClusterPolicyReport": crd_schema("wgpolicyk8s.io_clusterpolicyreports.yaml"),
    }
    assert {d["kind"] for d in documents} == {"PolicyReport"}
    for document in documents:
        jsonschema.Draft4Validator(schemas[document["kind"]]).validate(document)
        assert document["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
        assert DNS_SUBDOMAIN.match(document["metadata"]["name"])  # kubectl apply would refuse
        counts = document["summary"]
        assert sum(counts.values()) == len(document["results"])  # the summary adds up
        for key in ("pass", "fail", "warn", "error"):
            assert counts[key] == sum(1 for r in document["results"] if r["result"] == key)


def test_a_policy_report_gives_values_that_are_not_text_as_json(runs: ThreeRuns) -> None:
    # replicas 2 in Git, 5 live: a property is a string, and a YAML dump of 2 is "2\n..."
    documents = yaml.safe_load_all(render(report_of(runs, "r2"), "policyreport"))
    results = [r for d in documents for r in d["results"]]
    replicas = next(
        r for r in results if r.get("properties", {}).get("fingerprint") == REPLICAS.fingerprint
    )
    assert (replicas["properties"]["expected"], replicas["properties"]["actual"]) == ("2", "5")


def test_policy_reports_hold_passes_policy_failures_and_drift_findings(latest: RunReport) -> None:
    [document] = yaml.safe_load_all(render(latest, "policyreport"))
    results = document["results"]
    assert document["metadata"]["namespace"] == "ml"
    policy = [r for r in results if r["policy"] == POLICY_INFO.id]
    assert sorted(r["result"] for r in policy) == ["fail", "pass", "pass"]
    failed = next(r for r in policy if r["result"] == "fail")
    assert failed["severity"] == "medium" and failed["source"] == "auditor"
    assert failed["resources"] == [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": "fraud-scorer",
            "namespace": "ml",
        }
    ]
    drift = next(
        r for r in results if r.get("properties", {}).get("fingerprint") == HOSTILE.fingerprint
    )
    assert (drift["result"], drift["category"], drift["message"]) == (
        "fail",
        "drift",
        HOSTILE.message,
    )


def test_an_incomplete_run_reports_its_errors_in_a_cluster_policy_report(runs: ThreeRuns) -> None:
    documents = list(yaml.safe_load_all(render(report_of(runs, "r3"), "policyreport")))
    cluster = next(d for d in documents if d["kind"] == "ClusterPolicyReport")
    jsonschema.Draft4Validator(crd_schema("wgpolicyk8s.io_clusterpolicyreports.yaml")).validate(
        cluster
    )
    assert [r["result"] for r in cluster["results"]] == ["error"]
    assert cluster["summary"]["error"] == 1


# -- JUnit ----------------------------------------------------------------------------------


def test_junit_reads_with_junitparser_one_suite_per_category(
    latest: RunReport, tmp_path: Path
) -> None:
    path = tmp_path / "report.junit.xml"
    path.write_text(render(latest, "junit"))
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"drift", "provenance", "policy", "error"}
    policy_cases = list(suites["policy"])
    assert len(policy_cases) == len(latest.evaluations) == 3
    failures = {
        case.name: result
        for suite in xml
        for case in suite
        for result in case.result
        if isinstance(result, Failure)
    }
    assert sum(s.failures for s in xml) == len(failures)
    # every finding's message is in a failure
    texts = "\n".join(f"{r.message}\n{r.text}" for r in failures.values())
    for item in latest.findings:
        # XML 1.0 cannot carry NUL or ESC at all: they arrive as U+FFFD
        assert re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", item.finding.message) in texts
    assert suites["drift"].tests == 4  # every resource the run compared


def test_junit_of_an_incomplete_run_has_an_error_per_stage_that_could_not_finish(
    runs: ThreeRuns, tmp_path: Path
) -> None:
    path = tmp_path / "r3.xml"
    path.write_text(render(report_of(runs, "r3"), "junit"))
    [error_suite] = [s for s in JUnitXml.fromfile(str(path)) if s.name == "error"]
    [case] = list(error_suite)
    assert isinstance(case.result[0], Error) and "forbidden" in case.result[0].message


# -- JSON, Markdown -------------------------------------------------------------------------


def test_json_report_has_the_run_findings_evaluations_attestations_and_errors(
    latest: RunReport,
) -> None:
    document = json.loads(render(latest, "json"))
    assert {"run", "findings", "evaluations", "attestations", "errors"} <= set(document)
    assert document["run"]["id"] == "r4" and document["previous_run"] == "r2"
    policy = next(f for f in document["findings"] if f["fingerprint"] == POLICY.fingerprint)
    assert (
        policy["new"] is True
        and policy["status"] == "open"
        and policy["controls"] == ["CIS-K8s-5.1.5"]
    )
    assert {f["fingerprint"] for f in document["resolved_since_previous"]} >= {MODEL.fingerprint}
    assert document["summary"]["policy"]["pass_rate"] == pytest.approx(2 / 3)
    assert document["attestations"][0]["authority"] == "release-key"


def test_markdown_escapes_every_hostile_value(latest: RunReport) -> None:
    text = render(latest, "md")
    assert "<script>" not in text and "<img" not in text and "</td>" not in text
    assert "&lt;script&gt;" in text
    assert "[click](javascript" not in text and "\\[click\\]" in text
    assert "**bold**" not in text and "\x1b" not in text and "\x00" not in text
    table_rows = [line for line in text.splitlines() if line.startswith("| high | drift.changed")]
    # an escaped `|` never adds a table cell
    assert table_rows and all(len(re.findall(r"(?<!\\)\|", row)) == 12 for row in table_rows)
    assert "fraud-scorer" in text and "runs as the default service account" in text


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_human_formats_say_an_incomplete_run_is_incomplete_and_what_was_not_checked(
    runs: ThreeRuns, fmt: str
) -> None:
    text = render(report_of(runs, "r3"), fmt)
    assert "Incomplete run: not everything was checked" in text
    assert "forbidden" in text and "may not have been checked" in text
    complete = render(report_of(runs, "r4"), fmt)
    assert "Incomplete run" not in complete


# -- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("out/report.md", "md"),
        ("r.HTML", "html"),
        ("r.json", "json"),
        ("r.sarif", "sarif"),
        ("r.sarif.json", "sarif"),
        ("r.junit.xml", "junit"),
        ("r.xml", "junit"),
        ("reports.policyreport.yaml", "policyreport"),
        ("r.yaml", "policyreport"),
    ],
)
def test_the_report_format_comes_from_the_file_name(name: str, fmt: str) -> None:
    assert format_for_path(name) == fmt


def test_the_shipped_templates_are_where_the_package_data_puts_them() -> None:
    for name in ("report.md.j2", "report.html.j2", "report.css", "report.js"):
        assert (PROJECT / "reports" / name).is_file()
