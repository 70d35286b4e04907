"""`auditor report --format intoto`: the run's evidence, an in-toto Statement v1 in a DSSE
envelope signed with `--sign-key`; `auditor verify evidence` checks it.

Subjects: the audited Git commit, and the SHA-256 of each report of the run as rendered now
(`report.md`, `report.html`, ...; written beside the envelope by `--reports-dir`, or
rendered again later from the same store state, since rendering is deterministic).
Predicate: the run (id, status, times, exit code, clusters), its counts, the digest of the
policy bundle it evaluated and of its trust policy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from auditor.envelope import EVIDENCE_PREDICATE_TYPE as PREDICATE_TYPE
from auditor.envelope import IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE, pae
from auditor.errors import ConfigError
from auditor.model import RunReport, iso

PASSWORD_VARIABLE = "AUDITOR_SIGN_KEY_PASSWORD"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def policy_bundle_digest(report: RunReport) -> str:
    """One digest over every policy the run evaluated: ids, METADATA and Rego digests."""
    material = [
        [p.id, p.digest, p.title, p.severity, p.warn_severity, list(p.controls)]
        for p in sorted(report.policies, key=lambda p: p.id)
    ]
    return "sha256:" + sha256_hex(json.dumps(material, sort_keys=True).encode())


def statement(report: RunReport, reports: Mapping[str, bytes]) -> dict[str, Any]:
    run = report.run
    subjects: list[dict[str, Any]] = []
    if run.git_commit:
        subjects.append({"name": f"git+{run.git_repo}", "digest": {"gitCommit": run.git_commit}})
    subjects += [
        {"name": name, "digest": {"sha256": sha256_hex(data)}}
        for name, data in sorted(reports.items())
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "run": {
                "id": run.id,
                "status": run.status,
                "trigger": run.trigger,
                "started": iso(run.started),
                "finished": iso(run.finished),
                "exitCode": report.exit_code,
                "clusters": [c.name for c in run.clusters],
            },
            "git": {"repo": run.git_repo, "revision": run.git_revision, "commit": run.git_commit},
            "counts": dict(run.counts),
            "findings": len(report.findings),
            "newSincePrevious": len(report.new),
            "resolvedSincePrevious": len(report.resolved),
            "previousRun": report.previous.id if report.previous else None,
            "policyBundleDigest": policy_bundle_digest(report),
            "trustPolicyDigest": run.trust_policy_digest or None,
        },
    }


def _signer(key_pem: bytes, key_file: str) -> CryptoSigner:
    password = os.environ.get(PASSWORD_VARIABLE)
    try:
        key = load_pem_private_key(key_pem, password.encode() if password else None)
    except TypeError:
        raise ConfigError(
            f"the signing key is encrypted: set {PASSWORD_VARIABLE} to its password",
            file=key_file,
        ) from None
    except ValueError as error:
        raise ConfigError(
            f"not a PEM private key auditor can sign with: {error}", file=key_file
        ) from None
    try:
        return CryptoSigner(key)  # type: ignore[arg-type]
    except (ValueError, TypeError) as error:
        raise ConfigError(f"cannot sign with this key: {error}", file=key_file) from None


def sign_statement(document: Mapping[str, Any], key_pem: bytes, *, key_file: str) -> dict[str, Any]:
    """A DSSE envelope over the statement, signed with the PEM private key."""
    signer = _signer(key_pem, key_file)
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    signature = signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": signature.keyid,
                "sig": base64.b64encode(bytes.fromhex(signature.signature)).decode(),
            }
        ],
    }
