"""Reading the store back: latest run, open findings, history by fingerprint, filters."""

from __future__ import annotations

import pytest

from auditor.model import RunStatus
from auditor.store import Store
from tests.store.factories import make_finding, make_run

MODEL = make_finding("fraud-scorer")  # comes and goes
IMAGE = make_finding("churn", path="/spec/predictor/containers/0/image", severity="high")
REPLICAS = make_finding("ranker", path="/spec/replicas", severity="low")  # fixed in run 3


def started(store: Store, run_id: str) -> str:
    row = store.run(run_id)
    assert row is not None
    return row["started"]


@pytest.fixture
def three_runs(store: Store) -> Store:
    store.record_run(make_run("r1", minutes=0), findings=[MODEL, IMAGE, REPLICAS], exit_code=1)
    store.record_run(make_run("r2", minutes=60), findings=[IMAGE, REPLICAS], exit_code=1)
    store.record_run(make_run("r3", minutes=120), findings=[MODEL, IMAGE], exit_code=1)
    return store


def test_a_finding_that_disappears_and_returns_is_open_again_since_its_return(
    three_runs: Store,
) -> None:
    history = three_runs.finding_history(MODEL.fingerprint)
    assert history == {
        "fingerprint": MODEL.fingerprint,
        "first_seen": started(three_runs, "r1"),
        "last_seen": started(three_runs, "r3"),
        "runs_seen": 2,
        "open_since": started(three_runs, "r3"),
        "resolved_at": None,
        "status": "open",
    }


def test_a_finding_in_every_run_is_open_since_the_first(three_runs: Store) -> None:
    history = three_runs.finding_history(IMAGE.fingerprint)
    assert history is not None
    assert history["first_seen"] == history["open_since"] == started(three_runs, "r1")
    assert history["last_seen"] == started(three_runs, "r3")
    assert history["runs_seen"] == 3


def test_a_fixed_finding_keeps_its_history_and_is_no_longer_open(three_runs: Store) -> None:
    history = three_runs.finding_history(REPLICAS.fingerprint)
    assert history is not None
    assert (history["first_seen"], history["last_seen"], history["runs_seen"]) == (
        started(three_runs, "r1"),
        started(three_runs, "r2"),
        2,
    )
    assert history["open_since"] is None


def test_an_unknown_fingerprint_has_no_history(three_runs: Store) -> None:
    assert three_runs.finding_history("0" * 32) is None


@pytest.mark.parametrize("status", ["incomplete", "failed"])
def test_a_run_that_could_not_look_does_not_close_a_finding(
    three_runs: Store, status: RunStatus
) -> None:
    three_runs.record_run(make_run("r4", minutes=180, status=status), exit_code=3)
    history = three_runs.finding_history(IMAGE.fingerprint)
    assert history is not None
    assert history["open_since"] == started(three_runs, "r1")


def test_a_killed_run_does_not_count_in_history(three_runs: Store) -> None:
    three_runs.begin_run(make_run("r4", minutes=180))  # never finished
    history = three_runs.finding_history(IMAGE.fingerprint)
    assert history is not None and history["runs_seen"] == 3
    assert history["open_since"] == started(three_runs, "r1")


def test_open_findings_are_those_of_the_latest_finished_run(three_runs: Store) -> None:
    three_runs.begin_run(make_run("r4-killed", minutes=180))
    latest = three_runs.run("latest")
    assert latest is not None and latest["id"] == "r3"
    view = list(three_runs.db.query("SELECT run_id, fingerprint FROM open_findings"))
    assert {(row["run_id"], row["fingerprint"]) for row in view} == {
        ("r3", MODEL.fingerprint),
        ("r3", IMAGE.fingerprint),
    }
    opened = three_runs.findings(open_only=True)
    assert [row["name"] for row in opened] == ["fraud-scorer", "churn"]  # most severe first
    # Of an older run, the findings still open today:
    assert [row["name"] for row in three_runs.findings("r2", open_only=True)] == ["churn"]


def test_findings_filter_by_run_severity_and_category(three_runs: Store) -> None:
    assert len(three_runs.findings()) == 7
    assert [row["run_id"] for row in three_runs.findings(severity="low")] == ["r1", "r2"]
    assert [row["name"] for row in three_runs.findings("latest", severity="high")] == ["churn"]
    assert three_runs.findings(category="policy") == []
    assert len(three_runs.findings("r1", category="drift")) == 3
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        three_runs.findings(severity="urgent")


def test_runs_are_listed_newest_first_unfinished_included(three_runs: Store) -> None:
    three_runs.begin_run(make_run("r4", minutes=180))
    assert [row["id"] for row in three_runs.runs()] == ["r4", "r3", "r2", "r1"]
    assert [row["id"] for row in three_runs.runs(limit=2)] == ["r4", "r3"]
    assert three_runs.run("nope") is None


def test_an_empty_store_has_no_latest_run_and_no_findings(store: Store) -> None:
    assert store.run("latest") is None
    assert store.findings(open_only=True) == []
    assert store.errors("latest") == []
    assert store.runs() == []


def test_a_finding_that_changes_while_open_is_known_as_last_seen_with_one_history(
    store: Store,
) -> None:
    # the live value moves on and back while the finding stays open: v4, v5, v5, v4
    versions = ["gs://models/fraud/v4", "gs://models/fraud/v5", "gs://models/fraud/v5"]
    versions.append(versions[0])
    for index, actual in enumerate(versions):
        found = make_finding("fraud-scorer", actual=actual, message=f"live {actual}")
        store.record_run(make_run(f"r{index}", minutes=60 * index), findings=[found], exit_code=1)
        (known,) = store.known_findings(open_only=True)
        assert (known.finding.actual, known.finding.message) == (actual, f"live {actual}")
        assert known.history.runs_seen == index + 1
        assert known.history.open_since == known.history.first_seen
        assert [row["actual"] for row in store.findings(f"r{index}")] == [actual]
    # each value stored once, found again when seen again
    assert store.db["finding_contents"].count == 2
    assert [row["actual"] for r in ("r0", "r1", "r2", "r3") for row in store.findings(r)] == (
        versions
    )
    history = store.finding_history(make_finding("fraud-scorer").fingerprint)
    assert history is not None
    assert (history["runs_seen"], history["first_seen"], history["last_seen"]) == (
        4,
        started(store, "r0"),
        started(store, "r3"),
    )
