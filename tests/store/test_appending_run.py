"""A run recorded in parts (`appending_run`, what `auditor store merge` writes a fleet run
with) reads back exactly as the same run recorded at once by finish_run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.model import Evaluation, Finding, PolicyInfo, PolicyMessage, StageError
from auditor.store import Store
from auditor.store.writer import appending_run
from tests.fleet.answers import answers
from tests.store.factories import make_finding, make_record, make_run, ref

NAMES = ("fraud", "churn", "ranker")
POLICY = PolicyInfo("ml.pinned", title="Models are pinned", controls=("SOC2-CC8.1",))
MESSAGE = PolicyMessage("deny", "model is not pinned", {"msg": "model is not pinned"})


def evaluation(name: str) -> Evaluation:
    return Evaluation("ml.pinned", ref(name), "fail", (MESSAGE,), duration_ms=1.5)


def policy_finding(name: str) -> Finding:
    """The finding the policy stage makes of MESSAGE on `name`."""
    finding = make_finding(name)
    details = {"rule": "deny", "message": {"msg": "model is not pinned"}}
    return dataclasses.replace(
        finding,
        category="policy",
        check="ml.pinned",
        severity="high",
        drift_class=None,
        changed_by=None,
        message=f"{finding.ref.display()}: model is not pinned",
        details={**details, "policy_title": POLICY.title, "source": POLICY.source},
    )


ERRORS = [StageError("provenance", "no bundle", target="ml/fraud", cluster="prod-eu")]


def record_at_once(path: Path) -> None:
    with Store.open(path) as store:
        store.record_run(
            make_run("r1"),
            resources=[make_record(n) for n in NAMES],
            findings=[*(make_finding(n) for n in NAMES), *(policy_finding(n) for n in NAMES)],
            errors=ERRORS,
            exit_code=1,
            evaluations=[evaluation(n) for n in NAMES],
            policies=[POLICY],
        )


def record_in_parts(path: Path) -> None:
    run = make_run("r1")
    with Store.open(path) as store:
        store.begin_run(run)
        with appending_run(store.db, "r1") as rows:
            rows.policies([POLICY])
            rows.findings(make_finding(n) for n in NAMES[:2])
            rows.end_part()
            rows.findings([make_finding(NAMES[2])])
            rows.end_part()
            for name in NAMES:  # a part per object: its policy finding and its evaluation
                rows.findings([policy_finding(name)])
                rows.evaluations([evaluation(name)])
                rows.resources([make_record(name)])
                rows.end_part()
            rows.finish(run, errors=ERRORS, exit_code=1)


def test_a_run_appended_in_parts_reads_back_as_one_recorded_at_once(tmp_path: Path) -> None:
    record_at_once(tmp_path / "once.db")
    record_in_parts(tmp_path / "parts.db")

    once, parts = answers(tmp_path / "once.db"), answers(tmp_path / "parts.db")
    assert parts == once
    report = once["reports"]["run-1"]
    assert len(report["findings"]) == 6 and len(report["evaluations"]) == 3
    assert report["evaluations"][0]["messages"][0]["msg"] == "model is not pinned"
    with Store.open(tmp_path / "parts.db") as store:
        # the evaluations' messages were taken from the findings of their part, as at once
        assert store.db.execute("SELECT COUNT(*) FROM evaluation_messages").fetchone()[0] == 0


def test_a_finding_appended_twice_in_one_run_is_seen_once(tmp_path: Path) -> None:
    run = make_run("r1")
    with Store.open(tmp_path / "s.db") as store:
        store.begin_run(run)
        with appending_run(store.db, "r1") as rows:
            rows.findings([make_finding()])
            rows.end_part()
            rows.findings([make_finding()])
            rows.finish(run, errors=(), exit_code=1)
        history = store.finding_history(make_finding().fingerprint)
    assert history is not None and history["runs_seen"] == 1


def test_rows_appended_but_never_finished_are_not_kept(tmp_path: Path) -> None:
    run = make_run("r1")
    with Store.open(tmp_path / "s.db") as store:
        store.begin_run(run)
        with (
            pytest.raises(ValueError, match="never finished"),
            appending_run(store.db, "r1") as rows,
        ):
            rows.findings([make_finding()])
        assert store.findings("r1") == []
        row = store.run("r1")
        assert row is not None and row["finished"] is None
