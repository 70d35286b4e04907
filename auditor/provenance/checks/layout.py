"""The in-toto layout of the model's training pipeline, when its attestation directory has one.

The layout must be signed by a key authority of the matching trust rule and verify with its
links (`provenance.layout_failed`, with the in-toto library's own reason). One layout a
directory: two would leave it open which pipeline the model came from.

A pipeline that verifies vouches for the model only if it produced it: the final products (the
products the last step's link records, in-toto's summary) must be the served model
(`provenance.layout_product_mismatch`). They are when one product has the model's digest (an
OCI image manifest, for an image's digest), or when the products under one directory (or all
of them), taken as the files of a model directory, hash to it as a model-signing manifest
(SHA-256 by files, model-signing's default): the model digest of a model directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from auditor import checks
from auditor.model import Attestation, Finding, GitFile, ResourceRef
from auditor.provenance.checks.rule import rule_authorities
from auditor.provenance.gitfiles import AttestationFiles
from auditor.provenance.intoto import (
    LayoutFailedError,
    LayoutVerification,
    layout_finding,
    verify_layout,
)
from auditor.provenance.signing.manifest import files_digest
from auditor.trust.authorities import PublicKey
from auditor.trust.policy import ModelRule, TrustPolicy

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class LayoutCheck:
    """The layout of one resource: nothing when there is none."""

    findings: tuple[Finding, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    layout: Mapping[str, Any] | None = None  # the policy input's `layout`


def check_layout(
    ref: ResourceRef,
    rule: ModelRule | None,
    trust: TrustPolicy,
    files: AttestationFiles,
    model_digest: str | None,
) -> LayoutCheck:
    """The layout check of one resource whose attestation directory holds `files`, serving
    the model of `model_digest` (Git's, else the signed one; None when neither exists)."""
    if not files.layouts:
        return LayoutCheck()
    layout = files.layouts[0]
    keys = [a for a in rule_authorities(trust, rule) if isinstance(a, PublicKey)]
    links = {name: f.data for name, f in files.links if f.data is not None}
    refused = _refusal(files.layouts, keys)
    outcome = refused if refused is not None else _verify(layout, links, keys)
    if isinstance(outcome, LayoutFailedError):
        return _failed(ref, layout, outcome)
    bound = model_products(outcome.products, model_digest) if model_digest else None
    record = _record(
        ref,
        layout,
        bound is not None,
        bundle_digest=outcome.layout_digest,
        authority=outcome.authority,
        identity=outcome.signer,
        reason=None if bound is not None else checks.LAYOUT_PRODUCT_MISMATCH,
        details={"steps": list(outcome.steps), "links": sorted(links), "model": bound},
    )
    model = {"digest": model_digest, "products": bound} if bound is not None else None
    document = {"verified": bound is not None, **outcome.to_json(), "model": model}
    if bound is None:
        finding = _not_the_model(ref, layout, outcome, model_digest)
        return LayoutCheck((finding,), (record,), {**document, "reason": finding.message})
    return LayoutCheck((), (record,), document)


def model_products(products: Mapping[str, Mapping[str, str]], digest: str) -> str | None:
    """How a pipeline's final products are the model of `digest`: the product that has that
    digest (`model/manifest.json`), or the directory whose files hash to it as a model-signing
    manifest (`model/`, `""` for all of them); None when they are not the model."""
    algorithm, _, value = digest.partition(":")
    for path, digests in sorted(products.items()):
        if digests.get(algorithm) == value:
            return path
    if algorithm != "sha256":
        return None
    for directory, contents in sorted(_directories(products).items()):
        if files_digest(contents) == digest:
            return f"{directory}/" if directory else ""
    return None


def _directories(products: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The SHA-256 of the products under each directory (the root included), by their path
    relative to it: every candidate for the model directory."""
    out: dict[str, dict[str, str]] = {}
    for path, digests in products.items():
        sha256 = digests.get("sha256")
        if sha256 is None or not _SHA256.fullmatch(sha256):
            continue  # links are untrusted: a value that is no SHA-256 names no file
        parts = PurePosixPath(path).parts
        for depth in range(len(parts)):
            directory = "/".join(parts[:depth])
            out.setdefault(directory, {})["/".join(parts[depth:])] = sha256
    return out


def _not_the_model(
    ref: ResourceRef, layout: GitFile, outcome: LayoutVerification, digest: str | None
) -> Finding:
    step = outcome.steps[-1] if outcome.steps else "?"
    products = {
        path: ", ".join(f"{a}:{v}" for a, v in sorted(digests.items()))
        for path, digests in sorted(outcome.products.items())
    }
    shown = ", ".join(list(products)[:10]) + (", ..." if len(products) > 10 else "")
    why = (
        f"no product has the served model's digest {digest}, and no directory of them hashes to "
        "it as a model-signing manifest"
        if digest
        else "the served model has no digest (Git pins none, and no signature names one) to "
        "bind them to"
    )
    return checks.finding(
        checks.LAYOUT_PRODUCT_MISMATCH,
        ref,
        "/provenance/layout",
        f"{ref.display()}: the in-toto layout verifies, but the final products of step {step} "
        f"({shown or 'none'}) are not the served model: {why}",
        expected=digest,
        actual=products,
        details={"file": layout.at, "step": step},
    )


def _refusal(layouts: Sequence[GitFile], keys: Sequence[PublicKey]) -> LayoutFailedError | None:
    """Why the layout cannot be verified at all, before in-toto is asked."""
    layout = layouts[0]
    if len(layouts) > 1:
        return LayoutFailedError(
            "more than one layout: " + ", ".join(f.at for f in layouts), file=layout.at
        )
    if layout.data is None:
        return LayoutFailedError("the layout is over the size limit", file=layout.at)
    if not keys:
        return LayoutFailedError(
            "no key authority of the matching trust rule can verify the layout", file=layout.at
        )
    return None


def _verify(
    layout: GitFile, links: Mapping[str, bytes], keys: Sequence[PublicKey]
) -> LayoutVerification | LayoutFailedError:
    """The layout verified by the first key that signed it, or the most telling failure."""
    assert layout.data is not None  # _refusal turned an unread layout away
    errors: list[LayoutFailedError] = []
    for key in keys:
        try:
            return verify_layout(layout.data, links, key, source=layout.at)
        except LayoutFailedError as exc:
            errors.append(exc)
    # a layout not signed by this key says less than one that failed its rules
    return next((e for e in errors if "not signed by" not in e.message), errors[0])


def _failed(ref: ResourceRef, layout: GitFile, error: LayoutFailedError) -> LayoutCheck:
    record = _record(
        ref,
        layout,
        False,
        bundle_digest=layout.digest,
        reason=error.check,
        details={"reason": error.message},
    )
    return LayoutCheck(
        (layout_finding(error, ref=ref),),
        (record,),
        {"verified": False, "reason": error.message},
    )


def _record(ref: ResourceRef, layout: GitFile, verified: bool, **fields: Any) -> Attestation:
    return Attestation(
        ref=ref, attestation="intoto-layout", verified=verified, source=layout.at, **fields
    )
