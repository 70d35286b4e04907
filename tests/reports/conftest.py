from __future__ import annotations

from pathlib import Path

import pytest

from auditor.model import RunReport
from auditor.store import Store
from tests.reports.builders import ThreeRuns, record_runs


@pytest.fixture
def runs(tmp_path: Path) -> ThreeRuns:
    return record_runs(tmp_path / "audit.db")


@pytest.fixture
def latest(runs: ThreeRuns) -> RunReport:
    with Store.open(runs.path) as store:
        report = store.report("latest")
    assert report is not None
    return report
