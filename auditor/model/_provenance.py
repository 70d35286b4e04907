"""Values of the provenance stage: the model a serving resource runs (also read by `serving` for
the policy inputs), the verifications made, and each resource's provenance document.

Import them from `auditor.model`, which loads this module when one is first asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.model import Resource, ResourceRef


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The model a serving resource runs."""

    uri: str | None
    digest: str | None  # `sha256:<hex>`
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ServedModel:
    """One resource, desired and/or live, with the model each side names, read once per run
    (`serving.served_models`) for every stage that asks."""

    desired: Resource | None
    live: Resource | None
    declared: ModelRef | None  # what Git names
    live_model: ModelRef | None  # what the live object names

    @property
    def subject(self) -> Resource:
        """The object judged: the live one when it is live, else Git's."""
        subject = self.live or self.desired
        assert subject is not None
        return subject

    @property
    def model(self) -> ModelRef | None:
        """The model the judged object names (the policy input's `model`)."""
        return self.live_model if self.live is not None else self.declared

    @property
    def serves_a_model(self) -> bool:
        return self.declared is not None or self.live_model is not None


@dataclass(frozen=True, slots=True)
class Attestation:
    """One verification the provenance stage made, pass or fail (a row of `attestations`)."""

    ref: ResourceRef | None
    attestation: str  # model-signature | image-signature | slsa-provenance | intoto-layout | commit
    verified: bool
    source: str = ""
    bundle_digest: str | None = None
    subject_digest: str | None = None
    authority: str | None = None
    identity: str | None = None
    reason: str | None = None  # the check id of the failure, e.g. provenance.digest_mismatch
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ProvenanceReason:
    """Why a signature binding does not hold, as the policy input lists it."""

    check: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message}


@dataclass(frozen=True, slots=True)
class ProvenanceResult:
    """The provenance of one serving resource: the policy input's `provenance` document.

    Frozen and typed on this side; `to_json()` is the document `policies/input.schema.json`
    describes. A resource nothing could be verified for has `verified` False and its reasons
    (`unverified`, `not_configured`): fail closed.
    """

    verified: bool
    reasons: tuple[ProvenanceReason, ...] = ()
    signers: tuple[Mapping[str, str], ...] = ()
    # The parts below exist only when the model was checked (not for `unverified` documents).
    checked: bool = False
    digest: str | None = None
    declared_digest: str | None = None
    mode: str | None = None  # files | bundle | image | none
    requirement: str | None = None
    datasets: tuple[Mapping[str, Any], ...] = ()
    attestations: str | None = None  # `dir@commit` when the directory exists
    slsa: Mapping[str, Any] | None = None
    layout: Mapping[str, Any] | None = None
    running: Mapping[str, Any] | None = None

    @classmethod
    def unverified(cls, check: str, message: str) -> ProvenanceResult:
        """The provenance of a resource nothing was verified for, and why (fail closed)."""
        return cls(verified=False, reasons=(ProvenanceReason(check, message),))

    @classmethod
    def not_configured(cls) -> ProvenanceResult:
        """Without a `trust:` section nothing is verified, and the policy input says so."""
        return cls.unverified(
            "provenance.not_configured",
            "provenance is not verified: auditor.yaml has no `trust:` section",
        )

    def to_json(self) -> dict[str, Any]:
        signature: dict[str, Any] = {"verified": self.verified, "signers": list(self.signers)}
        if self.checked:
            signature.update(
                {
                    "digest": self.digest,
                    "declared_digest": self.declared_digest,
                    "mode": self.mode,
                    "requirement": self.requirement,
                }
            )
        signature["findings"] = [r.to_json() for r in self.reasons]
        out: dict[str, Any] = {
            "signature": signature,
            "datasets": [dict(d) for d in self.datasets],
            "evaluation": {},
        }
        if self.checked:
            out.update(
                {
                    "attestations": self.attestations,
                    "slsa": _plain(self.slsa),
                    "layout": _plain(self.layout),
                    "running": _plain(self.running),
                }
            )
        return out


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value is not None else None
