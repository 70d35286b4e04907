"""`auditor audit` verifies the provenance of what serves models: the real CLI over a real Git
repository holding signed attestations, a live snapshot, and the store it writes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.config import parse_config
from auditor.provenance import signing as ms
from tests.conftest import GitRepo, run_cli
from tests.provenance.attestation_factory import (
    SigningKey,
    dvc_lock,
    make_key,
    private_pem,
    sign_envelope,
    statement_bytes,
)
from tests.provenance.conftest import make_model, sign_with_key

NS = "ml-prod"


def isvc(name: str, digest: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {
                "auditor.gitops.ml/model-digest": digest,
                "auditor.gitops.ml/attestations": f"attestations/{name}",
            },
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": f"gs://models/{name}/v1",
                }
            }
        },
    }


class Setup:
    def __init__(self, tmp: Path, repo: GitRepo) -> None:
        self.tmp, self.repo = tmp, repo
        self.key: SigningKey = make_key(tmp / "keys", "p256", "release-key")
        private = tmp / "keys" / "release.key"
        private.write_bytes(private_pem(self.key))
        self.model = make_model(tmp / "models" / "models" / "scorer" / "v1")
        self.bundle = sign_with_key(self.model, private, tmp / "model.sig")
        bundle = json.loads(self.bundle.read_text())
        import base64

        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        self.digest = "sha256:" + statement["subject"][0]["digest"]["sha256"]
        self.store = tmp / "audit.db"

    def write(self, *, declared: str | None = None, trust: bool = True, **provenance: Any) -> Path:
        body = isvc("scorer", declared or self.digest)
        self.repo.write("ml/scorer.yaml", yaml.safe_dump(body))
        self.repo.write("attestations/scorer/model.sig", self.bundle.read_bytes())
        self.repo.write(
            "attestations/scorer/provenance.intoto.json",
            sign_envelope(statement_bytes(subject_digest=self.digest), [self.key]),
        )
        self.repo.write("dvc.lock", dvc_lock())
        self.repo.commit()
        snapshot = self.tmp / "live.json"
        snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [body]}))
        config: dict[str, Any] = {
            "git": {"repo": str(self.repo.path), "paths": ["ml"]},
            "clusters": [{"name": "prod", "snapshot": str(snapshot)}],
            "store": str(self.store),
        }
        if trust:
            config["models"] = {"root": str(self.tmp / "models")}  # nothing to do without trust
            config["trust"] = {
                "authorities": [{"name": "release-key", "key": str(self.key.pem_path)}],
                "models": [{"match": {"namespace": NS}, "require": ["release-key"]}],
                "datasets": {"lockfile": str(self.repo.path / "dvc.lock")},
            }
        if provenance:
            config["provenance"] = provenance
        path = self.tmp / "auditor.yaml"
        path.write_text(yaml.safe_dump(config))
        parse_config(config, source=str(path))  # a typo here should fail here, not in the CLI
        return path

    def audit(self, config: Path) -> tuple[int, dict[str, Any]]:
        result = run_cli("audit", "--config", str(config), "--fail-on", "critical", "-o", "json")
        assert result.out, result.err
        return result.code, json.loads(result.out)

    def rows(self, query: str, run_id: str) -> list[tuple[Any, ...]]:
        return sqlite3.connect(self.store).execute(query, (run_id,)).fetchall()


@pytest.fixture
def setup(tmp_path: Path, git_repo: GitRepo) -> Setup:
    ms.clear_cache()
    return Setup(tmp_path, git_repo)


def provenance_findings(doc: dict[str, Any]) -> list[str]:
    return sorted(f["check"] for f in doc["findings"] if f["category"] == "provenance")


def model_signed(setup: Setup, run_id: str) -> tuple[str, str]:
    (result, messages) = setup.rows(
        "select result, messages from evaluations where run_id = ? "
        "and policy = 'auditor.provenance.model_signed'",
        run_id,
    )[0]
    return result, messages


def test_signed_model_verifies_and_passes_the_signature_policy(setup: Setup) -> None:
    code, doc = setup.audit(setup.write())
    assert code == 0, doc["findings"]
    assert doc["run"]["status"] == "complete"
    assert provenance_findings(doc) == []
    rows = setup.rows(
        "select attestation, verified, authority, subject_digest, bundle_digest, source "
        "from attestations where run_id = ? order by attestation",
        doc["run"]["id"],
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("model-signature", 1, "release-key", setup.digest),
        ("slsa-provenance", 1, "release-key", setup.digest),
    ]
    assert all(r[4].startswith("sha256:") for r in rows)
    assert rows[0][5].startswith("attestations/scorer/model.sig@")
    assert model_signed(setup, doc["run"]["id"])[0] == "pass"
    assert doc["run"]["counts"]["attestations_verified"] == 2


def test_declared_digest_not_signed_exits_1_with_digest_mismatch(setup: Setup) -> None:
    code, doc = setup.audit(setup.write(declared="sha256:" + "5" * 64))
    assert code == 1
    assert "provenance.digest_mismatch" in provenance_findings(doc)
    result, messages = model_signed(setup, doc["run"]["id"])
    assert result == "fail" and "sha256:5555" in messages
    verified = setup.rows(
        "select verified, reason from attestations where run_id = ? "
        "and attestation = 'model-signature'",
        doc["run"]["id"],
    )
    assert verified == [(0, "provenance.digest_mismatch")]


def test_tampered_model_file_exits_1(setup: Setup) -> None:
    (setup.model / "config.json").write_bytes(b'{"layers": 3}\n')
    code, doc = setup.audit(setup.write())
    assert code == 1
    assert provenance_findings(doc) == ["provenance.digest_mismatch"]


def test_without_trust_policy_models_fail_closed_in_policy_only(setup: Setup) -> None:
    code, doc = setup.audit(setup.write(trust=False))
    assert provenance_findings(doc) == []
    assert setup.rows("select * from attestations where run_id = ?", doc["run"]["id"]) == []
    result, messages = model_signed(setup, doc["run"]["id"])
    assert result == "fail" and "no `trust:` section" in messages
    assert code == 1  # model_signed is critical


def test_unreadable_lockfile_makes_the_run_incomplete(setup: Setup) -> None:
    code, doc = setup.audit(setup.write(lockfile="missing/dvc.lock"))
    assert code == 3
    assert doc["run"]["status"] == "incomplete"
    errors = setup.rows("select stage, message from errors where run_id = ?", doc["run"]["id"])
    assert errors and errors[0][0] == "provenance" and "missing/dvc.lock" in errors[0][1]
    stored = setup.rows("select status from runs where id = ?", doc["run"]["id"])
    assert stored == [("incomplete",)]


def test_drift_command_does_no_provenance(setup: Setup) -> None:
    config = setup.write(declared="sha256:" + "5" * 64)
    result = run_cli("drift", "--config", str(config), "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["findings"] == []


def test_live_cluster_pods_give_the_running_digest_of_an_oci_model(
    setup: Setup, tmp_path: Path
) -> None:
    from tests.kubeapi.server import KubeAPIServer

    body = isvc("scorer", setup.digest)
    body["spec"]["predictor"]["model"]["storageUri"] = (
        f"oci://registry.acme.io/models/scorer@{setup.digest}"
    )
    del body["metadata"]["annotations"]["auditor.gitops.ml/model-digest"]
    config_path = setup.write()  # attestations, lockfile, config
    setup.repo.write("ml/scorer.yaml", yaml.safe_dump(body))
    setup.repo.commit()
    other = "sha256:" + "7" * 64
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "scorer-predictor-1",
            "namespace": NS,
            "labels": {"serving.kserve.io/inferenceservice": "scorer"},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}
            ],
        },
        "spec": {"containers": [{"name": "modelcar", "image": "registry.acme.io/models/scorer"}]},
        "status": {
            "containerStatuses": [
                {
                    "name": "modelcar",
                    "image": "registry.acme.io/models/scorer:v1",
                    "imageID": f"registry.acme.io/models/scorer@{other}",
                }
            ]
        },
    }
    with KubeAPIServer() as kube:
        kube.add_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
        kube.add_all([body, pod])
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")
        config = yaml.safe_load(config_path.read_text())
        config["clusters"] = [{"name": "prod", "kubeconfig": str(kubeconfig), "context": "test"}]
        config_path.write_text(yaml.safe_dump(config))
        code, doc = setup.audit(config_path)
    assert code == 1
    assert doc["run"]["status"] == "complete"
    assert provenance_findings(doc) == ["provenance.running_digest_mismatch"]
    mismatch = next(f for f in doc["findings"] if f["category"] == "provenance")
    assert mismatch["expected"] == setup.digest and mismatch["actual"] == [other]
    # Pods are read for provenance only: never drift, never unmanaged
    assert [f for f in doc["findings"] if f["category"] == "drift"] == []
