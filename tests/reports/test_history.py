"""History across runs whose findings change: opened, still open, resolved, new; what an
incomplete run, a run over another cluster and `auditor prune` do to it. Through the library
and through the real CLI (`auditor findings`, `auditor history`, `auditor runs`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

from auditor.model import ClusterInfo
from auditor.store import Store
from tests.conftest import run_cli
from tests.reports.builders import HOSTILE, MODEL, POLICY, REPLICAS, UNSIGNED, ThreeRuns, started
from tests.store.factories import T0, make_finding, make_run


def history(store: Store, finding: object) -> dict[str, object]:
    found = store.finding_history(finding.fingerprint)  # type: ignore[attr-defined]
    assert found is not None
    return found


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_finding_opened_then_still_open_is_resolved_by_the_next_complete_run_without_it(
    runs: ThreeRuns,
) -> None:
    with Store.open(runs.path) as store:
        assert history(store, MODEL) == {
            "fingerprint": MODEL.fingerprint,
            "first_seen": at(0),
            "last_seen": at(120),
            "runs_seen": 3,
            "open_since": None,
            "resolved_at": at(180),
            "status": "resolved",
        }


def test_an_incomplete_run_that_lacks_a_finding_does_not_resolve_it(runs: ThreeRuns) -> None:
    # r3 was incomplete and did not have REPLICAS: only the complete r4 resolved it
    with Store.open(runs.path) as store:
        replicas = history(store, REPLICAS)
    assert (replicas["last_seen"], replicas["resolved_at"]) == (at(60), at(180))


def test_new_findings_are_open_since_the_run_that_first_saw_them(runs: ThreeRuns) -> None:
    with Store.open(runs.path) as store:
        hostile, unsigned, policy = (history(store, f) for f in (HOSTILE, UNSIGNED, POLICY))
    assert (hostile["first_seen"], hostile["open_since"], hostile["runs_seen"]) == (
        at(60),
        at(60),
        3,
    )
    assert (unsigned["open_since"], unsigned["status"]) == (
        at(120),
        "open",
    )  # seen by the incomplete r3
    assert (policy["first_seen"], policy["runs_seen"], policy["status"]) == (at(180), 1, "open")


def test_the_report_compares_with_the_previous_complete_run(runs: ThreeRuns) -> None:
    with Store.open(runs.path) as store:
        r4, r3 = store.report("r4"), store.report("r3")
    assert r4 is not None and r3 is not None
    assert r4.previous is not None and r4.previous.id == "r2"  # r3 did not look at everything
    assert {f.finding.fingerprint for f in r4.new} == {UNSIGNED.fingerprint, POLICY.fingerprint}
    assert {f.finding.fingerprint for f in r4.still_open} == {HOSTILE.fingerprint}
    assert {f.finding.fingerprint for f in r4.resolved} == {MODEL.fingerprint, REPLICAS.fingerprint}
    assert [run.id for run in r4.trend] == ["r1", "r2", "r3", "r4"]
    # the incomplete r3 "lost" REPLICAS: reports list it as not seen, with the caveat
    assert {f.finding.fingerprint for f in r3.resolved} == {REPLICAS.fingerprint}
    assert not r3.complete and r3.errors[0].stage == "live"


def test_a_finding_that_comes_back_is_open_again_since_its_return(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db") as store:
        for index, present in enumerate([True, False, True]):
            store.record_run(
                make_run(f"r{index}", minutes=index),
                findings=[MODEL] if present else [],
                exit_code=1,
            )
        found = history(store, MODEL)
    assert (found["first_seen"], found["open_since"], found["runs_seen"]) == (at(0), at(2), 2)
    assert found["status"] == "open" and found["resolved_at"] is None


def test_a_complete_run_over_another_cluster_resolves_nothing_here(tmp_path: Path) -> None:
    other = dataclasses.replace(make_run("staging", minutes=5), clusters=(ClusterInfo("staging"),))
    with Store.open(tmp_path / "a.db") as store:
        store.record_run(make_run("prod-1"), findings=[MODEL], exit_code=1)
        store.record_run(other, findings=[], exit_code=0)
        assert history(store, MODEL)["status"] == "open"
        store.record_run(make_run("prod-2", minutes=10), findings=[], exit_code=0)
        assert history(store, MODEL)["resolved_at"] == at(10)


def test_prune_deletes_old_runs_and_keeps_the_history_of_what_is_still_open(
    runs: ThreeRuns,
) -> None:
    with Store.open(runs.path) as store:
        result = store.prune(1, now=T0 + timedelta(days=1, minutes=90))  # cutoff: T0 + 90 min
        assert result.runs == 2
        assert [row["id"] for row in store.runs()] == ["r4", "r3"]
        hostile = history(store, HOSTILE)  # first seen in r2, which is gone
        assert (hostile["first_seen"], hostile["runs_seen"], hostile["open_since"]) == (
            at(60),
            3,
            at(60),
        )
        assert history(store, MODEL)["resolved_at"] == at(180)  # resolved after the cutoff: kept
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        report = store.report("r4")
        assert report is not None and {f.finding.fingerprint for f in report.findings} == {
            HOSTILE.fingerprint,
            UNSIGNED.fingerprint,
            POLICY.fingerprint,
        }
        # what nothing names is gone: r3's and r4's findings, and REPLICAS as last seen (its
        # history, resolved in r4, is after the cutoff and kept)
        assert store.db.execute("SELECT COUNT(*) FROM finding_contents").fetchone()[0] == 5
        store.prune(0, now=T0 + timedelta(days=30))
        assert store.runs() == [] and store.known_findings(open_only=True) != []
        assert store.known_findings(open_only=False) == store.known_findings(open_only=True)


def test_findings_cli_lists_each_finding_once_with_its_history(runs: ThreeRuns) -> None:
    result = run_cli("findings", "--store", str(runs.path), "-o", "json")
    assert result.code == 0, result.err
    found = {f["fingerprint"]: f for f in json.loads(result.out)["findings"]}
    assert set(found) == {f.fingerprint for f in (MODEL, REPLICAS, HOSTILE, UNSIGNED, POLICY)}
    model = found[MODEL.fingerprint]
    assert (model["status"], model["first_seen"], model["resolved_at"], model["runs_seen"]) == (
        "resolved",
        started(0),
        started(180),
        3,
    )
    assert model["resource"] == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "namespace": "ml",
        "name": "fraud-scorer",
    }
    assert model["changed_by"] == {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": "2026-11-23T02:13:00Z",
    }

    opened = run_cli(
        "findings",
        "--store",
        str(runs.path),
        "--open",
        "--since",
        "2026-11-23T18:00:00",
        "-o",
        "json",
    )
    assert {f["fingerprint"] for f in json.loads(opened.out)["findings"]} == {
        UNSIGNED.fingerprint,  # first seen 18:56
        POLICY.fingerprint,  # first seen 19:56; HOSTILE (17:56) and the resolved ones left out
    }
    text = run_cli("findings", "--store", str(runs.path), "--open", "--severity", "high")
    assert text.code == 0 and UNSIGNED.fingerprint in text.out and MODEL.fingerprint not in text.out


def test_history_cli_shows_every_run_over_the_cluster_and_whether_it_had_the_finding(
    runs: ThreeRuns,
) -> None:
    result = run_cli("history", "--store", str(runs.path), MODEL.fingerprint, "-o", "json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["finding"]["status"] == "resolved"
    assert [(r["run"], r["seen"], r["status"]) for r in document["runs"]] == [
        ("r1", True, "complete"),
        ("r2", True, "complete"),
        ("r3", True, "incomplete"),
        ("r4", False, "complete"),
    ]
    text = run_cli("history", "--store", str(runs.path), MODEL.fingerprint)
    assert "resolved" in text.out and "r4" in text.out and "absent" in text.out
    unknown = run_cli("history", "--store", str(runs.path), "0" * 32)
    assert unknown.code == 2 and "no finding with fingerprint" in unknown.err


def test_runs_cli_lists_runs_newest_first_and_a_missing_store_is_a_usage_error(
    runs: ThreeRuns, tmp_path: Path
) -> None:
    result = run_cli("runs", "--store", str(runs.path), "-o", "json", "--limit", "3")
    assert [r["id"] for r in json.loads(result.out)["runs"]] == ["r4", "r3", "r2"]
    assert json.loads(result.out)["runs"][1]["status"] == "incomplete"
    missing = run_cli("runs", "--store", str(tmp_path / "typo.db"))
    assert missing.code == 2 and "no store at this path" in missing.err
    assert not (tmp_path / "typo.db").exists()  # reading never creates a store


def test_two_sightings_in_one_run_count_once(tmp_path: Path) -> None:
    twice = make_finding("fraud-scorer", message="same problem, said twice")
    with Store.open(tmp_path / "a.db") as store:
        store.record_run(make_run("r1"), findings=[twice, twice], exit_code=1)
        assert history(store, twice)["runs_seen"] == 1
        assert len(store.findings("r1")) == 2
