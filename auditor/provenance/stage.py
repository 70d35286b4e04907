"""The provenance binding inside `auditor audit`: running == declared == signed, data == Git.

For each serving resource in scope (one whose desired or live body names a model), the stage
establishes, against the trust policy of auditor.yaml:

1. the digest Git declares (`model_ref(desired).digest`: the `auditor.gitops.ml/model-digest`
   annotation or an `oci://…@sha256:` URI) is present  (`provenance.digest_undeclared`);
2. the model-signing bundles (`*.sig`) in the resource's attestation directory in Git satisfy
   the trust rule that matches the resource's namespace/name (`provenance.no_rule`,
   `provenance.unsigned`, `provenance.signature_invalid`, `provenance.identity_mismatch`,
   `provenance.authority_not_required`, `provenance.unverified`). When `models.root` holds
   the model's files they are hashed and must be exactly the signed ones; otherwise the
   bundle's signed subject digest is taken as is (`verify_signatures`);
3. the declared digest is that signed subject digest (`provenance.digest_mismatch`);
4. for OCI models, the serving pods run that digest (`provenance.running_digest_mismatch`;
   `provenance.running_digest_unknown` when no pod says, e.g. scaled to zero);
5. SLSA provenance (`*.intoto.json[l]`) is signed by an authority the matching rule names, its
   subject is the model digest, and its datasets are the outs Git's dvc.lock pins
   (`provenance.signature_invalid`/`identity_mismatch`/`malformed`, `provenance.digest_mismatch`,
   `provenance.dataset_mismatch`; `provenance.provenance_missing` when datasets are pinned and
   there is no provenance);
6. an in-toto layout, when the directory has one, verifies with its links against a key
   authority of the rule (`provenance.layout_failed`);
7. once per run, the audited commit is signed by an allowed signer, when configured
   (`provenance.commit_unsigned`, `provenance.commit_signature_invalid`).

Every check is a `Finding` with its exact reason, every verification an `Attestation`,
and each resource gets the `provenance` document of its policy input. Git content is untrusted:
attestation paths that leave the repository are refused (`provenance.attestation_path_invalid`).
What the stage cannot do (Git unreadable, trust material gone mid-run, lockfile missing) is a
`StageError`: the run is incomplete, never silently clean.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.config import Config, lockfile_in_repo
from auditor.errors import AuditorError, InputError, SourceError
from auditor.model import (
    Attestation,
    CommitFiles,
    Finding,
    GitFile,
    ModelRef,
    ProvenanceReason,
    ProvenanceResult,
    Resource,
    ResourceRef,
    Severity,
    StageError,
    StageOutcome,
)
from auditor.model import short_sha as short
from auditor.provenance import model_signing as ms
from auditor.provenance.datasets import check_provenance, digests_agree, read_dvc_lock
from auditor.provenance.dsse import DsseError, attestation_finding
from auditor.provenance.gitfiles import (
    AttestationFiles,
    AttestationPathError,
    attestation_files,
    normalize_repo_path,
    read_file,
)
from auditor.provenance.running import (
    RunningImage,
    image_repository,
    running_images,
    serving_pods,
)
from auditor.provenance.slsa import DatasetRef, MalformedStatementError, verify_provenance
from auditor.safeyaml import load_one
from auditor.serving import ATTESTATIONS_ANNOTATION, model_ref, serving_annotations
from auditor.trust.authorities import PublicKey, SigstoreIdentity
from auditor.trust.policy import ModelRule, TrustPolicy

log = logging.getLogger(__name__)

STAGE = "provenance"

DIGEST_UNDECLARED = "provenance.digest_undeclared"
DIGEST_MISMATCH = ms.DIGEST_MISMATCH
RUNNING_DIGEST_MISMATCH = "provenance.running_digest_mismatch"
RUNNING_DIGEST_UNKNOWN = "provenance.running_digest_unknown"
ATTESTATION_PATH_INVALID = "provenance.attestation_path_invalid"
PROVENANCE_MISSING = "provenance.provenance_missing"
NOT_CONFIGURED = "provenance.not_configured"

SEVERITY: dict[str, Severity] = {
    DIGEST_UNDECLARED: "high",
    DIGEST_MISMATCH: "critical",
    RUNNING_DIGEST_MISMATCH: "critical",
    # no pod to ask (scaled to zero, pods not in the snapshot): worth seeing, not an alarm
    RUNNING_DIGEST_UNKNOWN: "medium",
    ATTESTATION_PATH_INVALID: "high",
    PROVENANCE_MISSING: "high",
}

# model URI schemes whose path maps to a directory under models.root: `gs://bucket/path` ->
# `<root>/bucket/path`, `pvc://claim/path` -> `<root>/claim/path` (docs/configuration.md)
MODEL_ROOT_SCHEMES = ("gs", "s3", "pvc", "hf", "azureblob")
OCI_SCHEME = "oci://"

MatchKey = tuple[str, str, str, str]


# ---------------------------------------------------------------------------------------------
# Policy documents


def models_in(
    desired_here: Sequence[Resource], live_here: Sequence[Resource]
) -> dict[MatchKey, tuple[Resource | None, Resource | None]]:
    """(desired, live) of every resource whose Git or live body names a model."""
    want = {r.ref.match_key: r for r in desired_here}
    have = {r.ref.match_key: r for r in live_here}
    out: dict[MatchKey, tuple[Resource | None, Resource | None]] = {}
    for key in sorted(set(want) | set(have)):
        w, h = want.get(key), have.get(key)
        if (w is not None and model_ref(w.body)) or (h is not None and model_ref(h.body)):
            out[key] = (w, h)
    return out


# ---------------------------------------------------------------------------------------------
# Mapping a model URI to local files


def model_directory(root: str | Path, uri: str | None) -> Path | None:
    """Where the files of `uri` are under `root`, when they are there; None otherwise.

    `gs://b/p`, `s3://b/p`, `pvc://claim/p`, `hf://org/name`, `azureblob://c/p` map to
    `<root>/<b>/<p>`. Paths that could leave the root (`..`, empty segments, a symlink out)
    never map: the model is then verified from its bundle alone.
    """
    if not uri:
        return None
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in MODEL_ROOT_SCHEMES:
        return None
    rest = rest.split("?", 1)[0].split("#", 1)[0].strip("/")
    parts = rest.split("/")
    if not rest or any(p in ("", ".", "..") for p in parts) or "\\" in rest:
        return None
    base = Path(root).resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base) or not candidate.exists():
        return None
    return candidate


# ---------------------------------------------------------------------------------------------
# The stage


@dataclass(slots=True)
class _Verdict:
    """What verifying one resource produced."""

    findings: list[Finding] = field(default_factory=list)
    records: list[Attestation] = field(default_factory=list)
    document: ProvenanceResult = field(default_factory=ProvenanceResult.not_configured)


@dataclass(frozen=True, slots=True)
class _Signature:
    verification: ms.ModelVerification
    mode: str  # files | bundle | none
    bundles: tuple[GitFile, ...]
    findings: tuple[Finding, ...]  # with Git's names (see _signature_finding)


@dataclass(frozen=True, slots=True)
class _Provenance:
    file: str
    verified: bool
    datasets: tuple[DatasetRef, ...]
    document: dict[str, Any]


class ProvenanceStage:
    """Verifies the provenance of every serving resource in scope; one instance per run.

    `start(repo, commit)` after the desired stage has pinned the commit; `verify(...)` per
    cluster (its result feeds the policy inputs); `outcome()` once at the end.
    """

    def __init__(self, config: Config) -> None:
        if config.trust is None:
            raise ValueError("the provenance stage needs a trust policy")
        self.config = config
        self.trust: TrustPolicy = config.trust
        self.settings = config.provenance
        self._lockfile = lockfile_in_repo(config)
        self._files: CommitFiles | None = None
        self._repo = ""
        self._commit = ""
        self._findings: list[Finding] = []
        self._records: list[Attestation] = []
        self._errors: list[StageError] = []
        self._signatures: dict[tuple[Any, ...], ms.ModelVerification] = {}
        self._locks: dict[str, tuple[DatasetRef, ...] | StageError] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle

    def start(self, repo: str, files: CommitFiles) -> None:
        """Reads attestations from the commit the desired stage read, through its reader."""
        self._repo, self._commit = repo, files.commit
        self._files = files

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

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

    @staticmethod
    def needs_pods(desired: Sequence[Resource]) -> bool:
        """Pods are read only when Git declares an OCI model, whose running digest they hold."""
        for resource in desired:
            model = model_ref(resource.body)
            if model is not None and (model.uri or "").startswith(OCI_SCHEME):
                return True
        return False

    # -- the audited commit

    def verify_commit(self) -> None:
        """The commit signature, once per run, when `provenance.commit_signers` is set."""
        from auditor.provenance.gitsig import commit_finding, verify_commit

        settings = self.settings
        if not settings.verifies_commits:
            return
        ref = ResourceRef(
            cluster="",
            api_version=ms.MODEL_API_VERSION,
            kind="GitRepository",
            namespace="",
            name=self._repo,
        )
        try:
            signature = verify_commit(
                Path(self.files.git_dir),
                self._commit,
                allowed_ssh_signers=Path(settings.ssh_allowed_signers)
                if settings.ssh_allowed_signers
                else None,
                allowed_gpg_keys=[Path(k) for k in settings.gpg_keys],
            )
        except AuditorError as exc:
            self._stage_error(exc.diagnostics(), f"commit {short(self._commit)}")
            return
        finding = commit_finding(signature, ref=ref, repo=self._repo)
        if finding is not None:
            self._findings.append(finding)
        self._records.append(
            Attestation(
                ref=ref,
                attestation="commit",
                verified=signature.verified,
                source=f"{self._repo}@{self._commit}",
                subject_digest=f"gitCommit:{signature.commit}",
                identity=signature.signer or None,
                reason=signature.reason or None,
                details=signature.to_json(),
            )
        )

    # -- serving resources

    def verify(
        self,
        cluster: str,
        desired_here: Sequence[Resource],
        live_here: Sequence[Resource],
        pods: Sequence[Resource] = (),
    ) -> dict[MatchKey, ProvenanceResult]:
        """Verifies every serving resource of one cluster; returns its policy documents."""
        documents: dict[MatchKey, ProvenanceResult] = {}
        for key, (w, h) in models_in(desired_here, live_here).items():
            subject = h or w
            assert subject is not None
            try:
                verdict = self._verify_resource(subject.ref, w, h, pods)
            except (AuditorError, OSError) as exc:
                # what cannot be checked is unknown, not verified: the run says it is incomplete
                reason = exc.diagnostics() if isinstance(exc, AuditorError) else str(exc)
                self._stage_error(
                    f"{subject.ref.display()}: {reason}", subject.ref.display(), cluster
                )
                documents[key] = ProvenanceResult.unverified(
                    "provenance.incomplete", f"provenance could not be verified: {reason}"
                )
                continue
            self._findings.extend(verdict.findings)
            self._records.extend(verdict.records)
            documents[key] = verdict.document
        return documents

    def _stage_error(self, message: str, target: str, cluster: str = "") -> None:
        log.warning("provenance: %s", message)
        self._errors.append(
            StageError(stage=STAGE, message=message, target=target, cluster=cluster)
        )

    def _verify_resource(
        self,
        ref: ResourceRef,
        desired: Resource | None,
        live: Resource | None,
        pods: Sequence[Resource],
    ) -> _Verdict:
        verdict = _Verdict()
        declared = model_ref(desired.body) if desired is not None else None
        if declared is None:
            # Git names no model for it (a manual deployment, or a model added by hand): drift
            # already reports it; nothing in Git can vouch for what it serves.
            why = (
                "it is not declared in Git"
                if desired is None
                else "Git names no model for it; the live object does"
            )
            verdict.document = ProvenanceResult.unverified(
                DIGEST_UNDECLARED, f"{ref.display()}: no provenance: {why}"
            )
            return verdict
        assert desired is not None
        label = declared.uri or declared.digest or "?"
        signature_findings: list[Finding] = []
        if declared.digest is None:
            signature_findings.append(
                self._finding(
                    DIGEST_UNDECLARED,
                    ref,
                    "/metadata/annotations/auditor.gitops.ml~1model-digest",
                    f"{ref.display()}: Git pins no digest for model {label}: set the "
                    "auditor.gitops.ml/model-digest annotation to its signed digest, or use "
                    "an oci://…@sha256: URI",
                    expected="sha256:<digest>",
                )
            )

        rule = self.trust.rule_for(ref.namespace, ref.name)
        attestations, path_problem = self._attestations(ref, desired)
        if path_problem is not None:
            signature_findings.append(path_problem)
            attestations = AttestationFiles(directory="", exists=False)

        signature = self._model_signature(ref, declared, rule, attestations)
        signature_findings.extend(signature.findings)

        signed = signature.verification.digest
        bound = signature.verification.verified and declared.digest is not None
        if declared.digest is not None and signed is not None and signed != declared.digest:
            bound = False
            signature_findings.append(
                self._finding(
                    DIGEST_MISMATCH,
                    ref,
                    "/provenance/digest",
                    f"{ref.display()}: Git declares model digest {declared.digest}, the "
                    f"signature is for {signed}",
                    expected=declared.digest,
                    actual=signed,
                )
            )

        running: dict[str, Any] | None = None
        if live is not None and (declared.uri or "").startswith(OCI_SCHEME) and declared.digest:
            running, running_findings = self._running(ref, live, declared, pods)
            if any(f.check == RUNNING_DIGEST_MISMATCH for f in running_findings):
                bound = False
            signature_findings.extend(running_findings)

        # The model that serves is the live spec's: a live URI or digest other than Git's is
        # drift (reported there), and the signature of Git's model says nothing about it.
        # the policy names the resource itself: its reasons read without the prefix
        prefix = f"{ref.display()}: "
        reasons = [
            ProvenanceReason(f.check, f.message.removeprefix(prefix)) for f in signature_findings
        ]
        live_model = model_ref(live.body) if live is not None else None
        if live_model is not None and (
            live_model.uri != declared.uri or live_model.digest != declared.digest
        ):
            bound = False
            reasons.append(
                ProvenanceReason(
                    "drift.changed",
                    f"the cluster serves {live_model.uri or live_model.digest}, not the model "
                    f"Git declares ({label})",
                )
            )

        provenance = self._provenance(ref, declared, signed, rule, attestations)
        layout = self._layout(ref, rule, attestations)

        verdict.findings = signature_findings + provenance.findings + layout.findings
        verdict.records = [
            self._signature_record(ref, declared, signature, bound, signature_findings),
            *provenance.records,
            *layout.records,
        ]
        verification = signature.verification
        verdict.document = ProvenanceResult(
            verified=bound,
            reasons=tuple(reasons),
            signers=tuple(s.to_json() for s in verification.signers),
            checked=True,
            digest=signed,
            declared_digest=declared.digest,
            mode=signature.mode,
            requirement=verification.requirement,
            datasets=tuple(provenance.document.get("datasets", [])),
            attestations=f"{attestations.directory}@{short(self._commit)}"
            if attestations.exists
            else None,
            slsa=provenance.document.get("slsa"),
            layout=layout.document.get("layout"),
            running=running,
        )
        return verdict

    # -- attestation directory

    def _attestations(
        self, ref: ResourceRef, desired: Resource
    ) -> tuple[AttestationFiles, Finding | None]:
        annotations = serving_annotations(desired.body)
        given = annotations.get(ATTESTATIONS_ANNOTATION)
        if isinstance(given, str) and given.strip():
            where, directory = f"annotation {ATTESTATIONS_ANNOTATION}", given
        elif self.settings.attestations:
            where = "provenance.attestations"
            directory = self.settings.attestations.format(namespace=ref.namespace, name=ref.name)
        else:
            return AttestationFiles(directory="", exists=False), None
        try:
            return attestation_files(self.files, directory), None
        except AttestationPathError as exc:
            return AttestationFiles(directory="", exists=False), self._finding(
                ATTESTATION_PATH_INVALID,
                ref,
                "/metadata/annotations/auditor.gitops.ml~1attestations",
                f"{ref.display()}: attestation directory {directory!r} ({where}) refused: {exc}",
                actual=directory,
            )

    # -- model signature

    def _model_signature(
        self,
        ref: ResourceRef,
        declared: ModelRef,
        rule: ModelRule | None,
        attestations: AttestationFiles,
    ) -> _Signature:
        bundles = attestations.signatures
        root = self.config.models_root
        directory = model_directory(root, declared.uri) if root else None
        mode = "files" if directory else "bundle"
        if not bundles:
            missing: list[Finding] = []
            if rule is None:
                missing.append(self._no_rule(ref))
            where = (
                f"in {attestations.directory}@{short(self._commit)}"
                if attestations.exists
                else (
                    f"at {attestations.directory}@{short(self._commit)} (no such directory)"
                    if attestations.directory
                    else "(no auditor.gitops.ml/attestations annotation and no "
                    "provenance.attestations in config)"
                )
            )
            missing.append(
                self._finding(
                    ms.UNSIGNED,
                    ref,
                    "/provenance/signature",
                    f"{ref.display()}: no model signature (*.sig) {where}",
                )
            )
            verification = ms.ModelVerification(
                verified=False,
                model_path=declared.uri or "",
                digest=None,
                signers=(),
                findings=tuple(missing),
                ref=ref,
                requirement=rule.describe() if rule else None,
            )
            return _Signature(verification, "none", (), tuple(missing))

        key = (
            tuple(b.digest for b in bundles),
            self.trust.digest,
            rule.index if rule else (ref.namespace, ref.name),
            str(directory or ""),
        )
        cached = self._signatures.get(key)
        if cached is None:
            paths = self._bundle_files(bundles)
            if directory:
                cached = ms.verify_model(
                    directory, paths, self.trust, namespace=ref.namespace, name=ref.name, ref=ref
                )
            else:
                cached = ms.verify_signatures(
                    paths,
                    self.trust,
                    namespace=ref.namespace,
                    name=ref.name,
                    ref=ref,
                    label=declared.uri or "",
                )
            self._signatures[key] = cached
        verification = _retarget(cached, ref)
        names = {str(p): b for p, b in zip(self._bundle_files(bundles), bundles, strict=True)}
        findings = tuple(_signature_finding(f, names) for f in verification.findings)
        return _Signature(verification, mode, bundles, findings)

    def _bundle_files(self, bundles: Sequence[GitFile]) -> list[Path]:
        """The bundles as files (model-signing reads paths), one directory per content."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="auditor-bundles-")
        paths = []
        for bundle in bundles:
            digest = bundle.digest or hashlib.sha256(bundle.path.encode()).hexdigest()
            folder = Path(self._tmp.name) / digest.replace(":", "-")[:80]
            folder.mkdir(exist_ok=True)
            path = folder / bundle.name
            if not path.exists():
                # an oversized bundle is not read: an empty file makes model-signing refuse it
                path.write_bytes(bundle.data if bundle.data is not None else b"")
            paths.append(path)
        return paths

    def _no_rule(self, ref: ResourceRef) -> Finding:
        return Finding(
            category="provenance",
            check=ms.NO_RULE,
            severity=ms.SEVERITY[ms.NO_RULE],
            ref=ref,
            path="/provenance/signature",
            message=f"{ref.display()}: no trust.models rule matches namespace "
            f"{ref.namespace!r}, name {ref.name!r}: unverified (fail closed)",
            details={"trust_policy": self.trust.source},
        )

    def _signature_record(
        self,
        ref: ResourceRef,
        declared: ModelRef,
        signature: _Signature,
        bound: bool,
        findings: Sequence[Finding],
    ) -> Attestation:
        verification = signature.verification
        bundles = signature.bundles
        return Attestation(
            ref=ref,
            attestation="model-signature",
            verified=bound,
            source=", ".join(b.at for b in bundles),
            bundle_digest=bundles[0].digest if len(bundles) == 1 else None,
            subject_digest=verification.digest,
            authority=", ".join(s.authority for s in verification.signers) or None,
            identity=", ".join(s.identity for s in verification.signers) or None,
            reason=findings[0].check if findings and not bound else None,
            details={
                "mode": signature.mode,
                "model": verification.model_path or declared.uri,
                "declared_digest": declared.digest,
                "requirement": verification.requirement,
                "bundles": [{"path": b.at, "digest": b.digest} for b in bundles],
                "checks": sorted({f.check for f in findings}),
            },
        )

    # -- the running digest of OCI models

    def _running(
        self, ref: ResourceRef, live: Resource, declared: ModelRef, pods: Sequence[Resource]
    ) -> tuple[dict[str, Any], list[Finding]]:
        assert declared.uri is not None and declared.digest is not None
        repository = image_repository(declared.uri)
        serving = serving_pods(live, pods)
        images: list[RunningImage] = []
        for pod in serving:
            images.extend(running_images(pod, repository))
        known = [i for i in images if i.digest is not None]
        document = {"checked": bool(known), "images": [i.to_json() for i in images]}
        path = "/status/containerStatuses"
        if not known:
            why = (
                f"no serving pod of it was found in {ref.namespace}"
                if not serving
                else f"none of its {len(serving)} pod(s) reports the digest of a "
                f"{repository} container"
            )
            return document, [
                self._finding(
                    RUNNING_DIGEST_UNKNOWN,
                    ref,
                    path,
                    f"{ref.display()}: the running digest of {declared.uri} could not be "
                    f"checked: {why}",
                    expected=declared.digest,
                )
            ]
        wrong = [i for i in known if i.digest != declared.digest]
        if not wrong:
            return document, []
        where = ", ".join(f"{i.pod}/{i.container} runs {i.digest}" for i in wrong[:5])
        return document, [
            self._finding(
                RUNNING_DIGEST_MISMATCH,
                ref,
                path,
                f"{ref.display()}: Git declares {declared.digest}, but {where}",
                expected=declared.digest,
                actual=sorted({str(i.digest) for i in wrong}),
                details={"pods": [i.to_json() for i in wrong]},
            )
        ]

    # -- SLSA provenance and datasets

    def _provenance(
        self,
        ref: ResourceRef,
        declared: ModelRef,
        signed: str | None,
        rule: ModelRule | None,
        attestations: AttestationFiles,
    ) -> _Part:
        part = _Part()
        lock = self._declared_datasets(ref)
        if not attestations.provenance:
            if lock is not None:
                part.findings.append(
                    self._finding(
                        PROVENANCE_MISSING,
                        ref,
                        "/provenance/attestation",
                        f"{ref.display()}: no SLSA provenance (*.intoto.json) "
                        + (
                            f"in {attestations.directory}@{short(self._commit)}"
                            if attestations.exists
                            else "was found"
                        )
                        + f": the datasets pinned in {lock[1]} cannot be bound to the model",
                    )
                )
            return part
        authorities = (
            [
                a
                for a in (self.trust.authority(n) for n in dict.fromkeys(rule.requirement.names()))
                if isinstance(a, PublicKey | SigstoreIdentity)
            ]
            if rule is not None
            else []
        )
        model_digest = declared.digest or signed
        chosen: _Provenance | None = None
        for file in attestations.provenance:
            for index, data in _envelopes(file):
                source = file.at if index is None else f"{file.at}#{index + 1}"
                result = self._one_provenance(
                    ref, source, file, data, authorities, rule, model_digest, lock
                )
                part.findings.extend(result[1])
                part.records.append(result[2])
                if result[0] is not None and (chosen is None or not chosen.verified):
                    chosen = result[0]
        if chosen is not None:
            part.document = chosen.document
        return part

    def _one_provenance(
        self,
        ref: ResourceRef,
        source: str,
        file: GitFile,
        data: bytes | None,
        authorities: Sequence[PublicKey | SigstoreIdentity],
        rule: ModelRule | None,
        model_digest: str | None,
        lock: tuple[tuple[DatasetRef, ...], str] | None,
    ) -> tuple[_Provenance | None, list[Finding], Attestation]:
        path = f"/provenance/attestation/{file.name}"

        def record(verified: bool, reason: str | None, **kw: Any) -> Attestation:
            return Attestation(
                ref=ref,
                attestation="slsa-provenance",
                verified=verified,
                source=source,
                bundle_digest=kw.pop("bundle_digest", file.digest),
                reason=reason,
                **kw,
            )

        if data is None:
            error: DsseError = MalformedStatementError(
                f"{file.size} bytes, over the {self.config.limits.max_manifest_bytes}-byte limit",
                file=source,
            )
            return (
                None,
                [attestation_finding(error, ref=ref, path=path)],
                record(False, error.check),
            )
        if not authorities:
            why = (
                "no trust.models rule matches it"
                if rule is None
                else f"the matching rule ({rule.requirement.describe()}) names no key or "
                "Sigstore authority that can verify attestations"
            )
            finding = self._finding(
                ms.UNVERIFIED, ref, path, f"{ref.display()}: provenance {source} unverified: {why}"
            )
            return None, [] if rule is None else [finding], record(False, ms.UNVERIFIED)
        errors: list[DsseError] = []
        for authority in authorities:
            try:
                provenance, verified = verify_provenance(data, authority, source=source)
            except MalformedStatementError as exc:
                # authentic, but not an SLSA statement: the same for every authority
                return (
                    None,
                    [attestation_finding(exc, ref=ref, path=path)],
                    record(False, exc.check, authority=authority.name),
                )
            except DsseError as exc:
                errors.append(exc)
                continue
            findings = check_provenance(
                provenance,
                model_digest=model_digest,
                declared=lock[0] if lock is not None else None,
                ref=ref,
                declared_in=lock[1] if lock is not None else "Git",
            )
            findings = [_with_file(f, source) for f in findings]
            datasets = []
            declared_by_key = {d.key: d for d in lock[0]} if lock is not None else None
            for dataset in provenance.datasets:
                entry: dict[str, Any] = dataset.to_json()
                if declared_by_key is not None:
                    want = declared_by_key.get(dataset.key)
                    entry["declared"] = (
                        want is not None and digests_agree(want.digest, dataset.digest) is None
                    )
                datasets.append(entry)
            ok = not findings
            signer = verified.signer
            document = {
                "datasets": datasets,
                "slsa": {
                    "verified": ok,
                    "source": source,
                    "builder_id": provenance.builder_id,
                    "build_type": provenance.build_type,
                    "subjects": list(provenance.subject_digests),
                    "signer": signer.to_json(),
                    "checks": sorted({f.check for f in findings}),
                },
            }
            return (
                _Provenance(source, ok, provenance.datasets, document),
                findings,
                record(
                    ok,
                    findings[0].check if findings else None,
                    bundle_digest=verified.envelope_digest,
                    subject_digest=provenance.subject_digests[0]
                    if provenance.subject_digests
                    else None,
                    authority=signer.authority,
                    identity=signer.identity,
                    details={
                        "builder_id": provenance.builder_id,
                        "datasets": [d.to_json() for d in provenance.datasets],
                        "lockfile": lock[1] if lock is not None else None,
                    },
                ),
            )
        best = min(errors, key=lambda e: _DSSE_PRIORITY.get(e.reason, 9))
        return (
            None,
            [attestation_finding(best, ref=ref, path=path)],
            record(
                False,
                best.check,
                details={"tried": [a.name for a in authorities], "reason": best.message},
            ),
        )

    def _declared_datasets(self, ref: ResourceRef) -> tuple[tuple[DatasetRef, ...], str] | None:
        """The datasets Git pins for this resource and where; None when none are configured.

        Raises SourceError when the configured lockfile cannot be read at the commit.
        """
        if self._lockfile is None:
            return None
        path = self._lockfile.format(namespace=ref.namespace, name=ref.name)
        stages = self.settings.lockfile_stages.format(namespace=ref.namespace, name=ref.name)
        key = f"{path}\0{stages}"
        if key not in self._locks:
            self._locks[key] = self._read_lock(path, stages)
        found = self._locks[key]
        if isinstance(found, StageError):
            raise SourceError(found.message)
        return found, f"{path}@{short(self._commit)}"

    def _read_lock(self, path: str, stages: str) -> tuple[DatasetRef, ...] | StageError:
        where = f"{path}@{short(self._commit)}"
        try:
            file = read_file(self.files, normalize_repo_path(path))
        except AttestationPathError as exc:
            return StageError(stage=STAGE, message=f"lockfile {path}: {exc}", target=path)
        if file is None:
            return StageError(
                stage=STAGE,
                message=f"the lockfile {where} does not exist: datasets cannot be compared",
                target=path,
            )
        if file.data is None:
            return StageError(stage=STAGE, message=f"{where} is over the size limit", target=path)
        try:
            names: list[str] | None = None
            if stages != "*":
                names = [
                    n for n in _stage_names(file.data, where) if fnmatch.fnmatchcase(n, stages)
                ]
            return read_dvc_lock(file.data, where, stages=names)
        except InputError as exc:
            return StageError(stage=STAGE, message=exc.diagnostics(), target=path)

    # -- in-toto layout

    def _layout(
        self, ref: ResourceRef, rule: ModelRule | None, attestations: AttestationFiles
    ) -> _Part:
        from auditor.provenance.intoto import LayoutFailedError, layout_finding, verify_layout

        part = _Part()
        if not attestations.layouts:
            return part
        layout = attestations.layouts[0]
        keys = (
            [
                a
                for a in (self.trust.authority(n) for n in dict.fromkeys(rule.requirement.names()))
                if isinstance(a, PublicKey)
            ]
            if rule is not None
            else []
        )
        links = {name: f.data for name, f in attestations.links if f.data is not None}
        error: LayoutFailedError
        if len(attestations.layouts) > 1:
            error = LayoutFailedError(
                "more than one layout: " + ", ".join(f.at for f in attestations.layouts),
                file=layout.at,
            )
        elif layout.data is None:
            error = LayoutFailedError("the layout is over the size limit", file=layout.at)
        elif not keys:
            error = LayoutFailedError(
                "no key authority of the matching trust rule can verify the layout",
                file=layout.at,
            )
        else:
            errors: list[LayoutFailedError] = []
            for key in keys:
                try:
                    result = verify_layout(layout.data, links, key, source=layout.at)
                except LayoutFailedError as exc:
                    errors.append(exc)
                    continue
                part.records.append(
                    Attestation(
                        ref=ref,
                        attestation="intoto-layout",
                        verified=True,
                        source=layout.at,
                        bundle_digest=result.layout_digest,
                        authority=result.authority,
                        identity=result.signer,
                        details={"steps": list(result.steps), "links": sorted(links)},
                    )
                )
                part.document = {"layout": {"verified": True, **result.to_json()}}
                return part
            # a layout not signed by this key says less than one that failed its rules
            error = next((e for e in errors if "not signed by" not in e.message), errors[0])
        part.findings.append(layout_finding(error, ref=ref))
        part.records.append(
            Attestation(
                ref=ref,
                attestation="intoto-layout",
                verified=False,
                source=layout.at,
                bundle_digest=layout.digest,
                reason=error.check,
                details={"reason": error.message},
            )
        )
        part.document = {"layout": {"verified": False, "reason": error.message}}
        return part

    # -- helpers

    def _finding(
        self,
        check: str,
        ref: ResourceRef,
        path: str,
        message: str,
        *,
        expected: Any = None,
        actual: Any = None,
        details: Mapping[str, Any] | None = None,
    ) -> Finding:
        return Finding(
            category="provenance",
            check=check,
            severity=SEVERITY.get(check) or ms.SEVERITY.get(check, "high"),
            ref=ref,
            path=path,
            message=message,
            expected=expected,
            actual=actual,
            details=dict(details or {}),
        )


