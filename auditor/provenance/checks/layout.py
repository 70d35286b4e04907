"""The in-toto layout of the model's training pipeline, when its attestation directory has one.

The layout must be signed by a key authority of the matching trust rule and verify with its
links (`provenance.layout_failed`, with the in-toto library's own reason). One layout a
directory: two would leave it open which pipeline the model came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.model import Attestation, Finding, GitFile, ResourceRef
from auditor.provenance.checks.rule import rule_authorities
from auditor.provenance.gitfiles import AttestationFiles
from auditor.provenance.intoto import (
    LayoutFailedError,
    LayoutVerification,
    layout_finding,
    verify_layout,
)
from auditor.trust.authorities import PublicKey
from auditor.trust.policy import ModelRule, TrustPolicy


@dataclass(frozen=True, slots=True)
class LayoutCheck:
    """The layout of one resource: nothing when there is none."""

    findings: tuple[Finding, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    layout: Mapping[str, Any] | None = None  # the policy input's `layout`


def check_layout(
    ref: ResourceRef, rule: ModelRule | None, trust: TrustPolicy, files: AttestationFiles
) -> LayoutCheck:
    """The layout check of one resource whose attestation directory holds `files`."""
    if not files.layouts:
        return LayoutCheck()
    layout = files.layouts[0]
    keys = [a for a in rule_authorities(trust, rule) if isinstance(a, PublicKey)]
    links = {name: f.data for name, f in files.links if f.data is not None}
    refused = _refusal(files.layouts, keys)
    outcome = refused if refused is not None else _verify(layout, links, keys)
    if isinstance(outcome, LayoutFailedError):
        return _failed(ref, layout, outcome)
    record = _record(
        ref,
        layout,
        True,
        bundle_digest=outcome.layout_digest,
        authority=outcome.authority,
        identity=outcome.signer,
        details={"steps": list(outcome.steps), "links": sorted(links)},
    )
    return LayoutCheck((), (record,), {"verified": True, **outcome.to_json()})


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
