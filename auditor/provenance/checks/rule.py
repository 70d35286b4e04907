"""The authorities a trust rule names, which are the only ones whose attestations count."""

from __future__ import annotations

from auditor.trust.authorities import Authority
from auditor.trust.policy import ModelRule, TrustPolicy


def rule_authorities(trust: TrustPolicy, rule: ModelRule | None) -> list[Authority]:
    """Every authority `rule` requires, once each, in the order it names them; none without
    a rule (an attestation nobody is required to sign proves nothing)."""
    if rule is None:
        return []
    return [trust.authority(name) for name in dict.fromkeys(rule.requirement.names())]
