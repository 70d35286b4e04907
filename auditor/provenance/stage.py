"""The provenance stage of `auditor audit`: running == declared == signed, data == Git.

For each serving resource in scope (one whose desired or live body names a model) the checks
in `auditor.provenance.checks` run against the trust policy of auditor.yaml, in this order:
the attestation directory Git names, the model's signature and the digest Git declares (for
an OCI model, a signature over its image digest), the digest the pods of an OCI model run,
SLSA provenance and its datasets, an in-toto layout and whether its pipeline produced the model.
`project` turns their results into the resource's findings, attestation records and policy
document. Once per run, when configured, the audited commit's signature is checked too: with
or without a trust policy, since its trust material is its own signer files (without one, no
model is verified and each policy document says so).

The stage holds only what is per run: the bundles verified so far (the same bundles served in
several clusters are verified once), the lockfiles read so far, and what it has emitted. What
it cannot do (Git unreadable, trust material gone mid-run, lockfile missing) is a `StageError`:
the run is incomplete, never silently clean.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from auditor import checks
from auditor.config import Config, lockfile_in_repo
from auditor.errors import AuditorError, SourceError
from auditor.model import (
    Attestation,
    CommitFiles,
    Finding,
    ProvenanceResult,
    Resource,
    ResourceRef,
    ServedModel,
    StageError,
    StageOutcome,
    short_sha,
)
from auditor.provenance.bundles import BundleVerifier
from auditor.provenance.checks.attestations import attestation_directory
from auditor.provenance.checks.commit import check_commit
from auditor.provenance.checks.image import check_image_signature
from auditor.provenance.checks.layout import check_layout
from auditor.provenance.checks.running import check_running
from auditor.provenance.checks.signature import check_signature
from auditor.provenance.checks.slsa import check_slsa
from auditor.provenance.datasets import PinnedDatasets, pinned_datasets
from auditor.provenance.project import ResourceChecks, Undeclared, project
from auditor.serving import is_oci
from auditor.trust.policy import TrustPolicy

log = logging.getLogger(__name__)

STAGE = "provenance"

MatchKey = tuple[str, str, str, str]


class ProvenanceStage:
    """Verifies the provenance of every serving resource in scope; one instance per run.

    `start(repo, files)` after the desired stage has read the commit; `verify_commit()` once;
    `verify(...)` per cluster (its result feeds the policy inputs); `outcome()` at the end.
    """

    def __init__(
        self, config: Config, *, bundle_dir: Path | None = None, cache_models: bool = True
    ) -> None:
        """`bundle_dir` and `cache_models`: see `BundleVerifier` (the admission webhook keeps
        one folder of bundle files for all its decisions)."""
        if not config.verifies_provenance:
            raise ValueError("the provenance stage needs a trust policy or commit signers")
        self.config = config
        # None with commit signers alone: the commit is verified, no model is
        self.trust = config.trust
        self.settings = config.provenance
        self._lockfile = lockfile_in_repo(config) if config.trust is not None else None
        self._files: CommitFiles | None = None
        self._repo = ""
        self._bundles = (
            BundleVerifier(config.trust, folder=bundle_dir, cache_models=cache_models)
            if config.trust is not None
            else None
        )
        self._locks: dict[tuple[str, str], PinnedDatasets | SourceError] = {}
        self._findings: list[Finding] = []
        self._records: list[Attestation] = []
        self._errors: list[StageError] = []

    def start(self, repo: str, files: CommitFiles) -> None:
        """Reads attestations from the commit the desired stage read, through its reader."""
        self._repo, self._files = repo, files

    def close(self) -> None:
        if self._bundles is not None:
            self._bundles.close()

    def outcome(self) -> StageOutcome:
        self.close()
        return StageOutcome(
            findings=tuple(self._findings),
            attestations=tuple(self._records),
            errors=tuple(self._errors),
        )

    @property
    def files(self) -> CommitFiles:
        if self._files is None:
            raise RuntimeError("ProvenanceStage.start() was not called")
        return self._files

    def verify_commit(self) -> None:
        """The commit signature, once per run, when `provenance.commit_signers` is set."""
        if not self.settings.verifies_commits:
            return
        commit = self.files.commit
        try:
            result = check_commit(self.files.git_dir, self._repo, commit, self.settings)
        except AuditorError as exc:
            self._stage_error(exc.diagnostics(), f"commit {short_sha(commit)}")
            return
        self._findings.extend(result.findings)
        self._records.extend(result.attestations)

    def verify(
        self,
        cluster: str,
        served: Mapping[MatchKey, ServedModel],
        pods: Sequence[Resource] = (),
    ) -> dict[MatchKey, ProvenanceResult]:
        """Verifies every serving resource of one cluster (those of `served` whose Git or live
        body names a model); returns its policy documents. Without a trust policy nothing
        verifies a model, and each document says so."""
        if self.trust is None or self._bundles is None:
            return {
                key: ProvenanceResult.not_configured()
                for key, resource in served.items()
                if resource.model is not None
            }
        documents: dict[MatchKey, ProvenanceResult] = {}
        for key, resource in served.items():
            if not resource.serves_a_model:
                continue
            subject = resource.subject
            try:
                checked = self._check(subject.ref, resource, pods, self.trust, self._bundles)
                projection = project(checked)
            except (AuditorError, OSError) as exc:
                # what cannot be checked is unknown, not verified: the run says it is incomplete
                reason = exc.diagnostics() if isinstance(exc, AuditorError) else str(exc)
                shown = subject.ref.display()
                self._stage_error(f"{shown}: {reason}", shown, cluster)
                documents[key] = ProvenanceResult.unverified(
                    checks.INCOMPLETE, f"provenance could not be verified: {reason}"
                )
                continue
            self._findings.extend(projection.findings)
            self._records.extend(projection.attestations)
            documents[key] = projection.result
        return documents

    def _check(
        self,
        ref: ResourceRef,
        served: ServedModel,
        pods: Sequence[Resource],
        trust: TrustPolicy,
        bundles: BundleVerifier,
    ) -> ResourceChecks | Undeclared:
        desired, live, declared = served.desired, served.live, served.declared
        if desired is None or declared is None:
            return Undeclared(ref, in_git=desired is not None)
        rule = trust.rule_for(ref.namespace, ref.name)
        directory = attestation_directory(self.files, self.settings, ref, desired)
        if is_oci(declared):
            # the digest an OCI model runs is its image's: only a signature over it binds
            signature = check_image_signature(ref, declared, rule, directory, trust)
        else:
            signature = check_signature(
                ref,
                declared,
                rule,
                directory,
                bundles,
                models_root=self.config.models_root,
                trust_source=trust.source,
            )
        running = check_running(ref, live, declared, pods)
        slsa = check_slsa(
            ref,
            directory,
            model_digest=declared.digest or signature.digest,
            rule=rule,
            trust=trust,
            pinned=self._pinned(ref),
            max_bytes=self.config.limits.max_manifest_bytes,
        )
        return ResourceChecks(
            ref=ref,
            declared=declared,
            live=served.live_model,
            directory=directory,
            signature=signature,
            running=running,
            slsa=slsa,
            layout=check_layout(
                ref, rule, trust, directory.files, declared.digest or signature.digest
            ),
        )

    def _pinned(self, ref: ResourceRef) -> PinnedDatasets | None:
        """The datasets Git pins for `ref`; None when no lockfile is configured. Each lockfile
        is read once a run; one that cannot be read fails every resource that needs it."""
        if self._lockfile is None:
            return None
        path = self._lockfile.format(namespace=ref.namespace, name=ref.name)
        stages = self.settings.lockfile_stages.format(namespace=ref.namespace, name=ref.name)
        if (path, stages) not in self._locks:
            try:
                self._locks[path, stages] = pinned_datasets(self.files, path, stages)
            except SourceError as exc:
                self._locks[path, stages] = exc
        found = self._locks[path, stages]
        if isinstance(found, SourceError):
            raise SourceError(found.message)
        return found

    def _stage_error(self, message: str, target: str, cluster: str = "") -> None:
        log.warning("provenance: %s", message)
        self._errors.append(
            StageError(stage=STAGE, message=message, target=target, cluster=cluster)
        )


__all__ = ["ProvenanceStage"]
