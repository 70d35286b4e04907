"""What a store answers (`auditor findings`, `auditor report`), made comparable between two
stores of the same audits: a fleet run merged from shards and one process's run."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from auditor.reports.runjson import report_document
from auditor.store import Store
from auditor.store.values import parse_time

_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class Normalized:
    """A store's answers with what must differ between two stores taken out: run ids become
    `run-1`, `run-2`... in start order, a run's start time `start of run-N`, other times
    `<time>`, and evaluation timings dropped (two executions never take equally long)."""

    def __init__(self, store: Store) -> None:
        runs = sorted(store.runs(), key=lambda r: r["started"])
        self.ids = {r["id"]: f"run-{n}" for n, r in enumerate(runs, 1)}
        self.starts = {parse_time(r["started"]): f"start of run-{n}" for n, r in enumerate(runs, 1)}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items() if k != "duration_ms"}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            if value in self.ids:
                return self.ids[value]
            if _TIME.match(value):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return self.starts.get(moment, "<time>")
        return value


def answers(path: Path) -> dict[str, Any]:
    """What `auditor findings` and `auditor report --format json` show, for every run."""
    with Store.open(path) as store:
        norm = Normalized(store)
        reports = {}
        for row in store.runs():
            report = store.report(row["id"])
            assert report is not None
            reports[norm.ids[row["id"]]] = norm(report_document(report))
        return {
            "open": norm([f.to_json() for f in store.known_findings(open_only=True)]),
            "known": norm([f.to_json() for f in store.known_findings()]),
            "reports": reports,
        }


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())
