"""The audited commit's signature, once per run, when `provenance.commit_signers` is set.

Git verifies it with the allowed signers auditor supplies and no others (`gitsig`); an unsigned
commit is `provenance.commit_unsigned`, one signed by anyone else
`provenance.commit_signature_invalid`. The findings are filed under the repository itself, as
a `GitRepository` of auditor's own API group.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.config import ProvenanceSettings
from auditor.model import Attestation, Finding, ResourceRef
from auditor.provenance.gitsig import commit_finding, verify_commit
from auditor.serving import AUDITOR_API_VERSION


@dataclass(frozen=True, slots=True)
class CommitCheck:
    findings: tuple[Finding, ...]
    attestations: tuple[Attestation, ...]


def check_commit(git_dir: str, repo: str, commit: str, settings: ProvenanceSettings) -> CommitCheck:
    """The signature of `commit` in the repository at `git_dir` (`repo` as messages name it).

    Raises AuditorError when Git cannot read the commit or the signer files are unusable.
    """
    ref = ResourceRef(
        cluster="", api_version=AUDITOR_API_VERSION, kind="GitRepository", namespace="", name=repo
    )
    signature = verify_commit(
        Path(git_dir),
        commit,
        allowed_ssh_signers=Path(settings.ssh_allowed_signers)
        if settings.ssh_allowed_signers
        else None,
        allowed_gpg_keys=[Path(k) for k in settings.gpg_keys],
    )
    finding = commit_finding(signature, ref=ref, repo=repo)
    record = Attestation(
        ref=ref,
        attestation="commit",
        verified=signature.verified,
        source=f"{repo}@{commit}",
        subject_digest=f"gitCommit:{signature.commit}",
        identity=signature.signer or None,
        reason=signature.reason or None,
        details=signature.to_json(),
    )
    return CommitCheck((finding,) if finding is not None else (), (record,))
