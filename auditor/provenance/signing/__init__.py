"""Verifies OpenSSF model-signing bundles against the trust policy, offline.

The formats are model-signing's: its bundle readers, its verifiers (public key, certificate
chain) and its DSSE-statement-to-manifest conversion, its hashing. We compose its layers
instead of calling `model_signing.verifying.Config.verify`, because that one call raises a bare
ValueError for every failure (we must tell a wrong key from a changed byte), prints to stdout
for old bundles (which would corrupt `-o json`), returns nothing we can pin (the subject
digest), and for Sigstore builds its trust root from TUF unless given a ClientTrustConfig (we
take a plain trusted_root.json too, and never touch the network). The private model-signing
and sigstore names this needs are reached through `auditor.provenance.upstream` only.

Pipeline, per signature file: read the bundle (`bundles`) -> for every authority of the
bundle's kind, verify the signature, crypto and identity (`key`, `certificate`, `sigstore`) ->
turn the authenticated statement into a manifest, model-signing checking the subject digest
against the resources (`manifest`) -> hash the model directory the way the statement says it
was hashed and compare (`manifest`, driven by `signature`). The trust policy's requirement
then says whether the authorities that signed these exact files are enough (`verify`).
Answers are cached per process (`cache`).

This module is the API; the submodules are its parts.
"""

from __future__ import annotations

from auditor.checks import (
    AUTHORITY_NOT_REQUIRED,
    DIGEST_MISMATCH,
    IDENTITY_MISMATCH,
    NO_RULE,
    SIGNATURE_INVALID,
    UNSIGNED,
    UNVERIFIED,
)
from auditor.provenance.signing.bundles import MAX_BUNDLE_BYTES
from auditor.provenance.signing.cache import clear_cache, stat_fingerprint
from auditor.provenance.signing.manifest import hashing_config, manifest_digest
from auditor.provenance.signing.results import ModelVerification, Signer
from auditor.provenance.signing.verify import (
    MODEL_API_VERSION,
    MODEL_KIND,
    model_directory_ref,
    verify_model,
    verify_signatures,
)

# The checks a model-signing verification can report, each with its default severity in
# `auditor.checks`.
SIGNATURE_CHECKS = (
    UNSIGNED,
    SIGNATURE_INVALID,
    IDENTITY_MISMATCH,
    DIGEST_MISMATCH,
    AUTHORITY_NOT_REQUIRED,
    UNVERIFIED,
    NO_RULE,
)

__all__ = [
    "AUTHORITY_NOT_REQUIRED",
    "DIGEST_MISMATCH",
    "IDENTITY_MISMATCH",
    "MAX_BUNDLE_BYTES",
    "MODEL_API_VERSION",
    "MODEL_KIND",
    "NO_RULE",
    "SIGNATURE_CHECKS",
    "SIGNATURE_INVALID",
    "UNSIGNED",
    "UNVERIFIED",
    "ModelVerification",
    "Signer",
    "clear_cache",
    "hashing_config",
    "manifest_digest",
    "model_directory_ref",
    "stat_fingerprint",
    "verify_model",
    "verify_signatures",
]
