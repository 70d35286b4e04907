"""Git commit signatures: is the audited commit signed by a signer the repository allows?

Git does the verification (`git verify-commit --raw`), with trust material auditor supplies and
nothing else: an SSH allowed-signers file (`gpg.format=ssh`), or OpenPGP public keys imported
into a throwaway GNUPGHOME, so the keys on the machine running the audit never count. The
programs are pinned on the command line (`-c gpg.program=gpg`), which overrides any
`gpg.program` a repository's own config might name.

Results are plain values (`CommitSignature`); `commit_finding` turns a failure into the
finding `provenance.commit_unsigned` or `provenance.commit_signature_invalid`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from auditor import checks
from auditor.errors import ConfigError, SourceError
from auditor.model import Finding, ResourceRef
from auditor.tempdirs import make_temp_dir

SignatureFormat = Literal["ssh", "gpg", "x509", ""]

_TIMEOUT = 60
_SIG_HEADERS = (b"gpgsig ", b"gpgsig-sha256 ")
_FORMATS: dict[bytes, SignatureFormat] = {
    b"-----BEGIN SSH SIGNATURE-----": "ssh",
    b"-----BEGIN PGP SIGNATURE-----": "gpg",
    b"-----BEGIN SIGNED MESSAGE-----": "x509",
}
# `Good "git" signature for alice@example.com with ED25519 key SHA256:abc...`
_SSH_GOOD = re.compile(r'Good "git" signature for (?P<principal>.+?) with (?P<key>\S+ key \S+)')
_GPG_VALIDSIG = re.compile(r"^\[GNUPG:\] VALIDSIG (?P<fpr>[0-9A-F]+)", re.MULTILINE)
_GPG_GOODSIG = re.compile(r"^\[GNUPG:\] GOODSIG (?P<keyid>[0-9A-F]+) (?P<uid>.*)$", re.MULTILINE)
_GPG_BAD = re.compile(
    r"^\[GNUPG:\] (?P<status>BADSIG|ERRSIG|EXPSIG|EXPKEYSIG|REVKEYSIG|NO_PUBKEY)\b(?P<rest>.*)$",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class CommitSignature:
    """Whether a commit is signed by an allowed signer; `reason` is the check id when not."""

    commit: str
    verified: bool
    signer: str  # `alice@example.com (ED25519 key SHA256:...)`, `Alice <a@x> (FPR)`, or ""
    reason: str  # "" when verified, else the check id (commit_unsigned, _signature_invalid)
    detail: str  # what a person reads: why it failed, or who signed
    format: SignatureFormat = ""

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit,
            "verified": self.verified,
            "signer": self.signer,
            "format": self.format,
            "reason": self.reason,
            "detail": self.detail,
        }


def _git(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=repo,
            capture_output=True,
            timeout=_TIMEOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except FileNotFoundError:
        raise SourceError("git is not installed", hint="install git to verify commits") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {args[0]} timed out after {_TIMEOUT}s", file=str(repo)) from None


def signature_format(raw_commit: bytes) -> SignatureFormat:
    """Which kind of signature a raw commit object carries ("" for none)."""
    header, _, _ = raw_commit.partition(b"\n\n")
    for line in header.split(b"\n"):
        if line.startswith(_SIG_HEADERS):
            armor = line.split(b" ", 1)[1].strip()
            return _FORMATS.get(armor, "gpg" if b"PGP" in armor else "x509")
    return ""


def _read_commit(repo: Path, commit: str) -> tuple[str, bytes]:
    resolved = _git(repo, "rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}")
    if resolved.returncode != 0:
        raise SourceError(f"commit {commit} is not in the repository", file=str(repo))
    sha = resolved.stdout.decode().strip()
    raw = _git(repo, "cat-file", "commit", sha)
    if raw.returncode != 0:  # pragma: no cover - rev-parse just found it
        raise SourceError(f"cannot read commit {sha}", file=str(repo))
    return sha, raw.stdout


def verify_commit(
    repo: Path,
    commit: str,
    *,
    allowed_ssh_signers: Path | None = None,
    allowed_gpg_keys: Sequence[Path] = (),
) -> CommitSignature:
    """Verifies the signature of `commit` in the Git repository at `repo`.

    SSH signatures verify against `allowed_ssh_signers` (the `gpg.ssh.allowedSignersFile`
    format); OpenPGP signatures against the public keys in `allowed_gpg_keys` (armored or
    binary exports) and no other. An unsigned commit, a signature of a kind with no allowed
    signers, and a signature Git does not accept are all results, not exceptions; `SourceError`
    only when Git cannot read the commit, `ConfigError` when trust material is unusable.
    """
    sha, raw = _read_commit(repo, commit)
    kind = signature_format(raw)
    if not kind:
        return CommitSignature(
            sha, False, "", checks.COMMIT_UNSIGNED, f"commit {sha[:12]} is not signed"
        )
    if kind == "ssh":
        if allowed_ssh_signers is None:
            return _invalid(
                sha, kind, "it is SSH-signed, and no allowed SSH signers are configured"
            )
        return _verify_ssh(repo, sha, allowed_ssh_signers)
    if kind == "gpg":
        if not allowed_gpg_keys:
            return _invalid(
                sha, kind, "it is OpenPGP-signed, and no allowed GPG keys are configured"
            )
        return _verify_gpg(repo, sha, allowed_gpg_keys)
    return _invalid(
        sha, kind, "it carries an X.509 (gpgsm) signature, which auditor does not accept"
    )


def _invalid(sha: str, kind: SignatureFormat, why: str, signer: str = "") -> CommitSignature:
    return CommitSignature(
        sha,
        False,
        signer,
        checks.COMMIT_SIGNATURE_INVALID,
        f"the signature of commit {sha[:12]} is not accepted: {why}",
        kind,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _verify_ssh(repo: Path, sha: str, allowed: Path) -> CommitSignature:
    if not allowed.is_file():
        raise ConfigError("allowed SSH signers file does not exist", file=str(allowed))
    if shutil.which("ssh-keygen") is None:
        raise SourceError("ssh-keygen is not installed: SSH commit signatures cannot be verified")
    proc = _git(
        repo,
        "-c",
        "gpg.format=ssh",
        "-c",
        "gpg.ssh.program=ssh-keygen",
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed.resolve()}",
        "verify-commit",
        "--raw",
        sha,
    )
    output = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    good = _SSH_GOOD.search(output)
    if proc.returncode == 0 and good:
        signer = f"{good['principal']} ({good['key']})"
        return CommitSignature(sha, True, signer, "", f"signed by {signer}", "ssh")
    if "No principal matched" in output or "no principal matched" in output.lower():
        why = "its SSH key is not in the allowed signers file"
    else:
        why = _last_line(output)
    return _invalid(sha, "ssh", why)


@contextmanager
def temporary_gnupghome() -> Iterator[Path]:
    """A private GNUPGHOME, removed afterwards with any agent gpg started for it.

    Short path on purpose: gpg-agent's socket lives inside it, and Unix socket paths are
    limited to about 100 bytes.
    """
    home = make_temp_dir("gpg")
    home.chmod(0o700)
    try:
        yield home
    finally:
        if shutil.which("gpgconf"):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                capture_output=True,
                timeout=_TIMEOUT,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _verify_gpg(repo: Path, sha: str, keys: Sequence[Path]) -> CommitSignature:
    if shutil.which("gpg") is None:
        raise SourceError("gpg is not installed: OpenPGP commit signatures cannot be verified")
    for key in keys:
        if not key.is_file():
            raise ConfigError("allowed GPG key file does not exist", file=str(key))
    with temporary_gnupghome() as home:
        env = {"GNUPGHOME": str(home), "LC_ALL": "C"}
        imported = subprocess.run(
            ["gpg", "--batch", "--quiet", "--import", *[str(k) for k in keys]],
            capture_output=True,
            timeout=_TIMEOUT,
            env={**os.environ, **env},
            check=False,
        )
        if imported.returncode != 0:
            raise ConfigError(
                f"gpg cannot import the allowed keys: {_last_line(imported.stderr.decode(errors='replace'))}",
                file=", ".join(str(k) for k in keys),
            )
        proc = _git(
            repo,
            "-c",
            "gpg.format=openpgp",
            "-c",
            "gpg.program=gpg",
            "-c",
            "gpg.minTrustLevel=undefined",
            "verify-commit",
            "--raw",
            sha,
            env=env,
        )
    status = proc.stderr.decode(errors="replace") + proc.stdout.decode(errors="replace")
    valid = _GPG_VALIDSIG.search(status)
    good = _GPG_GOODSIG.search(status)
    if proc.returncode == 0 and valid and good:
        signer = f"{good['uid']} ({valid['fpr']})"
        return CommitSignature(sha, True, signer, "", f"signed by {signer}", "gpg")
    bad = _GPG_BAD.search(status)
    if bad is None:
        why = _last_line(status)
    elif bad["status"] in ("ERRSIG", "NO_PUBKEY"):
        keyid = bad["rest"].split()[0] if bad["rest"].split() else "?"
        why = f"it is signed by key {keyid}, which is not among the allowed GPG keys"
    elif bad["status"] == "BADSIG":
        why = "the signature does not match the commit (BADSIG)"
    else:
        why = f"gpg reports {bad['status']}"
    return _invalid(sha, "gpg", why)


def commit_finding(
    signature: CommitSignature, *, ref: ResourceRef, repo: str = ""
) -> Finding | None:
    """The finding for a commit that is not signed by an allowed signer; None when it is.

    `ref` is the object the finding is filed under (the audit binding chooses it: the
    Application or repository the commit belongs to); `repo` names the repository in the message.
    """
    if signature.verified:
        return None
    where = f" of {repo}" if repo else ""
    return checks.finding(
        signature.reason,
        ref,
        "/git/commit",
        f"{ref.display()}: commit {signature.commit[:12]}{where}: {signature.detail}",
        expected="signed by an allowed signer",
        actual=signature.signer
        or ("unsigned" if signature.reason == checks.COMMIT_UNSIGNED else None),
        details={"commit": signature.commit, "format": signature.format},
    )


__all__ = [
    "CommitSignature",
    "commit_finding",
    "signature_format",
    "temporary_gnupghome",
    "verify_commit",
]
