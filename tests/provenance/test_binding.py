"""The provenance binding of `auditor audit`: running == declared == signed, datasets == Git.

Real keys made here, real model-signing bundles and DSSE envelopes, a real Git repository the
attestations are read from at a commit; every tampered case is rejected with its own reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.config import Config
from auditor.model import ProvenanceResult, Resource, ResourceRef, StageOutcome
from auditor.provenance import signing as ms
from auditor.provenance.checks.running import image_repository, selector_matches
from auditor.provenance.checks.signature import model_directory
from auditor.provenance.gitfiles import AttestationPathError, normalize_repo_path
from auditor.provenance.stage import ProvenanceStage
from auditor.serving import served_models
from tests.provenance.attestation_factory import (
    SigningKey,
    dataset,
    dvc_lock,
    make_key,
    private_pem,
    sign_envelope,
    statement_bytes,
)
from tests.provenance.binding_world import (
    ATTESTATIONS,
    NAME,
    NS,
    World,
    checks,
    commit_files,
    isvc,
    pod,
    resource,
)
from tests.provenance.conftest import make_model, sign_with_key
from tests.provenance.test_gitsig import (
    GpgSigner,
    allowed_signers,
    gpg_key,
    needs_gpg,
    needs_ssh,
    ssh_key,
)

# --- the good case -----------------------------------------------------------------------------


def test_signed_model_with_matching_provenance_is_verified_from_its_bundle(world: World) -> None:
    world.commit()
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == [] and outcome.errors == ()
    signature = doc["signature"]
    assert signature["verified"] is True and signature["mode"] == "bundle"
    assert signature["digest"] == signature["declared_digest"] == world.digest
    assert signature["signers"] == [
        {"authority": "release-key", "identity": world.release.authority.fingerprint}
    ]
    assert {d["name"]: d["declared"] for d in doc["datasets"]} == {
        "data/train.csv": True,
        "data/eval": True,
    }
    assert doc["slsa"]["verified"] is True
    kinds = {r.attestation: r for r in outcome.attestations}
    assert set(kinds) == {"model-signature", "slsa-provenance"}
    assert all(r.verified for r in outcome.attestations)
    assert kinds["model-signature"].subject_digest == world.digest
    assert kinds["model-signature"].bundle_digest.startswith("sha256:")
    assert kinds["model-signature"].source == f"{ATTESTATIONS}/model.sig@{world.repo.head()[:12]}"
    assert kinds["slsa-provenance"].authority == "release-key"


def test_model_files_under_models_root_are_hashed_and_verified(world: World) -> None:
    world.commit()
    doc, outcome = world.run(
        isvc(digest=world.digest), config=world.trust_config(models={"root": str(world.models)})
    )
    assert checks(outcome) == []
    assert doc["signature"]["verified"] is True and doc["signature"]["mode"] == "files"


def test_attestations_come_from_the_commit_not_the_working_tree(world: World) -> None:
    world.commit()
    (world.repo.path / ATTESTATIONS / "model.sig").write_text("edited, not committed")
    doc, outcome = world.run(isvc(digest=world.digest))
    assert doc["signature"]["verified"] is True and checks(outcome) == []


def test_annotation_names_the_attestation_directory(world: World) -> None:
    world.commit({"elsewhere/model.sig": world.bundle.read_bytes()}, sig=False, slsa=False)
    config = world.trust_config(provenance={})
    doc, outcome = world.run(
        isvc(digest=world.digest, annotations={"auditor.gitops.ml/attestations": "elsewhere"}),
        config=config,
    )
    assert doc["signature"]["verified"] is True and checks(outcome) == []


# --- the tamper matrix --------------------------------------------------------------------------


def test_declared_digest_other_than_the_signed_one_is_digest_mismatch(world: World) -> None:
    world.commit()
    declared = "sha256:" + "1" * 64
    doc, outcome = world.run(isvc(digest=declared))
    assert ms.DIGEST_MISMATCH in checks(outcome)
    mismatch = next(f for f in outcome.findings if f.path == "/provenance/digest")
    assert (mismatch.expected, mismatch.actual, mismatch.severity) == (
        declared,
        world.digest,
        "critical",
    )
    assert doc["signature"]["verified"] is False
    record = next(r for r in outcome.attestations if r.attestation == "model-signature")
    assert record.verified is False and record.reason == ms.DIGEST_MISMATCH


def test_a_changed_byte_in_the_model_files_is_digest_mismatch(world: World) -> None:
    world.commit()
    weights = world.model / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    doc, outcome = world.run(
        isvc(digest=world.digest), config=world.trust_config(models={"root": str(world.models)})
    )
    assert checks(outcome) == [ms.DIGEST_MISMATCH]
    finding = outcome.findings[0]
    assert finding.path == "/provenance/signature/model.sig"
    assert finding.details["changed"] == ["weights.bin"]
    assert finding.details["signature"].startswith(f"{ATTESTATIONS}/model.sig@")
    assert doc["signature"]["verified"] is False


def test_swapped_dataset_digest_is_dataset_mismatch(world: World) -> None:
    swapped = [dataset("data/train.csv", "0" * 32), dataset("data/eval", "f" * 32 + ".dir")]
    world.commit({f"{ATTESTATIONS}/provenance.intoto.json": world.provenance(datasets=swapped)})
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.dataset_mismatch", "provenance.dataset_mismatch"]
    assert {d["name"]: d["declared"] for d in doc["datasets"]} == {
        "data/train.csv": False,
        "data/eval": False,
    }
    # the model itself is still signed: only the data binding fails
    assert doc["signature"]["verified"] is True
    slsa = next(r for r in outcome.attestations if r.attestation == "slsa-provenance")
    assert slsa.verified is False and slsa.reason == "provenance.dataset_mismatch"


def test_provenance_for_another_model_is_digest_mismatch(world: World) -> None:
    other = "sha256:" + "2" * 64
    world.commit({f"{ATTESTATIONS}/provenance.intoto.json": world.provenance(subject=other)})
    _, outcome = world.run(isvc(digest=world.digest))
    finding = next(f for f in outcome.findings if f.path == "/provenance/subject")
    assert finding.check == ms.DIGEST_MISMATCH and finding.actual == [other]


def test_provenance_signed_by_an_unknown_key_is_signature_invalid(
    world: World, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger", "p256", "stranger")
    world.commit({f"{ATTESTATIONS}/provenance.intoto.json": world.provenance(keys=[stranger])})
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.signature_invalid"]
    assert outcome.findings[0].path == "/provenance/attestation/provenance.intoto.json"
    assert doc["datasets"] == []


def test_unsigned_model_is_unsigned(world: World) -> None:
    world.commit(sig=False)
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == [ms.UNSIGNED]
    assert doc["signature"]["verified"] is False
    assert "no model signature" in doc["signature"]["findings"][0]["message"]


def test_no_attestations_at_all_is_unsigned_and_provenance_missing(world: World) -> None:
    world.commit(sig=False, slsa=False)
    _, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.provenance_missing", ms.UNSIGNED]


def test_model_no_rule_matches_fails_closed(world: World) -> None:
    world.commit()
    trust = world.trust(models=[{"match": {"namespace": "staging"}, "require": ["release-key"]}])
    doc, outcome = world.run(isvc(digest=world.digest), config=world.trust_config(trust=trust))
    assert ms.NO_RULE in checks(outcome)
    assert doc["signature"]["verified"] is False


def test_signature_by_an_authority_the_rule_does_not_require(world: World) -> None:
    other_bundle = sign_with_key(world.model, world.keys["other-key"], world.tmp / "other.sig")
    world.commit({f"{ATTESTATIONS}/model.sig": other_bundle.read_bytes()})
    doc, outcome = world.run(isvc(digest=world.digest))
    assert ms.AUTHORITY_NOT_REQUIRED in checks(outcome)
    assert doc["signature"]["verified"] is False


def test_signature_by_a_key_the_policy_does_not_know_is_signature_invalid(
    world: World, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger", "p256", "stranger")
    key = tmp_path / "stranger.key"
    key.write_bytes(private_pem(stranger))
    bundle = sign_with_key(world.model, key, tmp_path / "stranger.sig")
    world.commit({f"{ATTESTATIONS}/model.sig": bundle.read_bytes()})
    _, outcome = world.run(isvc(digest=world.digest))
    assert ms.SIGNATURE_INVALID in checks(outcome)


def test_missing_declared_digest_is_digest_undeclared(world: World) -> None:
    world.commit()
    doc, outcome = world.run(isvc())
    assert checks(outcome) == ["provenance.digest_undeclared"]
    assert doc["signature"]["verified"] is False
    # the signature itself verified: the document still says who signed what
    assert doc["signature"]["digest"] == world.digest


@pytest.mark.parametrize(
    "directory",
    ["../outside", "/etc", "attestations/../../x", "a\\b"],
    ids=["dotdot", "absolute", "nested-dotdot", "backslash"],
)
def test_attestation_path_leaving_the_repository_is_refused(world: World, directory: str) -> None:
    world.commit()
    doc, outcome = world.run(
        isvc(digest=world.digest, annotations={"auditor.gitops.ml/attestations": directory})
    )
    assert checks(outcome) == ["provenance.attestation_path_invalid", ms.UNSIGNED] or checks(
        outcome
    ) == ["provenance.attestation_path_invalid", "provenance.provenance_missing", ms.UNSIGNED]
    assert doc["signature"]["verified"] is False


def test_symlink_out_of_the_repository_is_refused(world: World) -> None:
    world.repo.symlink("escape", "../../..")
    world.commit()
    _, outcome = world.run(
        isvc(digest=world.digest, annotations={"auditor.gitops.ml/attestations": "escape/etc"})
    )
    assert "provenance.attestation_path_invalid" in checks(outcome)


def test_live_model_other_than_git_is_not_verified_for_policy(world: World) -> None:
    world.commit()
    live = isvc(uri="gs://acme-models/fraud-scorer/v4", digest=world.digest)
    doc, outcome = world.run(isvc(digest=world.digest), live)
    # drift reports the changed storageUri; provenance adds no finding, but the policy input
    # must not call the model that serves signed
    assert checks(outcome) == []
    assert doc["signature"]["verified"] is False
    assert doc["signature"]["findings"][-1]["check"] == "drift.changed"


def test_resource_git_names_no_model_for_is_unverified_without_a_finding(world: World) -> None:
    world.commit()
    desired = isvc()
    del desired["spec"]["predictor"]["model"]["storageUri"]
    doc, outcome = world.run(desired, isvc(digest=world.digest))
    # drift reports the model added by hand; provenance only says why it vouches for nothing
    assert outcome.findings == () and outcome.attestations == () and outcome.errors == ()
    assert doc["signature"]["verified"] is False
    [reason] = doc["signature"]["findings"]
    assert reason["check"] == "provenance.digest_undeclared"
    assert reason["message"].endswith(
        "no provenance: Git names no model for it; the live object does"
    )


def test_model_served_but_not_declared_in_git_is_unverified_without_a_finding(
    world: World,
) -> None:
    world.commit()
    stage = ProvenanceStage(world.trust_config())
    stage.start(str(world.repo.path), commit_files(world.repo))
    live = [resource(isvc(digest=world.digest), "live")]
    documents = stage.verify("prod", served_models([], live))
    outcome = stage.outcome()
    assert outcome.findings == () and outcome.attestations == ()
    [document] = documents.values()
    assert document.reasons[0].message.endswith("no provenance: it is not declared in Git")


def test_each_line_of_a_jsonl_provenance_is_an_envelope_of_its_own(
    world: World, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger", "p256", "stranger")
    lines = world.provenance(keys=[stranger]) + b"\n\n" + world.provenance() + b"\n"
    world.commit({f"{ATTESTATIONS}/provenance.intoto.jsonl": lines}, slsa=False)
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.signature_invalid"]
    assert outcome.findings[0].path == "/provenance/attestation/provenance.intoto.jsonl"
    records = [r for r in outcome.attestations if r.attestation == "slsa-provenance"]
    at = f"{ATTESTATIONS}/provenance.intoto.jsonl@{world.repo.head()[:12]}"
    assert [(r.source, r.verified) for r in records] == [(f"{at}#1", False), (f"{at}#3", True)]
    assert doc["slsa"]["verified"] is True and doc["slsa"]["source"] == f"{at}#3"


def test_signed_envelope_that_is_not_slsa_provenance_is_malformed(world: World) -> None:
    envelope = sign_envelope(b'{"_type": "not a statement"}', [world.release])
    world.commit({f"{ATTESTATIONS}/provenance.intoto.json": envelope})
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.malformed"]
    record = next(r for r in outcome.attestations if r.attestation == "slsa-provenance")
    assert record.verified is False and record.authority == "release-key"
    assert doc["slsa"] is None and doc["signature"]["verified"] is True


def test_without_a_lockfile_datasets_are_listed_without_a_declared_flag(world: World) -> None:
    world.commit()
    config = world.trust_config(provenance={"attestations": "attestations/{namespace}/{name}"})
    doc, outcome = world.run(isvc(digest=world.digest), config=config)
    assert checks(outcome) == []
    assert [sorted(d) for d in doc["datasets"]] == [["digest", "name", "uri"]] * 2
    record = next(r for r in outcome.attestations if r.attestation == "slsa-provenance")
    assert record.details["lockfile"] is None


def test_no_attestation_directory_configured_and_no_rule_is_no_rule_and_unsigned(
    world: World,
) -> None:
    world.commit()
    trust = world.trust(models=[{"match": {"namespace": "staging"}, "require": ["release-key"]}])
    config = world.trust_config(trust=trust, provenance={})
    doc, outcome = world.run(isvc(digest=world.digest), config=config)
    assert checks(outcome) == [ms.NO_RULE, ms.UNSIGNED]
    unsigned = next(f for f in outcome.findings if f.check == ms.UNSIGNED)
    assert "no auditor.gitops.ml/attestations annotation" in unsigned.message
    assert doc["attestations"] is None and doc["signature"]["mode"] == "none"


# --- caching, errors, configuration ------------------------------------------------------------


def test_the_same_bundle_for_two_resources_is_verified_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real: Callable[..., ms.ModelVerification] = ms.verify_signatures

    def counting(*args: Any, **kwargs: Any) -> ms.ModelVerification:
        calls.append(kwargs["name"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ms, "verify_signatures", counting)
    world.commit()
    stage = ProvenanceStage(world.trust_config())
    stage.start(str(world.repo.path), commit_files(world.repo))
    for cluster in ("prod", "prod-eu"):
        body = isvc(digest=world.digest)
        desired = resource(body)
        desired = Resource(
            ref=ResourceRef(cluster, desired.ref.api_version, desired.ref.kind, NS, NAME),
            body=body,
            side="desired",
            origin="m.yaml@abc",
        )
        docs = stage.verify(cluster, served_models([desired], []), [])
        assert docs[desired.ref.match_key].verified is True
    outcome = stage.outcome()
    assert calls == [NAME]
    signatures = [r for r in outcome.attestations if r.attestation == "model-signature"]
    assert [r.ref.cluster for r in signatures if r.ref] == ["prod", "prod-eu"]


def test_missing_lockfile_makes_the_stage_incomplete(world: World) -> None:
    world.commit()
    config = world.trust_config(
        provenance={"attestations": "attestations/{namespace}/{name}", "lockfile": "nope/dvc.lock"}
    )
    doc, outcome = world.run(isvc(digest=world.digest), config=config)
    assert len(outcome.errors) == 1 and "nope/dvc.lock" in outcome.errors[0].message
    assert outcome.errors[0].stage == "provenance"
    assert doc["signature"]["verified"] is False


def test_trust_key_gone_mid_run_is_a_stage_error(world: World) -> None:
    world.commit()
    config = world.trust_config()
    world.release.pem_path.rename(world.release.pem_path.with_suffix(".gone"))
    try:
        doc, outcome = world.run(isvc(digest=world.digest), config=config)
    finally:
        world.release.pem_path.with_suffix(".gone").rename(world.release.pem_path)
    assert outcome.errors and doc["signature"]["verified"] is False


def test_lockfile_stages_select_the_datasets_of_one_model(world: World) -> None:
    lock = dvc_lock().replace("  prepare:", "  prepare-fraud-scorer:") + (
        "  prepare-recommender:\n    cmd: x\n    outs:\n    - path: data/clicks.csv\n"
        "      hash: md5\n      md5: '" + "9" * 32 + "'\n"
    )
    world.commit({"dvc.lock": lock})
    everything = world.trust_config()
    _, outcome = world.run(isvc(digest=world.digest), config=everything)
    assert outcome.errors == ()
    assert checks(outcome) == ["provenance.dataset_mismatch"]  # data/clicks.csv is missing
    one = world.trust_config(
        provenance={
            "attestations": "attestations/{namespace}/{name}",
            "lockfile": "dvc.lock",
            "lockfile_stages": "prepare-{name}",
        }
    )
    _, outcome = world.run(isvc(digest=world.digest), config=one)
    assert checks(outcome) == []


def test_unsigned_commit_is_a_finding_when_commit_signers_are_configured(world: World) -> None:
    world.commit()
    signers = world.tmp / "allowed_signers"
    signers.write_text("release@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    config = world.trust_config(
        provenance={
            "attestations": "attestations/{namespace}/{name}",
            "lockfile": "dvc.lock",
            "commit_signers": {"ssh_allowed_signers": str(signers)},
        }
    )
    stage = ProvenanceStage(config)
    stage.start(str(world.repo.path), commit_files(world.repo))
    stage.verify_commit()
    outcome = stage.outcome()
    assert checks(outcome) == ["provenance.commit_unsigned"]
    assert outcome.findings[0].ref.kind == "GitRepository"
    assert [r.attestation for r in outcome.attestations] == ["commit"]


def test_without_trust_policy_the_input_says_unverified() -> None:
    doc = ProvenanceResult.not_configured().to_json()
    assert doc["signature"]["verified"] is False and doc["signature"]["signers"] == []
    assert doc["signature"]["findings"][0]["check"] == "provenance.not_configured"


def test_config_rejects_attestation_templates_that_leave_the_repository(world: World) -> None:
    from auditor.errors import ConfigError

    for bad in ("../x/{name}", "/abs/{name}", "a/{model}"):
        with pytest.raises(ConfigError):
            world.trust_config(provenance={"attestations": bad})


# --- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://acme-models/fraud-scorer/v3", "acme-models/fraud-scorer/v3"),
        ("pvc://claim/fraud-scorer/v3/", "claim/fraud-scorer/v3"),
        ("gs://acme-models/../../etc", None),
        ("gs://acme-models//fraud-scorer/v3", None),
        ("oci://registry/x@sha256:" + "a" * 64, None),
        ("https://example.com/m", None),
    ],
)
def test_model_uri_maps_under_models_root(tmp_path: Path, uri: str, expected: str | None) -> None:
    (tmp_path / "acme-models" / "fraud-scorer" / "v3").mkdir(parents=True)
    (tmp_path / "claim" / "fraud-scorer" / "v3").mkdir(parents=True)
    found = model_directory(tmp_path, uri)
    assert found == (tmp_path / expected if expected else None)


def test_models_root_symlink_out_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside" / "model").mkdir(parents=True)
    (root / "bucket").symlink_to(tmp_path / "outside")
    assert model_directory(root, "gs://bucket/model") is None


@pytest.mark.parametrize("bad", ["", "/x", "..", "a/../..", "a\\b"])
def test_repo_paths_that_leave_the_repository_are_refused(bad: str) -> None:
    with pytest.raises(AttestationPathError):
        normalize_repo_path(bad)


@pytest.mark.parametrize(
    ("reference", "repository"),
    [
        ("oci://registry.acme.io/models/recs@sha256:" + "a" * 64, "registry.acme.io/models/recs"),
        ("registry.acme.io:5000/models/recs:v2", "registry.acme.io:5000/models/recs"),
        ("docker-pullable://docker.io/library/busybox@sha256:" + "b" * 64, "busybox"),
    ],
)
def test_image_repository(reference: str, repository: str) -> None:
    assert image_repository(reference) == repository


def test_selectors_match_like_kubernetes() -> None:
    labels = {"app": "llm", "tier": "gpu"}
    assert selector_matches({"matchLabels": {"app": "llm"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "other"}}, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gpu"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels
    )
    assert not selector_matches({}, labels)  # an empty selector claims nothing


def test_statement_helpers_are_not_mutated() -> None:
    # the factory's defaults are shared by every test in this file
    before = copy.deepcopy(json.loads(statement_bytes()))
    statement_bytes(datasets=[dataset("x", "0" * 32)])
    assert json.loads(statement_bytes()) == before


# --- in-toto layouts through the binding --------------------------------------------------------

# in-toto's artifact rules use pathspec's deprecated gitwildmatch patterns, once per file
intoto_warnings = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")


def _pipeline(
    world: World, owner: SigningKey, *, dsse: bool = False, model: Path | None = None
) -> dict[str, bytes]:
    """A signed two-step layout (prepare-data, train) and its links, as files for the commit:
    its train step outputs `model` (the world's signed model unless told) as `model/`."""
    from tests.provenance.test_intoto import make_layout, run_pipeline

    functionary = make_key(world.tmp / "functionary", "p256", "functionary")
    work = world.tmp / "pipeline"
    shutil.rmtree(work, ignore_errors=True)
    links = run_pipeline(work, functionary, dsse=dsse, model=model or world.model)
    layout = make_layout(owner, functionary, dsse=dsse, trained="model/*")
    files = {f"{ATTESTATIONS}/root.layout": layout}
    files.update({f"{ATTESTATIONS}/links/{name}": data for name, data in links.items()})
    return files


def _layout_record(outcome: StageOutcome) -> Any:
    records = [r for r in outcome.attestations if r.attestation == "intoto-layout"]
    assert len(records) == 1
    return records[0]


@intoto_warnings
@pytest.mark.parametrize("dsse", [False, True], ids=["metablock", "dsse"])
def test_layout_and_links_signed_by_the_rules_key_verify(world: World, dsse: bool) -> None:
    files = _pipeline(world, world.release, dsse=dsse)
    world.commit(files)
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == [] and outcome.errors == ()
    record = _layout_record(outcome)
    assert record.verified is True and record.reason is None
    assert record.authority == "release-key"
    assert record.identity == world.release.authority.fingerprint
    assert record.source == f"{ATTESTATIONS}/root.layout@{world.repo.head()[:12]}"
    assert (
        record.bundle_digest
        == "sha256:" + hashlib.sha256(files[f"{ATTESTATIONS}/root.layout"]).hexdigest()
    )
    assert record.details["steps"] == ["prepare-data", "train"]
    assert len(record.details["links"]) == 2
    layout = doc["layout"]
    assert layout["verified"] is True and layout["steps"] == ["prepare-data", "train"]
    assert set(layout["products"]) == {"train.csv", *(f"model/{f}" for f in MODEL_FILES)}
    # its final product is the served model: the train step's model/ is the signed manifest
    assert layout["model"] == {"digest": world.digest, "products": "model/"}
    # the model signature is untouched by the layout
    assert doc["signature"]["verified"] is True


@intoto_warnings
def test_layout_by_a_second_authority_of_an_any_of_rule_verifies(world: World) -> None:
    owner = make_key(world.tmp / "owner", "ed25519", "layout-owner")
    world.commit(_pipeline(world, owner))
    trust = world.trust(
        authorities=[
            {"name": "release-key", "key": str(world.release.pem_path)},
            {"name": "layout-owner", "key": str(owner.pem_path)},
        ],
        models=[{"match": {"namespace": "ml-*"}, "any_of": ["release-key", "layout-owner"]}],
    )
    doc, outcome = world.run(isvc(digest=world.digest), config=world.trust_config(trust=trust))
    assert checks(outcome) == []
    assert _layout_record(outcome).authority == "layout-owner"
    assert doc["layout"]["verified"] is True


@intoto_warnings
def test_tampered_link_is_layout_failed_with_the_library_reason(world: World) -> None:
    files = _pipeline(world, world.release)
    name = next(n for n in files if "/links/train." in n)
    link = json.loads(files[name])
    link["signed"]["products"]["model/weights.bin"]["sha256"] = "0" * 64
    files[name] = json.dumps(link).encode()
    world.commit(files)
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_failed"]
    finding = outcome.findings[0]
    assert finding.path == "/provenance/layout"
    assert finding.severity == "high"
    assert "in-toto layout verification failed: ThresholdVerificationError:" in finding.message
    assert "train" in finding.message
    assert finding.details == {"file": f"{ATTESTATIONS}/root.layout@{world.repo.head()[:12]}"}
    record = _layout_record(outcome)
    assert record.verified is False and record.reason == "provenance.layout_failed"
    assert record.details["reason"].startswith("ThresholdVerificationError:")
    assert doc["layout"]["verified"] is False
    assert doc["layout"]["reason"].startswith("ThresholdVerificationError:")
    assert doc["signature"]["verified"] is True  # only the pipeline fails


@intoto_warnings
def test_missing_link_is_layout_failed(world: World) -> None:
    files = _pipeline(world, world.release)
    files = {n: b for n, b in files.items() if "/links/prepare-data." not in n}
    world.commit(files)
    _, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_failed"]
    assert "LinkNotFoundError: Step 'prepare-data'" in outcome.findings[0].message


@intoto_warnings
def test_layout_signed_by_a_key_the_rule_does_not_name_is_layout_failed(world: World) -> None:
    # other-key is an authority of the policy, but the matching rule requires release-key only
    world.commit(_pipeline(world, world.other))
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_failed"]
    finding = outcome.findings[0]
    assert "the layout is not signed by release-key" in finding.message
    record = _layout_record(outcome)
    assert record.verified is False and record.authority is None
    assert doc["layout"]["verified"] is False


@intoto_warnings
def test_layout_when_the_rule_names_no_key_authority_is_layout_failed(
    world: World, chain: Any
) -> None:
    world.commit(_pipeline(world, world.release))
    trust = world.trust(
        authorities=[
            {"name": "release-key", "key": str(world.release.pem_path)},
            {"name": "ml-ca", "certificate_chain": [str(chain.root)]},
        ],
        models=[{"match": {"namespace": "ml-*"}, "any_of": ["ml-ca", "release-key"]}],
    )
    _, outcome = world.run(isvc(digest=world.digest), config=world.trust_config(trust=trust))
    # release-key is in the rule: the layout verifies whatever else the rule names
    assert checks(outcome) == []
    only_ca = world.trust(
        authorities=[
            {"name": "release-key", "key": str(world.release.pem_path)},
            {"name": "ml-ca", "certificate_chain": [str(chain.root)]},
        ],
        models=[{"match": {"namespace": "ml-*"}, "require": ["ml-ca"]}],
    )
    _, outcome = world.run(isvc(digest=world.digest), config=world.trust_config(trust=only_ca))
    layout = [f for f in outcome.findings if f.check == "provenance.layout_failed"]
    assert len(layout) == 1
    assert "no key authority of the matching trust rule" in layout[0].message


@intoto_warnings
def test_two_layouts_in_one_directory_are_layout_failed(world: World) -> None:
    files = _pipeline(world, world.release)
    files[f"{ATTESTATIONS}/second.layout"] = files[f"{ATTESTATIONS}/root.layout"]
    world.commit(files)
    _, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_failed"]
    assert "more than one layout" in outcome.findings[0].message


MODEL_FILES = ("config.json", "tokenizer/vocab.txt", "weights.bin")


@intoto_warnings
def test_layout_whose_pipeline_trained_another_model_is_layout_product_mismatch(
    world: World,
) -> None:
    other = make_model(world.tmp / "other-model")
    (other / "weights.bin").write_bytes(b"other weights")
    world.commit(_pipeline(world, world.release, model=other))
    doc, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_product_mismatch"]
    finding = outcome.findings[0]
    assert finding.path == "/provenance/layout" and finding.severity == "high"
    assert finding.expected == world.digest
    assert "model/weights.bin" in finding.actual and "train.csv" in finding.actual
    assert "final products of step train" in finding.message
    assert world.digest in finding.message
    record = _layout_record(outcome)
    assert record.verified is False and record.reason == "provenance.layout_product_mismatch"
    assert record.authority == "release-key"  # the layout itself verified
    assert doc["layout"]["verified"] is False and doc["layout"]["model"] is None
    assert doc["signature"]["verified"] is True  # the model is signed; its pipeline is not it


@intoto_warnings
def test_layout_whose_pipeline_outputs_a_file_that_is_not_the_model_is_mismatch(
    world: World,
) -> None:
    from tests.provenance.test_intoto import make_layout, run_pipeline

    functionary = make_key(world.tmp / "functionary", "p256", "functionary")
    links = run_pipeline(world.tmp / "pipeline", functionary)  # train -> model.bin
    files = {f"{ATTESTATIONS}/root.layout": make_layout(world.release, functionary)}
    files.update({f"{ATTESTATIONS}/links/{name}": data for name, data in links.items()})
    world.commit(files)
    _, outcome = world.run(isvc(digest=world.digest))
    assert checks(outcome) == ["provenance.layout_product_mismatch"]
    assert sorted(outcome.findings[0].actual) == ["model.bin", "train.csv"]


@intoto_warnings
def test_layout_of_an_oci_model_is_bound_by_the_image_manifest_it_produced(
    world: World,
) -> None:
    from tests.provenance.attestation_factory import (
        image_digest,
        image_manifest,
        image_statement,
        key_bundle_dsse,
    )

    manifest = image_manifest("recs v2")
    built = world.tmp / "image"
    built.mkdir()
    (built / "manifest.json").write_bytes(manifest)
    digest = image_digest(manifest)
    files = _pipeline(world, world.release, model=built)
    files[f"{ATTESTATIONS}/image.sigstore.json"] = key_bundle_dsse(
        image_statement(digest), world.release
    )
    world.commit(files, sig=False, slsa=False)
    config = world.trust_config(provenance={"attestations": "attestations/{namespace}/{name}"})
    image = f"oci://registry.acme.io/models/recs@{digest}"
    running = pod("recs-1", f"registry.acme.io/models/recs@{digest}")
    doc, outcome = world.run(isvc(uri=image), pods=[running], config=config)
    assert checks(outcome) == []
    assert doc["layout"]["model"] == {"digest": digest, "products": "model/manifest.json"}
    other = "sha256:" + "9" * 64
    doc, outcome = world.run(isvc(uri=image.replace(digest, other)), config=config)
    assert "provenance.layout_product_mismatch" in checks(outcome)


# --- the audited commit's signature through the binding ------------------------------------------


@pytest.fixture
def gpg_signers(world: World) -> Iterator[dict[str, GpgSigner]]:
    """Fresh OpenPGP keys for alice (allowed) and mallory, each in its own GNUPGHOME."""
    made = {
        name: gpg_key(world.tmp / "gpg", f"{name.title()} <{name}@example.com>")
        for name in ("alice", "mallory")
    }
    yield {name: signer for name, (signer, _) in made.items()}
    for _, context in made.values():
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def _commit_config(world: World, **signers: Any) -> Config:
    return world.trust_config(
        provenance={
            "attestations": "attestations/{namespace}/{name}",
            "lockfile": "dvc.lock",
            "commit_signers": signers,
        }
    )


def _verify_commit(world: World, config: Config) -> StageOutcome:
    stage = ProvenanceStage(config)
    stage.start(str(world.repo.path), commit_files(world.repo))
    stage.verify_commit()
    return stage.outcome()


def _signed_commit(world: World, *sign_args: str, env: dict[str, str] | None = None) -> str:
    """The attestations committed with `git commit -S` and the given `-c` options."""
    import os
    import subprocess

    world.repo.write("dvc.lock", dvc_lock())
    world.repo.write(f"{ATTESTATIONS}/model.sig", world.bundle.read_bytes())
    world.repo.git("add", "-A")
    subprocess.run(
        ["git", *sign_args, "commit", "-q", "-S", "-m", "signed attestations"],
        cwd=world.repo.path,
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
    )
    return world.repo.head()


@needs_ssh
def test_ssh_signed_commit_by_an_allowed_signer_verifies_through_the_binding(
    world: World,
) -> None:
    alice = ssh_key(world.tmp / "ssh", "alice")
    sha = _signed_commit(world, "-c", "gpg.format=ssh", "-c", f"user.signingkey={alice.private}")
    allowed = allowed_signers(world.tmp / "allowed_signers", ("alice@example.com", alice))
    outcome = _verify_commit(world, _commit_config(world, ssh_allowed_signers=str(allowed)))
    assert checks(outcome) == [] and outcome.errors == ()
    (record,) = outcome.attestations
    assert record.attestation == "commit" and record.verified is True
    assert record.subject_digest == f"gitCommit:{sha}"
    assert record.source == f"{world.repo.path}@{sha}"
    assert record.identity and record.identity.startswith("alice@example.com (ED25519 key SHA256:")
    assert record.details["format"] == "ssh"


@needs_ssh
def test_ssh_signed_commit_by_a_key_not_allowed_is_commit_signature_invalid(
    world: World,
) -> None:
    alice = ssh_key(world.tmp / "ssh", "alice")
    mallory = ssh_key(world.tmp / "ssh", "mallory")
    sha = _signed_commit(world, "-c", "gpg.format=ssh", "-c", f"user.signingkey={mallory.private}")
    allowed = allowed_signers(world.tmp / "allowed_signers", ("alice@example.com", alice))
    outcome = _verify_commit(world, _commit_config(world, ssh_allowed_signers=str(allowed)))
    assert checks(outcome) == ["provenance.commit_signature_invalid"]
    finding = outcome.findings[0]
    assert finding.ref.kind == "GitRepository" and finding.path == "/git/commit"
    assert "not in the allowed signers file" in finding.message
    assert finding.details == {"commit": sha, "format": "ssh"}
    (record,) = outcome.attestations
    assert record.verified is False and record.reason == "provenance.commit_signature_invalid"


@needs_gpg
def test_gpg_signed_commit_by_an_allowed_key_verifies_through_the_binding(
    world: World, gpg_signers: dict[str, GpgSigner]
) -> None:
    alice = gpg_signers["alice"]
    sha = _signed_commit(
        world,
        "-c",
        "gpg.program=gpg",
        "-c",
        f"user.signingkey={alice.fingerprint}",
        env={"GNUPGHOME": str(alice.home)},
    )
    outcome = _verify_commit(world, _commit_config(world, gpg_keys=[str(alice.public)]))
    assert checks(outcome) == [] and outcome.errors == ()
    (record,) = outcome.attestations
    assert record.verified is True and record.subject_digest == f"gitCommit:{sha}"
    assert record.identity == f"Alice <alice@example.com> ({alice.fingerprint})"


@needs_gpg
def test_gpg_signed_commit_by_a_key_not_allowed_is_commit_signature_invalid(
    world: World, gpg_signers: dict[str, GpgSigner]
) -> None:
    mallory = gpg_signers["mallory"]
    _signed_commit(
        world,
        "-c",
        "gpg.program=gpg",
        "-c",
        f"user.signingkey={mallory.fingerprint}",
        env={"GNUPGHOME": str(mallory.home)},
    )
    outcome = _verify_commit(
        world, _commit_config(world, gpg_keys=[str(gpg_signers["alice"].public)])
    )
    assert checks(outcome) == ["provenance.commit_signature_invalid"]
    assert "not among the allowed GPG keys" in outcome.findings[0].message


@needs_ssh
def test_ssh_signed_commit_with_only_gpg_keys_allowed_is_commit_signature_invalid(
    world: World, tmp_path: Path
) -> None:
    alice = ssh_key(world.tmp / "ssh", "alice")
    _signed_commit(world, "-c", "gpg.format=ssh", "-c", f"user.signingkey={alice.private}")
    key = tmp_path / "unused.asc"
    key.write_text("not read: the commit is SSH-signed\n")
    outcome = _verify_commit(world, _commit_config(world, gpg_keys=[str(key)]))
    assert checks(outcome) == ["provenance.commit_signature_invalid"]
    assert "no allowed SSH signers are configured" in outcome.findings[0].message