@dataclass(slots=True)
class _Part:
    findings: list[Finding] = field(default_factory=list)
    records: list[Attestation] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)


_DSSE_PRIORITY = {"identity_mismatch": 0, "signature_invalid": 1, "unsigned": 2, "malformed": 3}


def _envelopes(file: GitFile) -> list[tuple[int | None, bytes | None]]:
    """The envelopes of a provenance file: the whole file, or one per line of a `.jsonl`."""
    if file.data is None or not file.name.endswith(".jsonl"):
        return [(None, file.data)]
    lines = [line.strip() for line in file.data.splitlines()]
    return [(i, line) for i, line in enumerate(lines) if line] or [(None, b"")]


def _stage_names(data: bytes, source: str) -> list[str]:
    from auditor.provenance.datasets import MAX_LOCKFILE_BYTES

    doc = load_one(data, source, max_bytes=MAX_LOCKFILE_BYTES)
    if not isinstance(doc, Mapping):
        return []
    stages = doc.get("stages") if ("stages" in doc or "schema" in doc) else doc
    return [str(n) for n in stages] if isinstance(stages, Mapping) else []


def _retarget(verification: ms.ModelVerification, ref: ResourceRef) -> ms.ModelVerification:
    """A cached verification (same bundles, same rule) filed under another resource."""
    if verification.ref == ref:
        return verification
    old = verification.ref.display() + ": "
    findings = tuple(
        dataclasses.replace(f, ref=ref, message=f"{ref.display()}: {f.message.removeprefix(old)}")
        for f in verification.findings
    )
    return dataclasses.replace(verification, ref=ref, findings=findings)


def _signature_finding(finding: Finding, bundles: Mapping[str, GitFile]) -> Finding:
    """A model_signing finding with Git's names: the bundle's path in the commit, not the
    temporary file it was verified from, and a path that keeps bundles apart."""
    details = dict(finding.details)
    bundle = bundles.get(str(details.get("signature", "")))
    path = "/provenance/signature"
    if bundle is not None:
        details["signature"] = bundle.at
        path += f"/{bundle.name}"
    return dataclasses.replace(finding, path=path, details=details)


def _with_file(finding: Finding, source: str) -> Finding:
    return dataclasses.replace(finding, details={**finding.details, "attestation": source})


__all__ = [
    "ATTESTATION_PATH_INVALID",
    "DIGEST_MISMATCH",
    "DIGEST_UNDECLARED",
    "NOT_CONFIGURED",
    "PROVENANCE_MISSING",
    "RUNNING_DIGEST_MISMATCH",
    "RUNNING_DIGEST_UNKNOWN",
    "ProvenanceStage",
    "model_directory",
    "models_in",
]
