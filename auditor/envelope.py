"""DSSE's Pre-Authentication Encoding and the in-toto payload type: what a DSSE signature
covers. Shared by the two stages that deal in envelopes, below both: `provenance` verifies
attestations, `reports` signs a run's evidence (`auditor report --format intoto`)."""

from __future__ import annotations

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# The predicate of a run's evidence (`auditor report --format intoto`).
EVIDENCE_PREDICATE_TYPE = "https://auditor.gitops.ml/evidence/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)
