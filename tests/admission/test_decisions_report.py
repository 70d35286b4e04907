"""The webhook's decisions where people look at a store: `auditor findings --admission` and
the "Admission decisions" section of `auditor report` (md, html, json), over the decisions
made between the previous run and the reported one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from auditor.model import AdmissionDecision, AdmissionRequest, DecisionReason
from auditor.reports.render import render
from auditor.store import Store
from tests.conftest import run_main
from tests.reports.builders import HOSTILE_TEXT, ThreeRuns, record_runs
from tests.store.factories import T0

COMMIT = "c0ffee" + "0" * 34
R3_FINISHED = T0 + timedelta(minutes=120, seconds=42)
R4_FINISHED = T0 + timedelta(minutes=180, seconds=42)


def decision(
    uid: str,
    result: str,
    at: datetime,
    *,
    namespace: str = "ml",
    cluster: str = "prod-eu",
    reasons: tuple[DecisionReason, ...] = (),
    dry_run: bool = False,
    commit: str = COMMIT,
) -> AdmissionDecision:
    request = AdmissionRequest(
        uid=uid, group="apps", version="v1", kind="Deployment", namespace=namespace,
        name=f"svc-{uid}", operation="CREATE", user_info={"username": "alice@example.com"},
        dry_run=dry_run,
    )  # fmt: skip
    return AdmissionDecision(
        request,
        result,
        reasons,
        commit=commit,
        cluster=cluster,
        time=at,
        latency_ms=2.0,  # type: ignore[arg-type]
    )


UNSIGNED = DecisionReason("provenance.unsigned", "no signature by release-key")
HOSTILE = DecisionReason("auditor.serving.service_account", HOSTILE_TEXT)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ThreeRuns:
    """Four runs (r4 the latest, r3 before it) and decisions around r4's window."""
    runs = record_runs(tmp_path_factory.mktemp("decisions") / "audit.db")
    between = R3_FINISHED + timedelta(minutes=5)
    with Store.open(runs.path) as opened:
        opened.record_decisions(
            [
                decision("before", "deny", R3_FINISHED, reasons=(UNSIGNED,)),  # r3's window
                decision("a1", "allow", between),
                decision("a2", "allow", between + timedelta(seconds=1), commit="b" * 40),
                decision("d1", "deny", between + timedelta(seconds=2), reasons=(UNSIGNED,)),
                decision("d2", "deny", between + timedelta(seconds=3), reasons=(HOSTILE,), dry_run=True),
                decision("e1", "error", between + timedelta(seconds=4),
                         reasons=(DecisionReason("admission.error", "time budget: denied (fail closed)"),)),
                decision("f1", "fail_open", between + timedelta(seconds=5), namespace="sandbox"),
                decision("s1", "skip", between + timedelta(seconds=6), cluster=""),
                decision("other", "deny", between, cluster="us-east", reasons=(UNSIGNED,)),
                decision("after", "deny", R4_FINISHED + timedelta(seconds=1), reasons=(UNSIGNED,)),
            ]
        )  # fmt: skip
    return runs


def report_of(runs: ThreeRuns, run_id: str = "latest"):  # type: ignore[no-untyped-def]
    with Store.open(runs.path) as opened:
        report = opened.report(run_id)
    assert report is not None
    return report


def test_report_counts_the_decisions_since_the_previous_run_on_its_clusters(
    store: ThreeRuns,
) -> None:
    summary = report_of(store).admission
    assert summary is not None
    assert (summary.since, summary.until) == (R3_FINISHED, R4_FINISHED)
    # "before" ended r3's window, "after" falls in the next, "other" is another cluster's;
    # s1 carries no cluster name and is counted
    assert dict(summary.counts) == {"allow": 2, "deny": 2, "skip": 1, "error": 1, "fail_open": 1}
    assert dict(summary.commits) == {COMMIT: 6, "b" * 40: 1}
    assert summary.denials_total == 3
    assert [d.name for d in summary.denials] == ["svc-e1", "svc-d2", "svc-d1"]
    assert summary.denials[1].dry_run and summary.denials[1].reasons == (HOSTILE,)


