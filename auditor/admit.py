"""Admission decisions: one object judged by the pipeline's own provenance and policy functions.

The webhook (`auditor.admission`) receives a `Decider` as a plain callable and never imports
a stage; this module is where the stages are put together for one object, as `pipeline.py`
puts them together for a run (it is a composer like `pipeline`, which
`tests/test_architecture.py` allows). For one AdmissionRequest:

1. An object outside the admission scope (kinds, `scope.namespaces`) is allowed unjudged.
2. Its model, when it names one, is verified by `ProvenanceStage` against the trust policy,
   with the attestations of the configured Git repository at the newest commit of its revision
   (a local clone, refreshed in the background by `AttestationSource`). The object under review
   is what will run: the model it names is the one whose signature, digest binding and datasets
   must hold. Results are cached by (model digest, bundle digest, trust policy digest), with
   the resource's namespace/name (which trust rule applies) and the lockfile's digest.
3. Its policy input (`context: "admission"`, `request` filled with the review, so Gatekeeper
   templates see `input.review`) is evaluated by policies compiled once (`CompiledPolicies`).
4. Deny on a failed required signature, digest binding or dataset check, or any deny or
   violation; a policy that errored denies too (fail closed). Warn rules become warnings.
   With `provenance.commit_signers`, the commit the attestations come from must be signed as
   an audit requires of its commit (checked once per commit): else its findings deny too.

A verification that cannot finish raises `DecisionError`; the server turns it, like any other
exception or an overrun of the time budget, into a denial (or fail-open where configured).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.admission.cache import VerdictCache
from auditor.checks import RUNNING_DIGEST_UNKNOWN
from auditor.config import DEFAULT_ADMISSION_KINDS, Config, load_config, lockfile_in_repo
from auditor.desired import open_commit_files
from auditor.errors import AuditorError, VerificationError
from auditor.lru import LRU
from auditor.model import (
    AdmissionDecision,
    AdmissionRequest,
    CommitFiles,
    DecisionReason,
    Finding,
    GitFile,
    ModelRef,
    PolicyMessage,
    ProvenanceResult,
    Resource,
    ServedModel,
    at_least,
)
from auditor.objects import to_resource
from auditor.policy.compiled import CompiledPolicies
from auditor.policy.evaluate import PolicyOutcome
from auditor.policy.inputs import build_input
from auditor.provenance.checks.attestations import AttestationDirectory, attestation_directory
from auditor.provenance.stage import ProvenanceStage
from auditor.scope import KindSelector, Scope
from auditor.serving import ATTESTATIONS_ANNOTATION, model_ref, serving_annotations
from auditor.tempdirs import make_temp_dir

log = logging.getLogger(__name__)

# The environment variables `auditor admission serve` hands its server workers (uvicorn starts
# each from an import string, so arguments cannot be passed any other way).
CONFIG_ENV = "AUDITOR_ADMISSION_CONFIG"
STORE_ENV = "AUDITOR_ADMISSION_STORE"


class DecisionError(VerificationError):
    """The decision could not be made (verification unfinished): deny, fail closed."""


class _NotCached(Exception):
    """`Decider.cached`: this decision needs more than the caches."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What provenance said about one object's model: the document, and its findings."""

    result: ProvenanceResult
    findings: tuple[Finding, ...]


# Files of a commit kept in memory once read (a commit's files never change): attestations and
# lockfiles are read again by every decision that verifies, and a read is a round trip to the
# `git cat-file` process. Small files only, so the memory they take stays bounded.
KEPT_FILES = 1024
# Commits whose signature verdict is kept (the background refresh moves to a new one now and
# then; past this many, the kept verdicts are dropped and the current commit checked again).
KEPT_COMMITS = 16
KEPT_FILE_BYTES = 64 * 1024


