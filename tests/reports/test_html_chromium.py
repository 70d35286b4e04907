"""The HTML report in a real browser (headless Chromium): it loads with no console error (a
CSP violation or a script error would be one), shows the summary and every finding, renders
hostile values as text, and its findings table sorts and filters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.reports.render import render
from auditor.store import Store
from tests.reports.builders import HOSTILE, HOSTILE_TEXT, ThreeRuns
from tests.reports.chromium import Chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.close()


def page(runs: ThreeRuns, run_id: str, folder: Path) -> Path:
    with Store.open(runs.path) as store:
        report = store.report(run_id)
    assert report is not None
    path = folder / f"{run_id}.html"
    path.write_text(render(report, "html"))
    return path


def test_the_report_loads_without_console_errors_and_shows_summary_and_findings(
    browser: Chromium, runs: ThreeRuns, tmp_path: Path
) -> None:
    browser.load(page(runs, "r4", tmp_path))
    assert browser.errors() == []
    assert browser.evaluate("document.getElementById('run-id').textContent") == "r4"
    assert browser.evaluate("document.getElementById('total-findings').textContent") == "3"
    assert browser.evaluate("document.getElementById('new-count').textContent") == "2"
    assert browser.evaluate("document.getElementById('resolved-count').textContent") == "2"
    assert "2 of 3 policy evaluations passed" in browser.evaluate(
        "document.getElementById('pass-rate').textContent"
    )
    rows = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings tbody tr')).map(r => r.dataset.fingerprint)"
    )
    assert len(rows) == 3 and HOSTILE.fingerprint in rows
    assert browser.evaluate("document.querySelectorAll('#trend g').length") == 4
    assert browser.evaluate("document.getElementById('incomplete')") is None


def test_hostile_values_are_text_never_markup(
    browser: Chromium, runs: ThreeRuns, tmp_path: Path
) -> None:
    browser.load(page(runs, "r4", tmp_path))
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    assert browser.evaluate("document.scripts.length") == 1  # the report's own
    messages = browser.evaluate(
        "Array.from(document.querySelectorAll('#findings td.message')).map(c => c.textContent)"
    )
    assert any('<script>alert("x")</script>' in m for m in messages)
    assert any(
        "</td></tr><tr><td>injected" in c
        for c in browser.evaluate(
            "Array.from(document.querySelectorAll('#findings td.value')).map(c => c.textContent)"
        )
    )
    assert browser.evaluate("document.querySelectorAll('#findings tbody tr').length") == 3
    assert HOSTILE_TEXT[:20] in browser.evaluate("document.body.textContent")


def test_the_findings_table_sorts_and_filters(
    browser: Chromium, runs: ThreeRuns, tmp_path: Path
) -> None:
    browser.load(page(runs, "r4", tmp_path))
    order = "Array.from(document.querySelectorAll('#findings tbody tr td:nth-child(3)')).map(c => c.textContent)"
    button = "document.querySelectorAll('#findings thead button')[2]"  # check
    browser.evaluate(f"{button}.click()")
    ascending = browser.evaluate(order)
    assert ascending == sorted(ascending)
    browser.evaluate(f"{button}.click()")
    assert browser.evaluate(order) == sorted(ascending, reverse=True)
    assert browser.evaluate(f"{button}.parentElement.getAttribute('aria-sort')") == "descending"

    typed = json.dumps("evil")
    browser.evaluate(
        f"(() => {{ const f = document.getElementById('filter'); f.value = {typed};"
        " f.dispatchEvent(new Event('input')); })()"
    )
    visible = (
        "Array.from(document.querySelectorAll('#findings tbody tr')).filter(r => !r.hidden).length"
    )
    assert browser.evaluate(visible) == 1
    assert browser.evaluate("document.getElementById('shown').textContent") == "1"
    browser.evaluate(
        "(() => { const f = document.getElementById('filter'); f.value = '';"
        " f.dispatchEvent(new Event('input'));"
        " const s = document.getElementById('severity-filter'); s.value = 'medium';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert browser.evaluate(visible) == 1
    assert browser.errors() == []


def test_an_incomplete_run_says_so_in_the_page(
    browser: Chromium, runs: ThreeRuns, tmp_path: Path
) -> None:
    browser.load(page(runs, "r3", tmp_path))
    assert browser.errors() == []
    notice = browser.evaluate("document.getElementById('incomplete').textContent")
    assert "Incomplete run" in notice
    assert "forbidden" in browser.evaluate("document.getElementById('errors').textContent")
