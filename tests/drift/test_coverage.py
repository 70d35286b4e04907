"""A snapshot without managedFields: every Git field is still compared, and the run says
what it could not check (who changed a field, drift.added, drift.removed under server-side
apply), naming the cluster and the snapshot, on stderr, in the JSON and in the report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from auditor.drift.coverage import blind_spots
from tests.conftest import GitRepo, run_cli
from tests.drift.fixtures import (
    NAMESPACE,
    REALWORLD,
    as_live,
    desired,
    drift,
    drift_cli,
    find,
    live,
    snapshot_file,
)

FILE = "kubectl-create-fraud-scorer.yaml"


def plain_kubectl_get(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `kubectl get -o yaml` prints without --show-managed-fields."""
    out = copy.deepcopy(objects)
    for body in out:
        body["metadata"].pop("managedFields", None)
    return out


def test_objects_with_managed_fields_need_no_note() -> None:
    assert drift(desired(FILE), live(FILE)).notes == ()


def test_compared_objects_without_managed_fields_are_named_in_a_note() -> None:
    result = drift(desired(FILE), plain_kubectl_get(live(FILE)))
    assert result.findings == ()  # every field Git sets still compared, and in sync
    [note] = result.notes
    assert note.startswith(
        "cluster prod: 5 of 5 compared live objects carry no metadata.managedFields"
    )
    assert (
        "(Deployment demo/fraud-scorer, Service demo/fraud-scorer, ConfigMap demo/fraud-scorer-flags, ...)"
        in note
    )
    for off in ("changed_by", "drift.added", "drift.removed"):
        assert off in note


def test_some_objects_without_managed_fields_are_counted() -> None:
    have = live(FILE)
    del find(have, "Secret", "registry-token")["metadata"]["managedFields"]
    [note] = drift(desired(FILE), have).notes
    assert "1 of 5 compared live objects" in note and "(Secret demo/registry-token)" in note


def test_a_snapshot_note_names_the_file_and_how_to_take_it() -> None:
    resource = as_live(plain_kubectl_get(live(FILE))[0])
    snapshot = type(resource)(resource.ref, resource.body, resource.side, "snapshot:live/prod.yaml")
    [note] = blind_spots([snapshot])
    assert note.startswith("cluster prod, snapshot live/prod.yaml: 1 of 1 compared")
    assert note.endswith("take snapshots with `kubectl get -o yaml --show-managed-fields`")


def snapshot_run(
    git_repo: GitRepo, tmp_path: Path, objects: list[dict[str, Any]], *args: str
) -> tuple[int, str, str]:
    git_repo.write(f"apps/{FILE}", (REALWORLD / "desired" / FILE).read_text())
    git_repo.commit("kubectl create output")
    result = drift_cli(git_repo.path, snapshot_file(tmp_path / "prod.json", objects), *args)
    return result.code, result.out, result.err


def test_cli_warns_on_stderr_and_in_json_when_the_snapshot_has_no_managed_fields(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    code, out, err = snapshot_run(git_repo, tmp_path, plain_kubectl_get(live(FILE)), "-o", "json")
    assert code == 0, err  # in sync: the note does not make it drift
    doc = json.loads(out)
    [note] = doc["notes"]
    assert f"snapshot {tmp_path / 'prod.json'}" in note
    assert "--show-managed-fields" in note
    # stderr is not a terminal here: logs are JSON lines
    warnings = [json.loads(line) for line in err.splitlines()]
    assert {"event": note, "level": "warning", "logger": "auditor.pipeline"}.items() <= next(
        w.items() for w in warnings if w["level"] == "warning"
    )


def test_cli_says_nothing_when_the_snapshot_has_managed_fields(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    code, out, err = snapshot_run(git_repo, tmp_path, live(FILE), "-o", "json")
    assert (code, json.loads(out)["notes"]) == (0, [])
    assert "managedFields" not in err


def test_the_audit_report_carries_the_note(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write(f"apps/{FILE}", (REALWORLD / "desired" / FILE).read_text())
    git_repo.commit("kubectl create output")
    path = snapshot_file(tmp_path / "prod.json", plain_kubectl_get(live(FILE)))
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"git: {{repo: {git_repo.path}, paths: [apps], default_namespace: {NAMESPACE}}}\n"
        f"clusters:\n  - name: prod\n    snapshot: {path}\n"
        f"store: {tmp_path / 'audit.db'}\npolicy: {{enabled: false}}\n"
    )
    report = tmp_path / "report.md"
    result = run_cli("audit", "--config", str(config), "--report", str(report))
    assert result.code == 0, result.err
    text = report.read_text()
    assert "## Notes: what these findings cannot say" in text
    assert "5 of 5 compared live objects carry no metadata.managedFields" in text
