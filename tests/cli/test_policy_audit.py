"""`auditor audit` runs the configured policies over every resource in scope: embedded or on an
OPA server with the same results, Gatekeeper templates with Git as inventory, and failures that
never pass for clean."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GitRepo, run_cli, run_main
from tests.opaserver.server import OpaTestServer
from tests.policy.gatekeeper.builders import UNIQUE_HOST_REGO, constraint_yaml, template_yaml

LABELS_POLICY = """\
# METADATA
# title: Model configs name their owning team
# custom:
#   severity: medium
#   controls: [INTERNAL-OWN-1]
package acme.team_label

import rego.v1

deny contains msg if {
  input.resource.kind == "ConfigMap"
  not input.resource.metadata.labels.team
  msg := sprintf("ConfigMap %s has no team label", [input.resource.metadata.name])
}
"""

OBJECTS = [
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned", "namespace": "ml", "labels": {"team": "risk"}},
        "data": {"a": "1"},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "orphan", "namespace": "ml"},
        "data": {"a": "2"},
    },
    *(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {"rules": [{"host": "models.acme.io"}]},
        }
        for name in ("scorer", "scorer-copy")
    ),
]


@pytest.fixture
def setup(tmp_path: Path, git_repo: GitRepo) -> tuple[Path, Path]:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(OBJECTS))
    git_repo.commit()
    snapshot = tmp_path / "live.json"
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": OBJECTS}))
    policies = tmp_path / "policies"
    (policies / "team_label.rego").parent.mkdir(parents=True)
    (policies / "team_label.rego").write_text(LABELS_POLICY)
    (policies / "gatekeeper" / "template.yaml").parent.mkdir()
    (policies / "gatekeeper" / "template.yaml").write_text(
        template_yaml("K8sUniqueIngressHost", UNIQUE_HOST_REGO)
    )
    (policies / "gatekeeper" / "constraint.yaml").write_text(
        constraint_yaml(
            "K8sUniqueIngressHost",
            "unique-ingress-host",
            {"match": {"kinds": [{"apiGroups": ["networking.k8s.io"], "kinds": ["Ingress"]}]}},
        )
    )
    return git_repo.path, policies


def config(tmp_path: Path, repo: Path, policies: Path, **policy: Any) -> Path:
    path = tmp_path / "auditor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(repo)},
                "clusters": [{"name": "prod", "snapshot": str(tmp_path / "live.json")}],
                "policy": {"paths": [str(policies)], **policy},
                "store": str(tmp_path / "audit.db"),
                "fail_on": "medium",
            }
        )
    )
    return path


def audit(path: Path) -> tuple[int, dict[str, Any], str]:
    result = run_cli("audit", "--config", str(path), "-o", "json")
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def policy_findings(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (f["check"], f["resource"]["name"], f["severity"])
        for f in doc["findings"]
        if f["category"] == "policy"
    }


def test_rego_and_gatekeeper_policies_judge_git_and_live_with_git_as_inventory(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    code, doc, err = audit(config(tmp_path, *setup))
    assert code == 1, err
    assert policy_findings(doc) == {
        ("acme.team_label", "orphan", "medium"),
        # each Ingress conflicts with the other one in Git's inventory
        ("K8sUniqueIngressHost/unique-ingress-host", "scorer", "high"),
        ("K8sUniqueIngressHost/unique-ingress-host", "scorer-copy", "high"),
    }
    team = next(f for f in doc["findings"] if f["check"] == "acme.team_label")
    assert team["controls"] == ["INTERNAL-OWN-1"]
    # every policy x resource it applies to is stored, passes included
    db = sqlite3.connect(tmp_path / "audit.db")
    rows = dict(
        db.execute(
            "select policy, evaluated || '/' || passed from policy_summary where run_id = ?",
            (doc["run"]["id"],),
        ).fetchall()
    )
    assert rows == {"acme.team_label": "4/3", "K8sUniqueIngressHost/unique-ingress-host": "2/0"}


def test_opa_server_engine_gives_the_same_findings(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    _, embedded, _ = audit(config(tmp_path, *setup))
    with OpaTestServer() as opa:
        code, remote, err = audit(config(tmp_path, *setup, engine="opa", opa={"url": opa.url}))
    assert code == 1, err
    assert policy_findings(remote) == policy_findings(embedded)
    assert remote["policy"] == embedded["policy"]


def test_an_unreachable_opa_server_makes_the_run_incomplete_never_a_pass(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = config(tmp_path, *setup, engine="opa", opa={"url": f"http://127.0.0.1:{port}"})
    code, doc, err = audit(path)
    assert code == 3, err
    assert doc["run"]["status"] == "incomplete"
    assert any(e["stage"] == "policy" for e in doc["errors"])
    assert doc["policy"]["evaluated"] == 0


def test_a_policy_syntax_error_exits_2_naming_file_and_line(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    repo, policies = setup
    (policies / "broken.rego").write_text("package acme.broken\n\nimport rego.v1\n\ndeny if {\n")
    code, _, err = audit(config(tmp_path, repo, policies))
    assert code == 2
    assert "broken.rego:" in err and "Traceback" not in err


def test_a_policy_runtime_error_is_an_error_finding_while_the_others_run(
    tmp_path: Path, setup: tuple[Path, Path]
) -> None:
    repo, policies = setup
    (policies / "conflict.rego").write_text(
        "package acme.conflict\n\nimport rego.v1\n\n"
        'level := 1 if input.resource.kind == "ConfigMap"\n'
        'level := 2 if input.resource.kind == "ConfigMap"\n\n'
        'deny contains "too high" if level > 1\n'
    )
    code, doc, _ = audit(config(tmp_path, repo, policies))
    assert code == 3  # an evaluation that errored is not a pass: the run is incomplete
    errors = [f for f in doc["findings"] if f["check"] == "policy.error"]
    assert errors and all(f["category"] == "error" for f in errors)
    assert ("acme.team_label", "orphan", "medium") in policy_findings(doc)


def test_on_regorus_vm_the_audit_gives_the_interpreters_findings(
    tmp_path: Path, setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # the Gatekeeper template (Rego v0) stays on the interpreter; the plain policy is on the VM
    found = {}
    for vm in (False, True):
        result = run_main(
            capsys, "audit", "--config", str(config(tmp_path, *setup, vm=vm)), "-o", "json"
        )
        assert result.code == 1, result.err
        doc = json.loads(result.out)
        assert not any("VM" in note for note in doc["notes"])
        found[vm] = policy_findings(doc)
    assert found[True] == found[False]


def test_a_disagreement_of_the_vm_is_a_note_in_the_output_and_the_store_not_an_error(
    tmp_path: Path,
    setup: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from auditor.policy.vm import VmEngine

    honest = VmEngine._run

    def lying(self: VmEngine, entry: str, count: int) -> list[Any] | None:
        values = honest(self, entry, count)
        return None if values is None else [["invented by the VM"]] * count

    monkeypatch.setattr(VmEngine, "_run", lying)
    result = run_main(
        capsys, "audit", "--config", str(config(tmp_path, *setup, vm=True)), "-o", "json"
    )
    assert result.code == 1, result.err  # findings, not an incomplete run
    doc = json.loads(result.out)
    assert ("acme.team_label", "orphan", "medium") in policy_findings(doc)
    assert not any("invented" in f["message"] for f in doc["findings"])
    (note,) = [note for note in doc["notes"] if "VM" in note]
    assert "policy acme.team_label" in note and "disagreed" in note
    assert "disagreed" in result.err  # logged as it happens
    db = sqlite3.connect(tmp_path / "audit.db")
    (stored,) = db.execute("select notes from runs where id = ?", (doc["run"]["id"],)).fetchone()
    assert note in json.loads(stored)
