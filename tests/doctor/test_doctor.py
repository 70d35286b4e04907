"""`auditor doctor`: every part of a setup checked as the audit will use it, against a real Git
repository and the Kubernetes API test server (SelfSubjectAccessReview included); every broken
part named, and the exit code says whether the config loads (2) and whether all works (3)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.doctor import diagnose
from auditor.exit_codes import ExitCode
from tests.conftest import GitRepo, run_cli, run_main
from tests.kubeapi.builders import configmap, deployment
from tests.kubeapi.server import Denial, KubeAPIServer

OBJECTS = [configmap("features"), deployment("scorer")]


@pytest.fixture
def kube() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token="doctor-token") as server:
        server.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}})
        yield server


@pytest.fixture
def setup(tmp_path: Path, git_repo: GitRepo, kube: KubeAPIServer) -> dict[str, Any]:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(OBJECTS))
    git_repo.commit()
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")
    return {
        "git": {"repo": str(git_repo.path)},
        "clusters": [{"name": "prod", "kubeconfig": str(kubeconfig), "context": "test"}],
        "store": str(tmp_path / "state" / "audit.db"),
        "report": str(tmp_path / "state" / "report.md"),
    }


def write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "auditor.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def parts(document: dict[str, Any], tmp_path: Path) -> dict[str, tuple[bool, str]]:
    diagnosis = diagnose(write(tmp_path, document))
    return {c.part: (c.ok, c.detail) for c in diagnosis.checks}


def test_a_working_setup_passes_every_check(setup: dict[str, Any], tmp_path: Path) -> None:
    found = parts(setup, tmp_path)
    assert list(found) == [
        "config",
        "git",
        "cluster prod",
        "cluster prod: list configmaps in ml",
        "cluster prod: list deployments.apps in ml",
        "policy",
        "store",
        "report",
    ]
    assert all(ok for ok, _ in found.values()), found
    assert found["policy"][1] == (
        "12 policies from builtin, on regorus's compiled VM (its interpreter checks a sample)"
    )
    assert "2 objects" in found["git"][1]
    assert "v1.31.4" in found["cluster prod"][1]
    assert found["cluster prod: list configmaps in ml"][1].startswith("allowed")
    assert not (tmp_path / "state").exists()  # checked, nothing created


def test_every_broken_part_is_named(
    setup: dict[str, Any], tmp_path: Path, kube: KubeAPIServer
) -> None:
    kube.deny(Denial(resource="deployments", group="apps", namespace="ml"))
    (tmp_path / "a-file").write_text("not a folder")
    broken = {
        **setup,
        "git": {"repo": setup["git"]["repo"], "revision": "no-such-branch"},
        # the kinds are named, so they are checked even though Git cannot be read
        "scope": {"kinds": ["core/ConfigMap", "apps/Deployment"], "namespaces": ["ml"]},
        "store": str(tmp_path / "a-file" / "audit.db"),
        "trust": {
            "authorities": [{"name": "release", "key": "keys/missing.pub"}],
            "models": [{"match": {"namespace": "*", "name": "*"}, "require": ["release"]}],
        },
    }
    found = parts(broken, tmp_path)
    failed = {part for part, (ok, _) in found.items() if not ok}
    assert failed == {"git", "trust", "cluster prod: list deployments.apps in ml", "store"}
    assert "no-such-branch" in found["git"][1]
    assert "missing.pub" in found["trust"][1]
    assert "forbidden" in found["cluster prod: list deployments.apps in ml"][1]
    assert found["cluster prod: list configmaps in ml"][0] is True
    assert "a-file" in found["store"][1]


def test_the_cli_prints_a_table_and_exits_3_naming_the_broken_parts(
    setup: dict[str, Any],
    tmp_path: Path,
    kube: KubeAPIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kube.deny(Denial(resource="configmaps"))
    result = run_main(capsys, "doctor", "--config", write(tmp_path, setup))
    assert result.code == ExitCode.INCOMPLETE
    row = next(line for line in result.out.splitlines() if "list configmaps in ml" in line)
    assert "BROKEN" in row
    assert "1 broken: cluster prod: list configmaps in ml" in result.err


def test_the_cli_exits_0_with_json_when_all_works(
    setup: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_main(capsys, "doctor", "--config", write(tmp_path, setup), "-o", "json")
    assert result.code == ExitCode.CLEAN, result.err
    document = json.loads(result.out)
    assert document["ok"] is True
    assert {"part": "config", "ok": True}.items() <= document["checks"][0].items()


def test_an_unreachable_cluster_is_named_and_its_kinds_not_asked(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = Path(setup["clusters"][0]["kubeconfig"])
    kubeconfig.write_text(
        kubeconfig.read_text().replace(
            yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"],
            f"http://127.0.0.1:{port}",
        )
    )
    found = parts(setup, tmp_path)
    assert found["cluster prod"][0] is False
    assert "unreachable" in found["cluster prod"][1] and str(port) in found["cluster prod"][1]
    assert not any(p.startswith("cluster prod: list") for p in found)


def test_rejected_credentials_are_named(
    setup: dict[str, Any], tmp_path: Path, kube: KubeAPIServer
) -> None:
    kube.write_kubeconfig(setup["clusters"][0]["kubeconfig"], context="test", token="wrong")
    found = parts(setup, tmp_path)
    assert found["cluster prod"] == (False, found["cluster prod"][1])
    assert "HTTP 401" in found["cluster prod"][1]


def test_an_unknown_context_is_named(setup: dict[str, Any], tmp_path: Path) -> None:
    setup["clusters"][0]["context"] = "staging"
    found = parts(setup, tmp_path)
    assert found["cluster prod"][0] is False and "staging" in found["cluster prod"][1]


def test_a_config_that_does_not_load_is_exit_2_and_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text("git: {repo: .}\nclusterz: []\n")
    result = run_cli("doctor", "--config", str(path))
    assert result.code == ExitCode.USAGE
    assert "clusterz" in result.out and "Traceback" not in result.err


def test_a_snapshot_cluster_needs_its_file(setup: dict[str, Any], tmp_path: Path) -> None:
    setup["clusters"] = [{"name": "prod", "snapshot": str(tmp_path / "missing.yaml")}]
    found = parts(setup, tmp_path)
    assert found["cluster prod"][0] is False and "missing.yaml" in found["cluster prod"][1]


def test_the_policy_engine_is_named_with_why_the_interpreter_is_used(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    off = parts({**setup, "policy": {"paths": ["builtin"], "vm": False}}, tmp_path)
    assert off["policy"] == (
        True,
        "12 policies from builtin, on regorus's interpreter (policy.vm: false)",
    )
    own = tmp_path / "own"
    own.mkdir()
    (own / "walks.rego").write_text(
        "package own.walks\n\nimport rego.v1\n\n"
        'deny contains p if {\n\twalk(input.resource, [p, v])\n\tv == "latest"\n}\n'
    )
    forced = parts({**setup, "policy": {"paths": [str(own)], "vm": True}}, tmp_path)
    ok, detail = forced["policy"]
    assert ok
    assert detail.startswith(f"1 policy from {own}, on regorus's interpreter: ")
    assert "walk" in detail
    mixed = parts({**setup, "policy": {"paths": ["builtin", str(own)]}}, tmp_path)
    assert mixed["policy"][1].endswith(
        "on regorus's interpreter (policy.vm: auto, and these are not the shipped library alone)"
    )
    assert parts({**setup, "policy": {"enabled": False}}, tmp_path).get("policy") is None


def test_a_policy_that_does_not_load_is_named_with_its_file(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "broken.rego").write_text("package own.broken\n\ndeny contains x if {\n")
    ok, detail = parts({**setup, "policy": {"paths": [str(own)]}}, tmp_path)["policy"]
    assert not ok
    assert str(own / "broken.rego") in detail
