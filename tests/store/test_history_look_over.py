"""A run about as large as what is open in its cluster reads the open findings at once instead
of looking each up by fingerprint; what it records is the same either way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from auditor.model import Finding
from auditor.store import Store, history
from tests.store.factories import make_finding, make_run

# the statement that reads a cluster's open findings at once, as traced (values written in)
LOOK_OVER = "FROM fingerprints WHERE cluster = 'prod-"


def elsewhere(finding: Finding) -> Finding:
    ref = dataclasses.replace(finding.ref, cluster="prod-us")
    return dataclasses.replace(finding, ref=ref, message=finding.message + " (us)")


def findings(names: str, changed: str = "") -> list[Finding]:
    return [
        make_finding(f"model-{n}", actual=f"gs://models/{n}/{'v9' if n in changed else 'v4'}")
        for n in names
    ]


# Four nights over two clusters: one finding changes, one goes and comes back, one is new.
NIGHTS = [
    findings("abcdefghij") + [elsewhere(f) for f in findings("ab")],
    findings("abcdefghik", changed="c") + [elsewhere(f) for f in findings("a")],
    findings("abcdefghijk", changed="c"),
    findings("abdefghijk"),
]


def record_nights(path: Path, statements: list[str]) -> dict[str, list[tuple[object, ...]]]:
    with Store.open(path) as store:
        for night, found in enumerate(NIGHTS):
            if night == 2:
                # a stored text that looks like auditor's hex (an older tool's): the finding
                # with that fingerprint is not it, in either way of reading
                store.db.execute(
                    "UPDATE fingerprints SET fingerprint = lower(hex(fingerprint)) WHERE cluster = 'prod-eu'"
                    " AND last_content IN (SELECT id FROM finding_contents WHERE message LIKE"
                    " '%model-b%')"
                )
            store.db.conn.set_trace_callback(statements.append)
            store.record_run(make_run(f"r{night}", minutes=60 * night), findings=found, exit_code=1)
            store.db.conn.set_trace_callback(None)
        return {
            table: store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("fingerprints", "finding_contents", "run_findings")
        }


def test_reading_the_open_findings_at_once_records_what_looking_each_up_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_at_once: list[str] = []
    at_once = record_nights(tmp_path / "at-once.db", read_at_once)
    monkeypatch.setattr(history, "_LOOK_OVER_FACTOR", 0)  # never: each looked up
    looked_up: list[str] = []
    one_by_one = record_nights(tmp_path / "one-by-one.db", looked_up)
    assert at_once == one_by_one
    # and each way was taken: every run after the first read what was open at once
    over = [s for s in read_at_once if LOOK_OVER in s and s.startswith("SELECT fingerprint")]
    assert sorted(s.split("cluster = ")[1][:9] for s in over) == ["'prod-eu'"] * 3 + ["'prod-us'"]
    assert not [s for s in looked_up if LOOK_OVER in s and s.startswith("SELECT fingerprint")]
    # the fingerprint made text was not taken for the finding's: it has a row of its own again
    texts = [row for row in at_once["fingerprints"] if isinstance(row[1], str)]
    [(_, _, _, _, _, _, _, resolved_at, last_run, _)] = texts
    assert last_run == 2 and resolved_at is not None  # last seen the night before, and gone


def test_a_small_run_looks_its_findings_up_one_by_one(store: Store) -> None:
    store.record_run(make_run("r1"), findings=findings("abcdefghijklmnop"), exit_code=1)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    store.record_run(make_run("r2", minutes=60), findings=findings("ab"), exit_code=1)
    assert not [s for s in statements if LOOK_OVER in s and s.startswith("SELECT fingerprint")]
    assert [s for s in statements if "WHERE fingerprint IN" in s]
    known = {item.finding.ref.name: item.history for item in store.known_findings()}
    assert known["model-a"].runs_seen == 2 and known["model-c"].status == "resolved"
