"""What `auditor verify evidence` checks once the envelope's signature verified: the payload
is auditor's in-toto Statement v1, and every report handed in is one of its subjects."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from auditor.envelope import EVIDENCE_PREDICATE_TYPE as PREDICATE_TYPE
from auditor.envelope import IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE
from auditor.errors import VerificationError


def check_evidence(
    payload_type: str, payload: bytes, reports: Mapping[str, bytes], *, source: str
) -> dict[str, Any]:
    """The statement's run and the reports it vouches for; VerificationError (exit 1) naming
    what does not hold."""
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"payloadType is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE}", file=source
        )
    try:
        document = json.loads(payload)
    except ValueError as error:
        raise VerificationError(f"the signed payload is not JSON: {error}", file=source) from None
    if not isinstance(document, dict) or document.get("_type") != STATEMENT_TYPE:
        raise VerificationError("the signed payload is not an in-toto Statement v1", file=source)
    if document.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(
            f"predicateType is {document.get('predicateType')!r}, not auditor evidence ({PREDICATE_TYPE})",
            file=source,
        )
    listed = document.get("subject")
    subjects: list[Any] = listed if isinstance(listed, list) else []
    digests = {
        s["digest"].get("sha256"): s.get("name")
        for s in subjects
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    }
    matched = {}
    for name, data in reports.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest not in digests:
            raise VerificationError(
                f"report {name} (sha256:{digest}) is not one the evidence vouches for: it was "
                "changed, or rendered from another state of the store",
                file=source,
            )
        matched[name] = digests[digest]
    predicate = document.get("predicate")
    if not isinstance(predicate, dict) or not isinstance(predicate.get("run"), dict):
        raise VerificationError("the statement's predicate has no run", file=source)
    return {"verified": True, "predicate": predicate, "subjects": subjects, "reports": matched}
