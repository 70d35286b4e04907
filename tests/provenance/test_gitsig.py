"""Git commit signatures: real SSH and OpenPGP signed commits, made with fresh keys."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.checks import COMMIT_SIGNATURE_INVALID, COMMIT_UNSIGNED
from auditor.errors import SourceError
from auditor.model import ResourceRef
from auditor.provenance.gitsig import (
    commit_finding,
    signature_format,
    temporary_gnupghome,
    verify_commit,
)
from tests.gitrepo import GitRepo

REF = ResourceRef("", "argoproj.io/v1alpha1", "Application", "argocd", "fraud-scorer")

needs_ssh = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed: no SSH signing"
)
needs_gpg = pytest.mark.skipif(
    shutil.which("gpg") is None or shutil.which("gpgconf") is None,
    reason="gpg is not installed: no OpenPGP signing",
)


# --- SSH ---------------------------------------------------------------------------------------


@dataclass
class SshSigner:
    private: Path
    public_line: str  # `ssh-ed25519 AAAA... comment`


def ssh_key(directory: Path, name: str) -> SshSigner:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(private)],
        check=True,
        capture_output=True,
    )
    return SshSigner(private, (directory / f"{name}.pub").read_text().strip())


def allowed_signers(path: Path, *entries: tuple[str, SshSigner]) -> Path:
    path.write_text("".join(f"{principal} {signer.public_line}\n" for principal, signer in entries))
    return path


def ssh_signed_commit(repo: GitRepo, signer: SshSigner, message: str = "signed") -> str:
    repo.write("model.yaml", f"message: {message}\n")
    repo.git("add", "-A")
    repo.git(
        "-c",
        "gpg.format=ssh",
        "-c",
        f"user.signingkey={signer.private}",
        "commit",
        "-q",
        "-S",
        "-m",
        message,
    )
    return repo.head()


@pytest.fixture
def alice(tmp_path: Path) -> SshSigner:
    return ssh_key(tmp_path / "ssh", "alice")


@needs_ssh
def test_ssh_signed_commit_by_an_allowed_signer_verifies(
    git_repo: GitRepo, alice: SshSigner, tmp_path: Path
) -> None:
    sha = ssh_signed_commit(git_repo, alice)
    allowed = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", alice))
    result = verify_commit(git_repo.path, sha, allowed_ssh_signers=allowed)
    assert result.verified
    assert result.reason == ""
    assert result.format == "ssh"
    assert result.signer.startswith("alice@example.com (ED25519 key SHA256:")
    assert commit_finding(result, ref=REF) is None


@needs_ssh
def test_ssh_signed_commit_by_another_key_is_signature_invalid(
    git_repo: GitRepo, alice: SshSigner, tmp_path: Path
) -> None:
    mallory = ssh_key(tmp_path / "ssh", "mallory")
    sha = ssh_signed_commit(git_repo, mallory)
    allowed = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", alice))
    result = verify_commit(git_repo.path, sha, allowed_ssh_signers=allowed)
    assert not result.verified
    assert result.reason == COMMIT_SIGNATURE_INVALID
    assert "not in the allowed signers file" in result.detail


@needs_ssh
def test_ssh_signature_over_an_altered_commit_is_signature_invalid(
    git_repo: GitRepo, alice: SshSigner, tmp_path: Path
) -> None:
    sha = ssh_signed_commit(git_repo, alice, "release v3")
    raw = git_repo.git("cat-file", "commit", sha) + "\n"
    forged = (
        subprocess.run(
            ["git", "hash-object", "-t", "commit", "-w", "--stdin"],
            cwd=git_repo.path,
            input=raw.replace("release v3", "release v4").encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    allowed = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", alice))
    result = verify_commit(git_repo.path, forged, allowed_ssh_signers=allowed)
    assert result.reason == COMMIT_SIGNATURE_INVALID


@needs_ssh
def test_ssh_signed_commit_without_allowed_ssh_signers_is_signature_invalid(
    git_repo: GitRepo, alice: SshSigner
) -> None:
    sha = ssh_signed_commit(git_repo, alice)
    result = verify_commit(git_repo.path, sha)
    assert result.reason == COMMIT_SIGNATURE_INVALID
    assert "no allowed SSH signers are configured" in result.detail


def test_unsigned_commit_is_commit_unsigned(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("model.yaml", "x: 1\n")
    sha = git_repo.commit("unsigned")
    result = verify_commit(git_repo.path, sha, allowed_ssh_signers=tmp_path / "unused")
    assert not result.verified
    assert result.reason == COMMIT_UNSIGNED
    finding = commit_finding(result, ref=REF, repo="acme/gitops")
    assert finding is not None
    assert finding.check == "provenance.commit_unsigned"
    assert finding.category == "provenance"
    assert finding.message == (
        f"Application argocd/fraud-scorer: commit {sha[:12]} of acme/gitops: "
        f"commit {sha[:12]} is not signed"
    )


def test_unknown_commit_is_a_source_error(git_repo: GitRepo) -> None:
    git_repo.commit("first")
    with pytest.raises(SourceError, match="is not in the repository"):
        verify_commit(git_repo.path, "0" * 40)


def test_signature_format_reads_the_commit_header() -> None:
    header = b"tree abc\nauthor a\ngpgsig -----BEGIN SSH SIGNATURE-----\n x\n -----END SSH SIGNATURE-----\n\nmsg\n"
    assert signature_format(header) == "ssh"
    assert signature_format(header.replace(b"SSH SIGNATURE", b"PGP SIGNATURE")) == "gpg"
    assert signature_format(b"tree abc\n\ngpgsig -----BEGIN SSH SIGNATURE-----\n") == ""


# --- OpenPGP -----------------------------------------------------------------------------------


@dataclass
class GpgSigner:
    home: Path
    fingerprint: str
    public: Path  # armored export


def gpg_key(directory: Path, uid: str) -> tuple[GpgSigner, object]:
    context = temporary_gnupghome()
    home = context.__enter__()
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys", uid],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(
        line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
    )
    directory.mkdir(parents=True, exist_ok=True)
    public = directory / f"{fingerprint[-8:]}.asc"
    public.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", fingerprint],
            env=env,
            check=True,
            capture_output=True,
        ).stdout
    )
    return GpgSigner(home, fingerprint, public), context


@pytest.fixture
def gpg_signers(tmp_path: Path) -> Iterator[dict[str, GpgSigner]]:
    made = {
        name: gpg_key(tmp_path / "gpg", f"{name.title()} <{name}@example.com>")
        for name in ("alice", "mallory")
    }
    yield {name: signer for name, (signer, _) in made.items()}
    for _, context in made.values():
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def gpg_signed_commit(repo: GitRepo, signer: GpgSigner) -> str:
    repo.write("model.yaml", "signed: gpg\n")
    repo.git("add", "-A")
    subprocess.run(
        [
            "git",
            "-c",
            "gpg.program=gpg",
            "-c",
            f"user.signingkey={signer.fingerprint}",
            "commit",
            "-q",
            "-S",
            "-m",
            "gpg signed",
        ],
        cwd=repo.path,
        env={**os.environ, "GNUPGHOME": str(signer.home)},
        check=True,
        capture_output=True,
    )
    return repo.head()


@needs_gpg
def test_gpg_signed_commit_by_an_allowed_key_verifies(
    git_repo: GitRepo, gpg_signers: dict[str, GpgSigner]
) -> None:
    alice = gpg_signers["alice"]
    sha = gpg_signed_commit(git_repo, alice)
    result = verify_commit(git_repo.path, sha, allowed_gpg_keys=[alice.public])
    assert result.verified, result.detail
    assert result.format == "gpg"
    assert result.signer == f"Alice <alice@example.com> ({alice.fingerprint})"


@needs_gpg
def test_gpg_signed_commit_by_another_key_is_signature_invalid(
    git_repo: GitRepo, gpg_signers: dict[str, GpgSigner]
) -> None:
    sha = gpg_signed_commit(git_repo, gpg_signers["mallory"])
    result = verify_commit(git_repo.path, sha, allowed_gpg_keys=[gpg_signers["alice"].public])
    assert result.reason == COMMIT_SIGNATURE_INVALID
    assert "not among the allowed GPG keys" in result.detail
    finding = commit_finding(result, ref=REF)
    assert finding is not None
    assert finding.check == "provenance.commit_signature_invalid"


@needs_gpg
def test_gpg_signed_commit_without_allowed_gpg_keys_is_signature_invalid(
    git_repo: GitRepo, gpg_signers: dict[str, GpgSigner]
) -> None:
    sha = gpg_signed_commit(git_repo, gpg_signers["alice"])
    result = verify_commit(git_repo.path, sha, allowed_ssh_signers=None)
    assert "no allowed GPG keys are configured" in result.detail
