"""The trust policy (who must have signed what) and its authorities (keys, certificate
chains, Sigstore identities), below config and provenance: config parses the `trust:` key
with it, provenance verifies against it."""

from auditor.trust.policy import (
    DatasetPolicy,
    ModelRule,
    TrustPolicy,
    load_trust_from_config,
    load_trust_policy,
    parse_trust,
)

__all__ = [
    "DatasetPolicy",
    "ModelRule",
    "TrustPolicy",
    "load_trust_from_config",
    "load_trust_policy",
    "parse_trust",
]
