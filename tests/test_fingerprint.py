"""A finding's fingerprint is its identity across runs and stores: the same problem must hash
the same in every version of auditor, or every stored history would start over."""

from __future__ import annotations

import hashlib
import json

import pytest

from auditor.model import ResourceRef, fingerprint

DEPLOYMENT = ResourceRef("prod", "apps/v1", "Deployment", "ml", "fraud-scorer")


def by_definition(identity: list[object]) -> str:
    """DESIGN: the first 32 hex digits of SHA-256 of the identity as `json.dumps` writes it."""
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


def test_a_fingerprint_stored_by_an_earlier_auditor_is_made_again() -> None:
    # the value the first stores hold for this finding
    assert fingerprint("drift", "drift.changed", DEPLOYMENT, "/spec/replicas") == by_definition(
        [
            "drift",
            "drift.changed",
            "prod",
            "apps",
            "Deployment",
            "ml",
            "fraud-scorer",
            "/spec/replicas",
        ]
    )


@pytest.mark.parametrize(
    "ref",
    [
        DEPLOYMENT,
        ResourceRef(
            "", "v1", "ConfigMap", "", "settings"
        ),  # core group, cluster-scoped, no cluster
        ResourceRef("édge", "serving.kserve.io/v1beta1", "InferenceService", "ml", 'a"b\\c\n'),
    ],
)
@pytest.mark.parametrize("discriminator", ["", "rule deny: 2", "ünïcode"])
def test_the_identity_is_hashed_as_json_dumps_writes_it(
    ref: ResourceRef, discriminator: str
) -> None:
    identity = [
        "policy",
        "require-signed",
        ref.cluster,
        ref.group,
        ref.kind,
        ref.namespace,
        ref.name,
    ]
    identity.append("/spec/predictor")
    if discriminator:  # left out when empty: findings keep the identity they always had
        identity.append(discriminator)
    assert fingerprint("policy", "require-signed", ref, "/spec/predictor", discriminator) == (
        by_definition(identity)
    )


def test_a_value_that_is_not_text_is_hashed_as_json_too() -> None:
    ref = ResourceRef("prod", "v1", "Service", "ml", 7)  # type: ignore[arg-type]
    assert fingerprint("drift", "drift.added", ref, "") == by_definition(
        ["drift", "drift.added", "prod", "", "Service", "ml", 7, ""]
    )
