"""The shipped Datasette metadata: every canned query runs on a real store and answers what
its title says (Datasette runs the same SQL through the same SQLite)."""

from __future__ import annotations

import sqlite3
from typing import Any

import yaml

from auditor.shipped import shipped_path
from tests.reports.builders import HOSTILE, POLICY, UNSIGNED, ThreeRuns

METADATA = shipped_path("reports") / "datasette" / "metadata.yaml"


def queries() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(METADATA.read_text())["databases"]["audit"]["queries"]


def answer(runs: ThreeRuns, name: str, **params: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(runs.path)
    conn.row_factory = sqlite3.Row
    sql = queries()[name]["sql"]
    return [dict(row) for row in conn.execute(sql, params)]


def test_every_canned_query_runs_on_a_store(runs: ThreeRuns) -> None:
    for name, query in queries().items():
        params = {"run": ""} if ":run" in query["sql"] else {}
        assert isinstance(answer(runs, name, **params), list), name
        assert query.get("title"), name


def test_open_findings_by_severity_counts_what_is_open(runs: ThreeRuns) -> None:
    rows = {
        (r["severity"], r["category"]): r["findings"]
        for r in answer(runs, "open_findings_by_severity")
    }
    assert rows == {("high", "drift"): 1, ("high", "provenance"): 1, ("medium", "policy"): 1}
    assert {r["fingerprint"] for r in answer(runs, "open_findings")} == {
        HOSTILE.fingerprint,
        UNSIGNED.fingerprint,
        POLICY.fingerprint,
    }


def test_drift_by_class_over_time_has_a_row_per_run_and_class(runs: ThreeRuns) -> None:
    rows = [
        (r["run_id"], r["class"], r["findings"]) for r in answer(runs, "drift_by_class_over_time")
    ]
    assert rows[0] == ("r1", "model", 2)  # MODEL and REPLICAS
    assert ("r2", "config", 1) in rows and ("r4", "config", 1) in rows  # HOSTILE


def test_unsigned_models_and_pass_rate_per_control(runs: ThreeRuns) -> None:
    assert [r["name"] for r in answer(runs, "unsigned_models")] == ["recommender"]
    [control] = answer(runs, "policy_pass_rate_per_control", run="")
    assert (control["control"], control["evaluated"], control["passed"]) == ("CIS-K8s-5.1.5", 3, 2)
    [earlier] = answer(runs, "policy_pass_rate_per_control", run="r1")
    assert earlier["pass_rate"] == 100.0
