"""model-signing bundles from Git, verified once per run whatever the number of clusters.

model-signing reads bundles from paths, so each bundle read from the commit is written to a
temporary directory of the run (one folder per content). A verification depends on the bundles,
the trust policy, the rule and the model's files, and on nothing else: the same bundles served
in several clusters are verified once and the result filed under each resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.model import Finding, GitFile, ResourceRef
from auditor.provenance import signing as ms
from auditor.tempdirs import make_temp_dir
from auditor.trust.policy import ModelRule, TrustPolicy


@dataclass(frozen=True, slots=True)
class VerifiedBundles:
    """model-signing's answer for one resource, its findings naming the bundles as Git does."""

    verification: ms.ModelVerification
    findings: tuple[Finding, ...]


class BundleVerifier:
    """Per-run state: the temporary bundle files and the verifications already made.

    `folder`: a folder of bundle files that outlives this verifier (the admission webhook's,
    shared by every decision of a worker): bundles are filed in it by content digest, written
    once and never removed here. `cache_models`: whether model-signing's own cache of model
    verifications (by the model files' stat fingerprint) may answer.
    """

    def __init__(
        self, trust: TrustPolicy, *, folder: Path | None = None, cache_models: bool = True
    ) -> None:
        self._trust = trust
        self._verified: dict[tuple[Any, ...], ms.ModelVerification] = {}
        self._tmp: Path | None = folder
        self._own_tmp = folder is None
        self._cache_models = cache_models

    def verify(
        self,
        bundles: Sequence[GitFile],
        ref: ResourceRef,
        rule: ModelRule | None,
        model: Path | None,
        label: str,
    ) -> VerifiedBundles:
        """The bundles verified for `ref`: against the files in `model` when they are there,
        else on their own (`label` names the model then)."""
        key = (
            tuple(b.digest for b in bundles),
            self._trust.digest,
            # without a rule, who may sign depends on the resource's own namespace and name
            rule.index if rule else (ref.namespace, ref.name),
            str(model or ""),
        )
        cached = self._verified.get(key)
        if cached is None:
            cached = self._verify(self._paths(bundles), ref, model, label)
            self._verified[key] = cached
        verification = _retarget(cached, ref)
        names = {str(p): b for p, b in zip(self._paths(bundles), bundles, strict=True)}
        return VerifiedBundles(
            verification, tuple(_git_named(f, names) for f in verification.findings)
        )

    def close(self) -> None:
        if self._tmp is not None and self._own_tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _verify(
        self, paths: list[Path], ref: ResourceRef, model: Path | None, label: str
    ) -> ms.ModelVerification:
        if model:
            return ms.verify_model(
                model,
                paths,
                self._trust,
                namespace=ref.namespace,
                name=ref.name,
                ref=ref,
                use_cache=self._cache_models,
            )
        return ms.verify_signatures(
            paths, self._trust, namespace=ref.namespace, name=ref.name, ref=ref, label=label
        )

    def _paths(self, bundles: Sequence[GitFile]) -> list[Path]:
        if self._tmp is None:
            self._tmp = make_temp_dir("bundles")
        paths = []
        for bundle in bundles:
            digest = bundle.digest or hashlib.sha256(bundle.path.encode()).hexdigest()
            folder = self._tmp / digest.replace(":", "-")[:80]
            folder.mkdir(exist_ok=True)
            path = folder / bundle.name
            if not path.exists():
                # an oversized bundle is not read: an empty file makes model-signing refuse it
                _write_whole(path, bundle.data if bundle.data is not None else b"")
            paths.append(path)
        return paths


def _write_whole(path: Path, data: bytes) -> None:
    """Writes `path` so that no reader ever sees part of it: another thread sharing the folder
    may look for the same bundle at the same time."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_bytes(data)
    os.replace(partial, path)


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


def _git_named(finding: Finding, bundles: Mapping[str, GitFile]) -> Finding:
    """A model-signing finding with Git's names: the bundle's path in the commit, not the
    temporary file it was verified from, and a path that keeps bundles apart."""
    details = dict(finding.details)
    bundle = bundles.get(str(details.get("signature", "")))
    path = "/provenance/signature"
    if bundle is not None:
        details["signature"] = bundle.at
        path += f"/{bundle.name}"
    return dataclasses.replace(finding, path=path, details=details)