class SharedFiles:
    """One commit's files for several threads: the reader behind them (one `git cat-file`
    process) serves one read at a time, so each read takes a lock, and verifications run side
    by side between reads (hashing and signature checks release the GIL). Small files are
    read once and kept."""

    def __init__(self, files: CommitFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._kept: LRU[tuple[str, str], GitFile | None] = LRU(KEPT_FILES)
        self.commit = files.commit
        self.git_dir = files.git_dir

    def resolve(self, path: str) -> str:
        with self._lock:
            return self._files.resolve(path)

    def is_dir(self, path: str) -> bool:
        with self._lock:
            return self._files.is_dir(path)

    def child_paths(self, directory: str) -> list[str]:
        with self._lock:
            return self._files.child_paths(directory)

    def file(self, shown: str, resolved: str) -> GitFile | None:
        key = (shown, resolved)
        found = self._kept.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._files.file(shown, resolved)
        if found is not None and found.data is not None and len(found.data) <= KEPT_FILE_BYTES:
            self._kept.put(key, found)
        return found

    def close(self) -> None:
        with self._lock:
            self._files.close()


class AttestationSource:
    """The configured Git repository's files at the newest commit of its revision.

    `refresh()` fetches (a URL: the bare cached clone of `desired`) and resolves the revision
    again; a new commit replaces the files in use. The files it replaced stay open until the
    refresh after (a verification that started on them finishes on them). A refresh that fails
    keeps the commit that was good (its error is logged and remembered for `/readyz`).
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._current: SharedFiles | None = None
        self._retired: SharedFiles | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.last_error = ""

    @property
    def commit(self) -> str:
        current = self._current
        return current.commit if current is not None else ""

    def refresh(self) -> bool:
        """True when a new commit is now in use. Raises SourceError when Git cannot be read."""
        source = self._config.git
        fresh = open_commit_files(source, source.revision, limits=self._config.limits)
        with self._lock:
            if self._current is not None and self._current.commit == fresh.commit:
                fresh.close()
                return False
            closing, self._retired = self._retired, self._current
            self._current = SharedFiles(fresh)
        if closing is not None:
            closing.close()
        log.info("admission: attestations at commit %s", fresh.commit)
        return True

    def start(self, interval: float) -> None:
        """Refreshes every `interval` seconds in a daemon thread until `close()`."""
        thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        thread.name = "auditor-git-refresh"
        thread.start()

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
                self.last_error = ""
            except Exception as exc:  # the last good commit stays in use
                self.last_error = exc.diagnostics() if isinstance(exc, AuditorError) else str(exc)
                log.warning("admission: Git refresh failed: %s", self.last_error)

    def files(self) -> SharedFiles:
        current = self._current
        if current is None:
            raise DecisionError("the attestations' Git repository has not been read yet")
        return current

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for files in (self._current, self._retired):
                if files is not None:
                    files.close()
            self._current = self._retired = None


def admission_scope(config: Config) -> Scope:
    """The kinds judged at admission and the namespaces of `scope:`."""
    kinds = config.admission.kinds or config.scope.kinds or DEFAULT_ADMISSION_KINDS
    return Scope(
        kinds=tuple(KindSelector.parse(k) for k in kinds),
        namespaces=config.scope.namespaces,
        exclude_namespaces=config.scope.exclude_namespaces,
    )


class Decider:
    """`decider(request) -> AdmissionDecision`, safe to call from several threads.

    Built once per server worker (`build_decider`): policies compiled, Git read, caches empty.
    """

    def __init__(
        self,
        config: Config,
        *,
        policies: CompiledPolicies | None,
        attestations: AttestationSource | None,
        verify: Callable[[Resource, CommitFiles], Verified] | None = None,
    ) -> None:
        self.config = config
        self.scope = admission_scope(config)
        self.cluster = config.admission.cluster or (
            config.clusters[0].name if config.clusters else ""
        )
        self.policies = policies
        self.attestations = attestations
        settings = config.admission
        self.provenance_cache: VerdictCache[tuple[str, ...], Verified] = VerdictCache(
            settings.cache_size, settings.cache_ttl_seconds
        )
        self.policy_cache: VerdictCache[str, PolicyOutcome] = VerdictCache(
            settings.cache_size, settings.cache_ttl_seconds
        )
        # the given verifier, else `_verify_with_stage` looked up per call: a bound method
        # kept here would make the decider a reference cycle, freed only by the garbage
        # collector, from any thread, with the regorus engine of its policies (which only
        # the thread that made it may free)
        self._verify = verify
        self._material: LRU[tuple[str, ...], tuple[str, str]] = LRU(max(settings.cache_size, 1))
        self._lockfile = lockfile_in_repo(config) if config.trust is not None else None
        self._commits: dict[str, tuple[Finding, ...]] = {}  # commit signature findings
        self._commits_lock = threading.Lock()
        # the bundle files model-signing reads, written once for every decision of this worker
        # (filed by content digest) rather than into a folder made and removed per decision
        self._bundle_dir = make_temp_dir("admission-bundles") if config.trust is not None else None

    @property
    def commit(self) -> str:
        return self.attestations.commit if self.attestations is not None else ""

    @property
    def ready(self) -> tuple[bool, str]:
        """Policies compiled and Git read at a known commit: (ready, why not)."""
        if self.attestations is not None and not self.commit:
            return False, self.attestations.last_error or "Git attestations not loaded yet"
        return True, ""

    def __call__(self, request: AdmissionRequest) -> AdmissionDecision:
        return dataclasses.replace(self._decide(request, False), cluster=self.cluster)

    def cached(self, request: AdmissionRequest) -> AdmissionDecision | None:
        """The decision when the caches (or the scope) make it without reading Git, verifying
        or evaluating, else None: cheap enough for the server to answer on its event loop."""
        try:
            decision = self._decide(request, True)
        except _NotCached:
            return None
        return dataclasses.replace(decision, cluster=self.cluster)

    def _decide(self, request: AdmissionRequest, only_cached: bool) -> AdmissionDecision:
        subject = _subject(request)
        if subject is None:
            return AdmissionDecision(request, "skip", commit=self.commit)
        try:
            resource = to_resource(
                _named(subject, request), source="admission request", line=0, side="live",
                cluster=self.cluster, origin=f"admission:{request.uid}",
                namespace=request.namespace or None,
            )  # fmt: skip
        except AuditorError as exc:
            reason = DecisionReason("admission.invalid_object", exc.message)
            return AdmissionDecision(request, "deny", (reason,), commit=self.commit)
        if not self.scope.includes(resource.ref):
            return AdmissionDecision(request, "skip", commit=self.commit)
        model = model_ref(resource.body)
        verified, cached, commit = self._provenance(resource, model, only_cached)
        outcome = self._policies(request, resource, model, verified, commit, only_cached)
        reasons, warnings = _judge(verified, outcome, self.config.fail_on)
        return AdmissionDecision(
            request,
            "deny" if reasons else "allow",
            tuple(reasons),
            tuple(warnings),
            commit=commit,
            cache="" if verified is None else ("hit" if cached else "miss"),
        )

    def _provenance(
        self, resource: Resource, model: ModelRef | None, only_cached: bool
    ) -> tuple[Verified | None, bool, str]:
        """(provenance of the object's model, from the cache?, the commit it used)."""
        if model is None or self.config.trust is None or self.attestations is None:
            return None, False, self.commit
        files = self.attestations.files()
        signed = self._commit_findings(files, only_cached)
        key = self._cache_key(resource, model, files, only_cached)
        found = self.provenance_cache.get(key)
        if found is not None:
            return _with_commit(found, signed), True, files.commit
        if only_cached:
            raise _NotCached()
        verified = (self._verify or self._verify_with_stage)(resource, files)
        self.provenance_cache.put(key, verified)
        return _with_commit(verified, signed), False, files.commit

    def _commit_findings(self, files: SharedFiles, only_cached: bool) -> tuple[Finding, ...]:
        """The findings of the attestations' commit signature (`provenance.commit_signers`),
        checked once per commit as the audit checks its commit: attestations from a commit
        nobody allowed signed are not evidence. One that cannot be checked denies."""
        if not self.config.provenance.verifies_commits:
            return ()
        found = self._commits.get(files.commit)
        if found is not None:
            return found
        if only_cached:
            raise _NotCached()
        with self._commits_lock:
            found = self._commits.get(files.commit)
            if found is None:
                stage = ProvenanceStage(self.config)
                stage.start(self.config.git.repo, files)
                stage.verify_commit()
                outcome = stage.outcome()
                if outcome.errors:
                    raise DecisionError(
                        "the attestations' commit signature could not be checked: "
                        + "; ".join(e.message for e in outcome.errors)
                    )
                found = outcome.findings
                if len(self._commits) >= KEPT_COMMITS:
                    self._commits.clear()  # commits gone by; the current one is checked again
                self._commits[files.commit] = found
        return found

    def _cache_key(
        self, resource: Resource, model: ModelRef, files: CommitFiles, only_cached: bool
    ) -> tuple[str, ...]:
        """(model digest, bundle digest, trust policy digest), and what else the verdict
        depends on: the model's URI (its files), which rule applies (namespace/name), the
        datasets Git pins (the lockfile's digest)."""
        assert self.config.trust is not None
        ref = resource.ref
        given = serving_annotations(resource.body).get(ATTESTATIONS_ANNOTATION)
        # a commit's files never change: what they hash to is worked out once per commit
        where = (files.commit, ref.namespace, ref.name, str(given))
        material = self._material.get(where)
        if material is None and only_cached:
            raise _NotCached()
        if material is None:
            directory = attestation_directory(files, self.config.provenance, ref, resource)
            material = (
                _bundle_digest(directory),
                self._lockfile_digest(files, ref.namespace, ref.name),
            )
            self._material.put(where, material)
        return (
            model.digest or "",
            material[0],
            self.config.trust.digest,
            model.uri or "",
            ref.namespace,
            ref.name,
            material[1],
        )

    def _lockfile_digest(self, files: CommitFiles, namespace: str, name: str) -> str:
        if self._lockfile is None:
            return ""
        path = self._lockfile.format(namespace=namespace, name=name)
        try:
            found = files.file(path, files.resolve(path))
        except AuditorError:
            return "unreadable"
        return (found.digest or "oversized") if found is not None else "absent"

    def _verify_with_stage(self, resource: Resource, files: CommitFiles) -> Verified:
        """The provenance stage, exactly as an audit runs it, over this one object."""
        # no model verification is kept beyond the verdict cache (its TTL, `cache_size: 0`)
        stage = ProvenanceStage(self.config, bundle_dir=self._bundle_dir, cache_models=False)
        try:
            stage.start(self.config.git.repo, files)
            model = model_ref(resource.body)
            served = ServedModel(desired=resource, live=resource, declared=model, live_model=model)
            results = stage.verify(self.cluster, {resource.ref.match_key: served})
        finally:
            outcome = stage.outcome()
        if outcome.errors:
            raise DecisionError(
                "provenance could not be verified: " + "; ".join(e.message for e in outcome.errors)
            )
        return Verified(results[resource.ref.match_key], outcome.findings)

    def _policies(
        self,
        request: AdmissionRequest,
        resource: Resource,
        model: ModelRef | None,
        verified: Verified | None,
        commit: str,
        only_cached: bool,
    ) -> PolicyOutcome | None:
        if self.policies is None:
            return None
        provenance = verified.result.to_json() if verified is not None else None
        if verified is None and model is not None:
            provenance = ProvenanceResult.not_configured().to_json()
        review = request.to_policy_json()
        # What the input document is made of (the rest of it, resource and model, is read
        # from the request, and repo and cluster are the decider's own), without the uid: it
        # differs on every request and no policy should judge by it. Built and hashed only
        # this far on the cached path; the document itself only when it is evaluated.
        key = _digest(
            {"request": {**review, "uid": ""}, "provenance": provenance, "commit": commit}
        )
        found = self.policy_cache.get(key)
        if found is not None:
            return found
        if only_cached:
            raise _NotCached()
        document = build_input(
            resource=resource,
            desired=resource,
            live=None,
            drift=(),
            git={"repo": self.config.git.repo, "commit": commit, "path": None},
            cluster=self.cluster,
            context="admission",
            model=model,
            provenance=provenance,
            request=review,
        )
        outcome = self.policies.evaluate(resource.ref, document)
        if not any(e.result == "error" for e in outcome.evaluations):
            self.policy_cache.put(key, outcome)
        return outcome

    def close(self) -> None:
        if self.policies is not None:
            self.policies.close()
        if self.attestations is not None:
            self.attestations.close()
        if self._bundle_dir is not None:
            shutil.rmtree(self._bundle_dir, ignore_errors=True)


def _with_commit(verified: Verified, signed: tuple[Finding, ...]) -> Verified:
    """The model's verification and the findings of the commit its attestations came from."""
    return Verified(verified.result, verified.findings + signed) if signed else verified


def _bundle_digest(directory: AttestationDirectory) -> str:
    """One digest over every file of the attestation directory (bundles, provenance,
    layouts and links), with their paths."""
    listed = directory.files
    bundle = hashlib.sha256()
    for group in (listed.signatures, listed.provenance, listed.image_signatures, listed.layouts):
        for file in group:
            bundle.update(f"{file.path}\0{file.digest}\0".encode())
    for name, file in listed.links:
        bundle.update(f"{name}\0{file.digest}\0".encode())
    return "sha256:" + bundle.hexdigest()


def _subject(request: AdmissionRequest) -> Mapping[str, Any] | None:
    """The object to judge: the new object of a CREATE or UPDATE. A DELETE or CONNECT starts
    nothing that serves a model."""
    if request.operation not in ("CREATE", "UPDATE"):
        return None
    return request.object


def _named(subject: Mapping[str, Any], request: AdmissionRequest) -> dict[str, Any]:
    """The object with a name to be judged by: a CREATE with `generateName` may reach
    admission before its name is made, and is judged as `prefix*`."""
    body = dict(subject)
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping) and not metadata.get("name"):
        prefix = metadata.get("generateName")
        name = request.name or (f"{prefix}*" if isinstance(prefix, str) and prefix else "")
        if name:
            body["metadata"] = {**metadata, "name": name}
    return body


def _digest(document: Mapping[str, Any]) -> str:
    # Keys in the order they came: the same object sent again comes in the same order, and
    # one in another order is only a cache miss. Sorting the keys was a large part of a cached
    # answer's time.
    text = json.dumps(document, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _judge(
    verified: Verified | None, outcome: PolicyOutcome | None, fail_on: str
) -> tuple[list[DecisionReason], list[str]]:
    """Deny reasons and warnings: the binding's reasons when the model is not verified,
    provenance findings at or above `fail_on` (a dataset mismatch), every deny or violation,
    every policy that errored; warnings from warn rules and lesser provenance findings."""
    reasons: list[DecisionReason] = []
    warnings: list[str] = []
    if verified is not None:
        if not verified.result.verified:
            reasons += [DecisionReason(r.check, r.message) for r in verified.result.reasons]
        seen = {(r.check, r.message) for r in reasons}
        for finding in verified.findings:
            if finding.check == RUNNING_DIGEST_UNKNOWN:
                continue  # nothing runs yet at admission: there are no pods to compare
            text = finding.message.removeprefix(f"{finding.ref.display()}: ")
            if at_least(finding.severity, fail_on):
                if (finding.check, text) not in seen:
                    reasons.append(DecisionReason(finding.check, text))
            else:
                warnings.append(f"{finding.check}: {text}")
    for evaluation in outcome.evaluations if outcome is not None else ():
        if evaluation.result == "error":
            reasons.append(DecisionReason(evaluation.policy, f"policy error: {evaluation.error}"))
            continue
        for message in evaluation.messages:
            if _denies(evaluation.result, message):
                reasons.append(DecisionReason(evaluation.policy, message.msg))
            else:
                warnings.append(f"{evaluation.policy}: {message.msg}")
    return reasons, warnings


def _denies(result: str, message: PolicyMessage) -> bool:
    # a violation of a Gatekeeper constraint whose action is warn makes the evaluation `warn`
    return result == "fail" and message.rule in ("deny", "violation")


def build_decider(config: Config) -> Decider:
    """Everything one server worker needs, loaded now: policies compiled, Git read. Raises
    AuditorError (a usage error) for a policy or repository that cannot be read."""
    settings = config.admission
    policies = None
    if config.policy.enabled:
        policies = CompiledPolicies(
            config.policy, timeout=min(config.policy.timeout_seconds, settings.timeout_seconds)
        )
    attestations = None
    if config.trust is not None:
        attestations = AttestationSource(config)
        attestations.refresh()
        attestations.start(settings.refresh_seconds)
    return Decider(config, policies=policies, attestations=attestations)


class StoreSink:
    """Writes decisions to the store, opened in the thread that writes (a sqlite connection
    belongs to the thread that made it) when that thread starts: the first decisions do not
    wait for the store's import and migrations. A store that cannot be opened then is tried
    again at each batch (each failure counted by the writer)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._store: Any = None
        try:
            self._open()
        except Exception as exc:
            log.error("admission: store %s not opened (tried again per batch): %s", path, exc)

    def _open(self) -> Any:
        if self._store is None:
            from auditor.store import Store

            self._store = Store.open(self.path)
        return self._store

    def __call__(self, decisions: Sequence[AdmissionDecision]) -> None:
        self._open().record_decisions(decisions)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def create_app() -> Any:
    """The ASGI app of one server worker, from the settings `auditor admission serve` put in
    the environment (uvicorn calls this factory in every worker it starts)."""
    import auditor.store  # noqa: F401  (now, not in the writer thread as decisions arrive)
    from auditor.admission.server import create_app as server_app

    config = load_config(os.environ[CONFIG_ENV])
    store = os.environ.get(STORE_ENV) or config.store
    return server_app(
        lambda: build_decider(config),
        settings=config.admission,
        sink_factory=(lambda: StoreSink(store)) if store else None,
    )


__all__ = ["CONFIG_ENV", "STORE_ENV", "Decider", "DecisionError", "build_decider", "create_app"]
