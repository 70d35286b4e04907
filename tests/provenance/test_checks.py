"""The provenance checks on plain values: what each decides before any key or library is asked.

The cases that need real keys, bundles and a Git commit are in test_binding.py.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from auditor import checks
from auditor.model import GitFile, ModelRef, Resource, ResourceRef
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.provenance.checks.layout import check_layout, model_products
from auditor.provenance.checks.running import check_running
from auditor.provenance.checks.slsa import SlsaCheck, check_slsa
from auditor.provenance.datasets import PinnedDatasets
from auditor.provenance.gitfiles import AttestationFiles
from auditor.provenance.signing.manifest import files_digest
from auditor.trust.policy import TrustPolicy

REF = ResourceRef(
    "prod", "serving.kserve.io/v1beta1", "InferenceService", "ml-prod", "fraud-scorer"
)
DIGEST = "sha256:" + "a" * 64
COMMIT = "c" * 40
DIR = "attestations/ml-prod/fraud-scorer"
NO_TRUST = TrustPolicy(source="auditor.yaml")


def live(body: dict[str, Any] | None = None) -> Resource:
    return Resource(ref=REF, body=body or {}, side="live", origin="prod")


def git_file(name: str, data: bytes | None) -> GitFile:
    return GitFile(f"{DIR}/{name}", COMMIT, 10**9 if data is None else len(data), data)


def slsa(files: AttestationFiles, pinned: PinnedDatasets | None = None) -> SlsaCheck:
    """The SLSA check of a resource no trust rule matches, with a 1 KiB size limit."""
    return check_slsa(
        REF,
        AttestationDirectory(files, COMMIT),
        model_digest=DIGEST,
        rule=None,
        trust=NO_TRUST,
        pinned=pinned,
        max_bytes=1024,
    )


@pytest.mark.parametrize(
    "declared",
    [
        ModelRef(uri="gs://acme-models/fraud-scorer/v3", digest=DIGEST),
        ModelRef(uri="oci://registry.acme.io/models/recs:v3", digest=None),
    ],
    ids=["not-an-image", "no-digest-in-git"],
)
def test_only_a_live_oci_model_git_pins_has_a_running_digest_to_check(
    declared: ModelRef,
) -> None:
    assert check_running(REF, live(), declared, []) is None


def test_an_oci_model_that_is_not_live_has_no_running_digest_to_check() -> None:
    declared = ModelRef(uri=f"oci://registry.acme.io/models/recs@{DIGEST}", digest=DIGEST)
    assert check_running(REF, None, declared, []) is None


def test_an_oci_model_without_pods_is_unknown_not_a_mismatch() -> None:
    declared = ModelRef(uri=f"oci://registry.acme.io/models/recs@{DIGEST}", digest=DIGEST)
    body = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService"}
    running = check_running(REF, live(body), declared, [])
    assert running is not None and running.finding is not None
    assert running.finding.check == checks.RUNNING_DIGEST_UNKNOWN
    assert running.finding.severity == "medium" and running.mismatch is False
    assert running.document == {"checked": False, "images": []}


def test_an_oversized_provenance_file_is_malformed_and_never_parsed() -> None:
    files = AttestationFiles(DIR, True, provenance=(git_file("provenance.intoto.json", None),))
    result = slsa(files)
    [finding] = result.findings
    assert finding.check == checks.MALFORMED
    assert f"{10**9} bytes, over the 1024-byte limit" in finding.message
    [record] = result.attestations
    assert record.verified is False and record.reason == checks.MALFORMED
    assert result.slsa is None and result.datasets == ()


def test_datasets_pinned_without_provenance_is_provenance_missing() -> None:
    result = slsa(AttestationFiles(DIR, True), PinnedDatasets((), f"dvc.lock@{COMMIT[:12]}"))
    [finding] = result.findings
    assert finding.check == checks.PROVENANCE_MISSING
    assert f"in {DIR}@{COMMIT[:12]}" in finding.message
    assert result.attestations == ()


def test_no_provenance_and_no_lockfile_is_nothing_to_check() -> None:
    result = slsa(AttestationFiles(DIR, True))
    assert result.findings == () and result.attestations == () and result.slsa is None


def test_no_layout_is_nothing_to_check() -> None:
    result = check_layout(REF, None, NO_TRUST, AttestationFiles(DIR, True), DIGEST)
    assert result.findings == () and result.attestations == () and result.layout is None


@pytest.mark.parametrize(
    ("layouts", "reason"),
    [
        ((git_file("root.layout", b"{}"), git_file("second.layout", b"{}")), "more than one"),
        ((git_file("root.layout", None),), "over the size limit"),
        ((git_file("root.layout", b"{}"),), "no key authority of the matching trust rule"),
    ],
    ids=["two-layouts", "oversized", "no-key-in-rule"],
)
def test_a_layout_that_cannot_be_verified_is_refused_before_in_toto_is_asked(
    layouts: tuple[GitFile, ...], reason: str
) -> None:
    result = check_layout(REF, None, NO_TRUST, AttestationFiles(DIR, True, layouts=layouts), DIGEST)
    [finding] = result.findings
    assert finding.check == checks.LAYOUT_FAILED and reason in finding.message
    [record] = result.attestations
    assert record.verified is False and record.source == layouts[0].at
    assert result.layout is not None and result.layout["verified"] is False


# --- the layout's final products against the served model ------------------------------------


def _sha(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest()}


PRODUCTS = {
    "metrics.json": _sha(b"{}"),
    "model/config.json": _sha(b"config"),
    "model/weights/part-0.bin": _sha(b"weights"),
}


def test_a_final_product_with_the_model_digest_is_the_model() -> None:
    manifest = b'{"schemaVersion": 2}'
    products = {**PRODUCTS, "image/manifest.json": _sha(manifest)}
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert model_products(products, digest) == "image/manifest.json"


def test_a_directory_of_final_products_hashing_to_the_model_digest_is_the_model() -> None:
    inside = {"config.json": PRODUCTS["model/config.json"]["sha256"]}
    inside["weights/part-0.bin"] = PRODUCTS["model/weights/part-0.bin"]["sha256"]
    assert model_products(PRODUCTS, files_digest(inside)) == "model/"
    everything = {path: d["sha256"] for path, d in PRODUCTS.items()}
    assert model_products(PRODUCTS, files_digest(everything)) == ""


def test_final_products_of_another_model_are_not_the_model() -> None:
    assert model_products(PRODUCTS, DIGEST) is None
    # one file short of the model directory is another model
    assert model_products(PRODUCTS, files_digest({"config.json": "0" * 64})) is None


def test_final_products_with_digests_that_are_no_sha256_are_not_the_model() -> None:
    hostile = {**PRODUCTS, "model/evil.bin": {"sha256": "not hex"}}
    assert model_products(hostile, DIGEST) is None
