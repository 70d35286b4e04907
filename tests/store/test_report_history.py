"""A report of a run shows its findings' history as it stood at the end of that run: runs
recorded later never change an older run's report."""

from __future__ import annotations

from datetime import datetime

from auditor.model import FindingHistory, RunReport
from auditor.reports.render import render
from auditor.store import Store
from tests.store.factories import make_finding, make_run

MODEL = make_finding("fraud-scorer")  # in runs 1 and 3: resolved by run 2, back in run 3
IMAGE = make_finding("churn", path="/spec/predictor/containers/0/image", severity="high")
REPLICAS = make_finding("ranker", path="/spec/replicas", severity="low")  # new in run 2


def _report(store: Store, run_id: str) -> RunReport:
    report = store.report(run_id)
    assert report is not None
    return report


def _rendered(store: Store, run_id: str) -> dict[str, str]:
    report = _report(store, run_id)
    return {fmt: render(report, fmt) for fmt in ("json", "md", "sarif")}


def _history(report: RunReport, fingerprint: str) -> FindingHistory:
    found = [
        f for f in (*report.findings, *report.resolved) if f.finding.fingerprint == fingerprint
    ]
    assert len(found) == 1
    return found[0].history


def _started(store: Store, run_id: str) -> datetime:
    return _report(store, run_id).run.started


def test_the_report_of_run_1_is_the_same_after_runs_2_and_3(store: Store) -> None:
    store.record_run(make_run("r1", minutes=0), findings=[MODEL, IMAGE], exit_code=1)
    first = _rendered(store, "r1")
    t1 = _started(store, "r1")
    assert _history(_report(store, "r1"), IMAGE.fingerprint) == FindingHistory(t1, t1, 1, t1, None)

    store.record_run(make_run("r2", minutes=60), findings=[IMAGE, REPLICAS], exit_code=1)
    store.record_run(make_run("r3", minutes=120), findings=[MODEL, IMAGE, REPLICAS], exit_code=1)

    assert _rendered(store, "r1") == first
    # today's history has moved on: the store's own history is not what the report shows
    today = store.finding_history(IMAGE.fingerprint)
    assert today is not None and today["runs_seen"] == 3


def test_each_report_shows_history_as_its_run_left_it(store: Store) -> None:
    store.record_run(make_run("r1", minutes=0), findings=[MODEL, IMAGE], exit_code=1)
    store.record_run(make_run("r2", minutes=60), findings=[IMAGE, REPLICAS], exit_code=1)
    second = _rendered(store, "r2")
    store.record_run(make_run("r3", minutes=120), findings=[MODEL, IMAGE, REPLICAS], exit_code=1)
    t1, t2, t3 = (_started(store, r) for r in ("r1", "r2", "r3"))

    assert _rendered(store, "r2") == second
    r2 = _report(store, "r2")
    assert _history(r2, IMAGE.fingerprint) == FindingHistory(t1, t2, 2, t1, None)
    assert _history(r2, REPLICAS.fingerprint) == FindingHistory(t2, t2, 1, t2, None)
    # resolved by run 2 (complete, over its cluster), whatever run 3 did afterwards
    assert [f.finding.fingerprint for f in r2.resolved] == [MODEL.fingerprint]
    assert _history(r2, MODEL.fingerprint) == FindingHistory(t1, t1, 1, None, t2)

    r3 = _report(store, "r3")
    assert _history(r3, MODEL.fingerprint) == FindingHistory(t1, t3, 2, t3, None)
    assert _history(r3, IMAGE.fingerprint) == FindingHistory(t1, t3, 3, t1, None)


def test_an_incomplete_run_resolves_nothing_in_its_report(store: Store) -> None:
    store.record_run(make_run("r1", minutes=0), findings=[MODEL, IMAGE], exit_code=1)
    store.record_run(make_run("r2", minutes=60, status="incomplete"), findings=[IMAGE], exit_code=3)
    t1 = _started(store, "r1")
    r2 = _report(store, "r2")
    # not seen by a run that did not look everywhere: still open as far as run 2 knows
    assert _history(r2, MODEL.fingerprint) == FindingHistory(t1, t1, 1, t1, None)
