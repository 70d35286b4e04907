"""The attestation directory of a serving resource, at the audited commit.

Git names it (the annotation `auditor.gitops.ml/attestations`) or config does
(`provenance.attestations`, a template over namespace and name). Git content is untrusted: a
directory that leaves the repository is refused (`provenance.attestation_path_invalid`), and
the model is then judged as if it had no attestations at all, which fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor import checks
from auditor.config import ProvenanceSettings
from auditor.model import CommitFiles, Finding, Resource, ResourceRef, short_sha
from auditor.provenance.gitfiles import AttestationFiles, AttestationPathError, attestation_files
from auditor.serving import ATTESTATIONS_ANNOTATION, serving_annotations

NOWHERE = AttestationFiles(directory="", exists=False)


@dataclass(frozen=True, slots=True)
class AttestationDirectory:
    """What the resource's attestation directory holds, and why it was refused, if it was."""

    files: AttestationFiles
    commit: str
    finding: Finding | None = None  # provenance.attestation_path_invalid

    @property
    def shown(self) -> str:
        """`attestations/ml/scorer@1a2b3c4d5e6f`: how messages name the directory."""
        return f"{self.files.directory}@{short_sha(self.commit)}"

    @property
    def at(self) -> str | None:
        """The directory as the policy input names it; None when the commit has no such one."""
        return self.shown if self.files.exists else None


def attestation_directory(
    files: CommitFiles, settings: ProvenanceSettings, ref: ResourceRef, desired: Resource
) -> AttestationDirectory:
    """The directory Git's annotation or config names for `desired`, read from the commit."""
    given = serving_annotations(desired.body).get(ATTESTATIONS_ANNOTATION)
    if isinstance(given, str) and given.strip():
        where, directory = f"annotation {ATTESTATIONS_ANNOTATION}", given
    elif settings.attestations:
        where = "provenance.attestations"
        directory = settings.attestations.format(namespace=ref.namespace, name=ref.name)
    else:
        return AttestationDirectory(NOWHERE, files.commit)
    try:
        return AttestationDirectory(attestation_files(files, directory), files.commit)
    except AttestationPathError as exc:
        refused = checks.finding(
            checks.ATTESTATION_PATH_INVALID,
            ref,
            "/metadata/annotations/auditor.gitops.ml~1attestations",
            f"{ref.display()}: attestation directory {directory!r} ({where}) refused: {exc}",
            actual=directory,
        )
        return AttestationDirectory(NOWHERE, files.commit, refused)
