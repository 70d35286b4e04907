"""Provenance settings never silently do nothing: each either takes effect or is refused.

`provenance.commit_signers` needs no trust policy (its trust material is the signer files): it
verifies the audited commit with or without a `trust:` section. The settings that only feed
the verification of models (`provenance.attestations`, `provenance.lockfile`,
`provenance.lockfile_stages`, `models.root`) do nothing without a `trust:` section, and are
refused naming the key and its line (exit 2). The real CLI over a real Git repository.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GitRepo, run_cli
from tests.provenance.attestation_factory import make_key

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "scorer", "namespace": "ml-prod"},
    "spec": {"predictor": {"model": {"storageUri": "gs://models/scorer/v1"}}},
}


def trust(tmp_path: Path) -> dict[str, Any]:
    key = make_key(tmp_path / "keys", "p256", "release-key")
    return {
        "authorities": [{"name": "release-key", "key": str(key.pem_path)}],
        "models": [{"match": {"namespace": "ml-*"}, "require": ["release-key"]}],
    }


@pytest.fixture
def gitops(git_repo: GitRepo, tmp_path: Path) -> tuple[GitRepo, Path]:
    """A repository at an unsigned commit, and the snapshot of its one object."""
    git_repo.write("ml/scorer.yaml", yaml.safe_dump(ISVC))
    git_repo.commit()
    snapshot = tmp_path / "live.json"
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [ISVC]}))
    return git_repo, snapshot


def write_config(tmp_path: Path, repo: GitRepo, snapshot: Path, text: str) -> Path:
    """auditor.yaml: Git and cluster first, then `text` (YAML, so lines are known)."""
    path = tmp_path / "auditor.yaml"
    base = {
        "git": {"repo": str(repo.path), "paths": ["ml"]},
        "clusters": [{"name": "prod", "snapshot": str(snapshot)}],
        "store": str(tmp_path / "audit.db"),
    }
    path.write_text(yaml.safe_dump(base) + text)
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def audit(config: Path) -> Any:
    return run_cli("audit", "--config", str(config), "-o", "json")


def assert_refused(config: Path, key: str, reason: str) -> None:
    """`auditor audit` exits 2 naming the file, the key's line, the key and why."""
    result = audit(config)
    assert result.code == 2, result.err
    assert key in result.err and reason in result.err
    assert f"{config}:{line_of(config, key.rsplit('.', 1)[-1] + ':')}" in result.err
    assert "Traceback" not in result.err


# --- commit signers without a trust policy ----------------------------------------------------


def test_commit_signers_without_a_trust_section_still_verify_the_audited_commit(
    gitops: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    repo, snapshot = gitops
    signers = tmp_path / "allowed_signers"
    signers.write_text("release@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    config = write_config(
        tmp_path,
        repo,
        snapshot,
        f"provenance:\n  commit_signers:\n    ssh_allowed_signers: {signers}\n",
    )
    result = audit(config)
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert [f["check"] for f in doc["findings"] if f["category"] == "provenance"] == [
        "provenance.commit_unsigned"
    ]
    db = sqlite3.connect(tmp_path / "audit.db")
    rows = db.execute(
        "select attestation, verified from attestations where run_id = ?", (doc["run"]["id"],)
    )
    assert rows.fetchall() == [("commit", 0)]
    assert doc["run"]["status"] == "complete"
    # the model is still unverified, and its policy input says why: no trust policy
    (messages,) = db.execute(
        "select messages from evaluations where run_id = ? "
        "and policy = 'auditor.provenance.model_signed'",
        (doc["run"]["id"],),
    ).fetchone()
    assert "no `trust:` section" in messages


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("provenance:\n  commit_signers: {}\n", "provenance.commit_signers"),
        (
            "provenance:\n  commit_signers:\n    gpg_keys: []\n",
            "provenance.commit_signers.gpg_keys",
        ),
    ],
    ids=["no-signers", "empty-gpg-keys"],
)
def test_commit_signers_naming_no_signer_are_refused(
    gitops: tuple[GitRepo, Path], tmp_path: Path, text: str, key: str
) -> None:
    assert_refused(write_config(tmp_path, *gitops, text), key, "no commit would be verified")


# --- settings that only feed model verification ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "provenance:\n  attestations: attestations/{namespace}/{name}\n",
            "provenance.attestations",
        ),
        ("provenance:\n  lockfile: dvc.lock\n", "provenance.lockfile"),
        ("provenance:\n  lockfile_stages: prepare-{name}\n", "provenance.lockfile_stages"),
        ("models:\n  root: /mnt/models\n", "models.root"),
    ],
    ids=["attestations", "lockfile", "lockfile_stages", "models-root"],
)
def test_model_settings_without_a_trust_section_are_refused(
    gitops: tuple[GitRepo, Path], tmp_path: Path, text: str, key: str
) -> None:
    assert_refused(write_config(tmp_path, *gitops, text), key, "no trust: section")
    assert not (tmp_path / "audit.db").exists()  # refused before anything ran


def test_lockfile_stages_without_a_lockfile_are_refused(
    gitops: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    text = (
        yaml.safe_dump({"trust": trust(tmp_path)})
        + "provenance:\n  lockfile_stages: prepare-{name}\n"
    )
    config = write_config(tmp_path, *gitops, text)
    assert_refused(config, "provenance.lockfile_stages", "there is no lockfile")


def test_model_settings_with_a_trust_section_are_accepted(
    gitops: tuple[GitRepo, Path], tmp_path: Path
) -> None:
    repo, snapshot = gitops
    repo.write("dvc.lock", "schema: '2.0'\nstages: {}\n")
    repo.commit()
    text = yaml.safe_dump(
        {
            "trust": trust(tmp_path),
            "models": {"root": str(tmp_path / "models")},
            "provenance": {
                "attestations": "attestations/{namespace}/{name}",
                "lockfile": "dvc.lock",
                "lockfile_stages": "prepare-{name}",
            },
        }
    )
    result = audit(write_config(tmp_path, repo, snapshot, text))
    assert result.code in (0, 1), result.err  # findings, not a refused config