def test_each_decision_falls_in_one_runs_report(store: ThreeRuns) -> None:
    earlier = report_of(store, "r3").admission
    assert earlier is not None
    assert dict(earlier.counts)["deny"] == 1
    assert [d.name for d in earlier.denials] == ["svc-before"]


def test_markdown_report_shows_counts_and_denials_with_reason_and_commit(store: ThreeRuns) -> None:
    text = render(report_of(store), "md")
    section = text.split("## Admission decisions", 1)[1].split("\n## ", 1)[0]
    assert "| deny | 2 |" in section and "| fail open | 1 |" in section
    assert "7 decisions by the admission webhook since the previous run ended" in section
    assert "Latest denials (3 of 3)" in section
    row = next(line for line in section.splitlines() if "svc-d1" in line)
    assert "provenance.unsigned: no signature by release-key" in row
    assert COMMIT[:12] in row and "prod-eu: Deployment ml/svc-d1" in row
    dry = next(line for line in section.splitlines() if "svc-d2" in line)
    assert "CREATE (dry run)" in dry
    assert "<script>" not in section  # a hostile reason is shown, never interpreted


def test_html_report_shows_the_section_escaped(store: ThreeRuns) -> None:
    page = render(report_of(store), "html")
    assert 'id="admission-denials"' in page and "svc-e1" in page
    assert "admission.error: time budget: denied (fail closed)" in page
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;" in page


def test_json_report_carries_the_summary(store: ThreeRuns) -> None:
    document = json.loads(render(report_of(store), "json"))
    admission = document["admission"]
    assert admission["total"] == 7 and admission["counts"]["error"] == 1
    assert admission["latest_denials"][0]["resource"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ml", "name": "svc-e1",
    }  # fmt: skip
    assert admission["latest_denials"][2]["commit"] == COMMIT
    assert admission["since"].startswith(R3_FINISHED.isoformat()[:19])


def test_a_store_without_decisions_has_no_section(tmp_path: Path) -> None:
    runs = record_runs(tmp_path / "audit.db")
    report = report_of(runs)
    assert report.admission is None
    assert "Admission decisions" not in render(report, "md")
    assert "admission-window" not in render(report, "html")
    assert json.loads(render(report, "json"))["admission"] is None


def test_findings_admission_filters_by_result_namespace_and_since(
    store: ThreeRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(store.path)
    shown = run_main(
        capsys, "findings", "--store", path, "--admission", "--result", "deny",
        "--result", "error", "--namespace", "m*", "--since", "2026-11-23T19:00:00", "-o", "json",
    )  # fmt: skip
    assert shown.code == 0, shown.err
    uids = [d["uid"] for d in json.loads(shown.out)["decisions"]]
    assert uids == ["after", "e1", "d2", "d1", "other"]
    text = run_main(capsys, "findings", "--store", path, "--admission", "--namespace", "sandbox")
    assert text.code == 0, text.err
    assert "FAIL_OPEN" in text.out and "Deployment sandbox/svc-f1" in text.out
    assert "svc-d1" not in text.out and "1 decisions" in text.err
    denied = run_main(capsys, "findings", "--store", path, "--admission", "--result", "deny")
    assert "provenance.unsigned: no signature by release-key" in denied.out
    assert f"@ {COMMIT[:12]}" in denied.out and "(dry run)" in denied.out


def test_findings_refuses_options_of_the_other_kind(
    store: ThreeRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(store.path)
    mixed = run_main(capsys, "findings", "--store", path, "--admission", "--severity", "high")
    assert mixed.code == 2 and "--severity filters findings, not admission decisions" in mixed.err
    lone = run_main(capsys, "findings", "--store", path, "--result", "deny")
    assert lone.code == 2 and "--result filters admission decisions: add --admission" in lone.err
    plain = run_main(capsys, "findings", "--store", path, "-o", "json")
    assert plain.code == 0 and "findings" in json.loads(plain.out)
