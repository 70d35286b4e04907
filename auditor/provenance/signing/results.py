"""The values model-signing verification hands around: its answer, and why a signature failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.model import Finding, ResourceRef


@dataclass(frozen=True, slots=True)
class Signer:
    """An authority whose signature covers exactly the model's files."""

    authority: str
    identity: str  # key: `sha256:<fingerprint>`; chain: certificate subject; Sigstore: the SAN

    def to_json(self) -> dict[str, str]:
        return {"authority": self.authority, "identity": self.identity}


@dataclass(frozen=True, slots=True)
class ModelVerification:
    """The answer for one model: verified, its digest, who signed it, and why not."""

    verified: bool
    model_path: str
    digest: str | None  # `sha256:<hex>`, the subject digest of the signed statement
    signers: tuple[Signer, ...]
    findings: tuple[Finding, ...]
    ref: ResourceRef
    requirement: str | None = None  # what the matching rule asked for, for messages

    def to_json(self) -> dict[str, Any]:
        """The `auditor verify model -o json` document of DESIGN."""
        return {
            "verified": self.verified,
            "model": {"path": self.model_path, "digest": self.digest},
            "signers": [s.to_json() for s in self.signers],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one signature file did not count: a check id of `auditor.checks` and the reason."""

    check: str
    message: str
    expected: Any = None
    actual: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignedContent:
    """What a signature verified for one authority: the DSSE payload and who signed it."""

    payload_type: str
    payload: bytes
    identity: str


__all__ = ["ModelVerification", "Problem", "SignedContent", "Signer"]
