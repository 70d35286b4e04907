"""OCI models (KServe modelcars, `oci://registry/repo@sha256:…`): the binding is
running image digest == Git's digest == the subject of a trusted signature over that digest.

An image is signed the way cosign, GitHub artifact attestations and sigstore sign images: a
Sigstore bundle (`*.sigstore.json`) holding a DSSE in-toto Statement whose subject is the image
manifest digest, or a message signature over that digest; or a bare DSSE envelope holding such
a Statement (`*.intoto.json`, as `cosign attest --key` writes). Real keys made here, real
signatures; a model-signing bundle (`*.sig`) signs a manifest of files, never an image.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.config import Config
from auditor.model import Resource, StageOutcome
from auditor.provenance.dsse import SignatureInvalidError
from auditor.provenance.images import verify_image_signature
from tests.conftest import run_cli
from tests.provenance.attestation_factory import (
    COSIGN_SIGN_PREDICATE,
    IMAGE_NAME,
    KeyKind,
    SigningKey,
    flip_payload_byte,
    image_digest,
    image_manifest,
    image_statement,
    key_bundle_dsse,
    key_bundle_message,
    make_key,
    sign_envelope,
    statement_bytes,
)
from tests.provenance.binding_world import ATTESTATIONS, World, checks, isvc, pod
from tests.provenance.conftest import KEYLESS_IDENTITY, KEYLESS_ISSUER, PUBLIC_GOOD_ROOT
from tests.provenance.sigstore_factory import IDENTITY, ISSUER, LocalSigstore

DIGEST = image_digest(image_manifest("recs v2"))
OTHER = image_digest(image_manifest("recs v1"))


def oci(digest: str = DIGEST) -> dict[str, Any]:
    """The InferenceService of a modelcar pinned by digest in Git."""
    return isvc(uri=f"oci://{IMAGE_NAME}@{digest}")


def running(digest: str = DIGEST) -> list[Resource]:
    return [pod("recs-predictor-1", f"docker-pullable://{IMAGE_NAME}@{digest}")]


def config(world: World, **trust: Any) -> Config:
    # no lockfile: these tests are about the image, not its datasets
    extra: dict[str, Any] = {"trust": world.trust(**trust)} if trust else {}
    return world.trust_config(
        provenance={"attestations": "attestations/{namespace}/{name}"}, **extra
    )


def audit(
    world: World,
    files: dict[str, bytes],
    *,
    declared: str = DIGEST,
    runs: str | None = None,
    pods: list[Resource] | None = None,
    **trust: Any,
) -> tuple[dict[str, Any], StageOutcome]:
    """Commits `files` into the resource's attestation directory and verifies the model Git
    pins by `declared`, its pods running `runs` (Git's digest unless told) or given."""
    commit(world, files)
    pods = running(runs or declared) if pods is None else pods
    return world.run(oci(declared), pods=pods, config=config(world, **trust))


def commit(world: World, files: dict[str, bytes]) -> None:
    """`files` in the resource's attestation directory, and nothing else."""
    world.commit(
        {f"{ATTESTATIONS}/{name}": data for name, data in files.items()}, sig=False, slsa=False
    )


def cosign_signature(key: SigningKey, digest: str = DIGEST) -> bytes:
    """`cosign sign --key K --bundle image.sigstore.json` (cosign 3's bundle format)."""
    return key_bundle_dsse(image_statement(digest, name=None), key)


SIGNED_FORMS = {
    "cosign-sign-bundle": lambda key: {"image.sigstore.json": cosign_signature(key)},
    "message-signature-bundle": lambda key: {
        "image.sigstore.json": key_bundle_message(DIGEST, key)
    },
    "attestation-bundle": lambda key: {
        "image.sigstore.json": key_bundle_dsse(statement_bytes(subject_digest=DIGEST), key)
    },
    "attestation-envelope": lambda key: {
        "provenance.intoto.json": sign_envelope(statement_bytes(subject_digest=DIGEST), [key])
    },
}


# --- signed as it should be ----------------------------------------------------------------------


@pytest.mark.parametrize("form", SIGNED_FORMS)
def test_oci_model_signed_over_its_image_digest_is_verified(world: World, form: str) -> None:
    doc, outcome = audit(world, SIGNED_FORMS[form](world.release))
    assert checks(outcome) == [] and outcome.errors == ()
    signature = doc["signature"]
    assert signature["verified"] is True and signature["mode"] == "image"
    assert signature["digest"] == signature["declared_digest"] == DIGEST
    assert signature["signers"] == [
        {"authority": "release-key", "identity": world.release.authority.fingerprint}
    ]
    assert doc["running"]["checked"] is True
    record = next(r for r in outcome.attestations if r.attestation == "image-signature")
    assert record.verified is True and record.subject_digest == DIGEST
    assert record.authority == "release-key"
    assert record.source.startswith(f"{ATTESTATIONS}/")


def test_an_all_of_rule_is_satisfied_by_two_signatures_over_the_same_image(world: World) -> None:
    files = {
        "release.sigstore.json": cosign_signature(world.release),
        "other.sigstore.json": key_bundle_message(DIGEST, world.other),
    }
    both = [{"match": {"namespace": "ml-*"}, "require": ["release-key", "other-key"]}]
    doc, outcome = audit(world, files, models=both)
    assert checks(outcome) == [] and doc["signature"]["verified"] is True
    assert [s["authority"] for s in doc["signature"]["signers"]] == ["release-key", "other-key"]


# --- broken bindings, each with its exact reason -------------------------------------------------


def test_git_pinning_another_digest_than_the_signed_image_is_digest_mismatch(
    world: World,
) -> None:
    doc, outcome = audit(
        world, {"image.sigstore.json": cosign_signature(world.release)}, declared=OTHER
    )
    assert checks(outcome) == ["provenance.digest_mismatch"]
    finding = outcome.findings[0]
    assert finding.path == "/provenance/signature/image.sigstore.json"
    assert (finding.expected, finding.actual) == (OTHER, [DIGEST])
    assert finding.severity == "critical"
    assert f"for image {DIGEST}" in finding.message and f"Git declares {OTHER}" in finding.message
    assert doc["signature"]["verified"] is False


@pytest.mark.parametrize("form", ["statement", "message"])
def test_a_signature_over_another_image_is_digest_mismatch(world: World, form: str) -> None:
    other = (
        cosign_signature(world.release, OTHER)
        if form == "statement"
        else key_bundle_message(OTHER, world.release)
    )
    doc, outcome = audit(world, {"image.sigstore.json": other})
    assert checks(outcome) == ["provenance.digest_mismatch"]
    assert outcome.findings[0].actual == [OTHER]
    assert doc["signature"]["verified"] is False
    record = next(r for r in outcome.attestations if r.attestation == "image-signature")
    assert record.verified is False and record.reason == "provenance.digest_mismatch"


def test_a_message_signature_claiming_the_image_it_does_not_sign_is_signature_invalid(
    world: World,
) -> None:
    # signed over another image, its recorded messageDigest edited to Git's
    forged = key_bundle_message(OTHER, world.release, claimed=DIGEST)
    _, outcome = audit(world, {"image.sigstore.json": forged})
    assert checks(outcome) == ["provenance.signature_invalid"]


def test_a_changed_byte_in_the_signed_statement_is_signature_invalid(world: World) -> None:
    bundle = json.loads(cosign_signature(world.release))
    envelope = json.dumps(bundle["dsseEnvelope"]).encode()
    bundle["dsseEnvelope"] = json.loads(flip_payload_byte(envelope, index=60))
    _, outcome = audit(world, {"image.sigstore.json": json.dumps(bundle).encode()})
    assert checks(outcome) == ["provenance.signature_invalid"]
    assert "image.sigstore.json" in outcome.findings[0].message


def test_an_image_signed_by_a_key_the_rule_does_not_require_is_authority_not_required(
    world: World,
) -> None:
    doc, outcome = audit(world, {"image.sigstore.json": cosign_signature(world.other)})
    assert checks(outcome) == ["provenance.authority_not_required"]
    assert "other-key" in outcome.findings[0].message
    assert doc["signature"]["verified"] is False


def test_an_image_signed_by_an_unknown_key_is_signature_invalid(
    world: World, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path / "stranger", "p256", "stranger")
    _, outcome = audit(world, {"image.sigstore.json": cosign_signature(stranger)})
    assert checks(outcome) == ["provenance.signature_invalid"]


def test_an_unsigned_oci_model_is_unsigned(world: World) -> None:
    doc, outcome = audit(world, {})
    assert checks(outcome) == ["provenance.unsigned"]
    assert "no signature over image" in outcome.findings[0].message
    assert doc["signature"]["verified"] is False and doc["signature"]["mode"] == "none"


def test_a_model_signing_bundle_does_not_sign_an_oci_image(world: World) -> None:
    # model-signing signs a manifest of files; the digest that runs is the image's
    doc, outcome = audit(world, {"model.sig": world.bundle.read_bytes()})
    assert checks(outcome) == ["provenance.unsigned"]
    assert "model.sig is a model-signing bundle" in outcome.findings[0].message
    assert doc["signature"]["verified"] is False


def test_a_signed_statement_about_something_else_is_malformed(world: World) -> None:
    bundle = key_bundle_dsse(b'{"_type": "not a statement"}', world.release)
    _, outcome = audit(world, {"image.sigstore.json": bundle})
    assert checks(outcome) == ["provenance.malformed"]


def test_a_signed_image_whose_pods_run_another_digest_is_running_digest_mismatch(
    world: World,
) -> None:
    doc, outcome = audit(
        world, {"image.sigstore.json": cosign_signature(world.release)}, runs=OTHER
    )
    assert checks(outcome) == ["provenance.running_digest_mismatch"]
    assert outcome.findings[0].actual == [OTHER]
    assert doc["signature"]["verified"] is False


def test_an_all_of_rule_is_not_satisfied_by_signatures_over_two_images(world: World) -> None:
    files = {
        "release.sigstore.json": cosign_signature(world.release),
        "other.sigstore.json": key_bundle_message(OTHER, world.other),
    }
    both = [{"match": {"namespace": "ml-*"}, "require": ["release-key", "other-key"]}]
    doc, outcome = audit(world, files, models=both)
    assert checks(outcome) == ["provenance.digest_mismatch"]
    assert outcome.findings[0].path == "/provenance/signature/other.sigstore.json"
    assert doc["signature"]["verified"] is False


def test_pods_of_other_models_are_not_asked_for_the_running_digest(world: World) -> None:
    pods = [*running(), pod("other-1", f"docker-pullable://{IMAGE_NAME}@{OTHER}", isvc_name="x")]
    doc, outcome = audit(world, {"image.sigstore.json": cosign_signature(world.release)}, pods=pods)
    assert checks(outcome) == []
    assert [i["pod"] for i in doc["running"]["images"]] == ["recs-predictor-1"]


def test_one_pod_running_another_digest_is_running_digest_mismatch(world: World) -> None:
    pods = [*running(), pod("recs-predictor-2", f"{IMAGE_NAME}@{OTHER}")]
    doc, outcome = audit(world, {"image.sigstore.json": cosign_signature(world.release)}, pods=pods)
    assert checks(outcome) == ["provenance.running_digest_mismatch"]
    finding = outcome.findings[0]
    assert finding.actual == [OTHER] and "recs-predictor-2/modelcar" in finding.message
    assert doc["signature"]["verified"] is False


def test_a_signed_image_without_pods_is_running_digest_unknown_not_an_error(
    world: World,
) -> None:
    doc, outcome = audit(world, {"image.sigstore.json": cosign_signature(world.release)}, pods=[])
    assert checks(outcome) == ["provenance.running_digest_unknown"]
    assert outcome.findings[0].severity == "medium" and outcome.errors == ()
    assert doc["running"]["checked"] is False
    assert doc["signature"]["verified"] is True


# --- Sigstore keyless, offline ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> LocalSigstore:
    return LocalSigstore.create(tmp_path_factory.mktemp("sigstore"))


def ci_keyless(sigstore: LocalSigstore, **identity: str) -> dict[str, Any]:
    """A trust policy whose one authority is the CI's keyless identity on `sigstore`."""
    authority = {
        "issuer": identity.get("issuer", ISSUER),
        "subject": identity.get("subject", IDENTITY),
        "trusted_root": str(sigstore.trusted_root),
    }
    return {
        "authorities": [{"name": "ci-keyless", "sigstore": authority}],
        "models": [{"match": {"namespace": "ml-*"}, "require": ["ci-keyless"]}],
    }


KEYLESS_FORMS = {
    "message-signature": lambda sigstore, digest: sigstore.sign_digest(digest),
    "cosign-sign-statement": lambda sigstore, digest: sigstore.sign_dsse(image_statement(digest)),
}


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("form", KEYLESS_FORMS)
def test_a_keyless_signature_over_the_image_verifies_offline_with_the_trusted_root(
    world: World, sigstore: LocalSigstore, form: str
) -> None:
    files = {"image.sigstore.json": KEYLESS_FORMS[form](sigstore, DIGEST)}
    doc, outcome = audit(world, files, **ci_keyless(sigstore))
    assert checks(outcome) == []
    assert doc["signature"]["verified"] is True
    assert doc["signature"]["signers"] == [{"authority": "ci-keyless", "identity": IDENTITY}]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "expected",
    [
        {"subject": "https://github.com/acme/models/.github/workflows/other.yml@refs/heads/main"},
        {"issuer": "https://accounts.google.com"},
    ],
    ids=["another-workflow", "another-issuer"],
)
@pytest.mark.parametrize("form", KEYLESS_FORMS)
def test_a_keyless_signature_by_another_identity_is_identity_mismatch(
    world: World, sigstore: LocalSigstore, form: str, expected: dict[str, str]
) -> None:
    files = {"image.sigstore.json": KEYLESS_FORMS[form](sigstore, DIGEST)}
    _, outcome = audit(world, files, **ci_keyless(sigstore, **expected))
    assert checks(outcome) == ["provenance.identity_mismatch"]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("form", KEYLESS_FORMS)
def test_a_keyless_signature_over_another_image_is_digest_mismatch(
    world: World, sigstore: LocalSigstore, form: str
) -> None:
    files = {"image.sigstore.json": KEYLESS_FORMS[form](sigstore, OTHER)}
    _, outcome = audit(world, files, **ci_keyless(sigstore))
    assert checks(outcome) == ["provenance.digest_mismatch"]
    assert outcome.findings[0].actual == [OTHER]


@pytest.mark.usefixtures("no_network")
def test_a_keyless_signature_from_another_sigstore_is_signature_invalid(
    world: World, sigstore: LocalSigstore, tmp_path: Path
) -> None:
    elsewhere = LocalSigstore.create(tmp_path / "elsewhere", "elsewhere")
    files = {"image.sigstore.json": elsewhere.sign_digest(DIGEST)}
    _, outcome = audit(world, files, **ci_keyless(sigstore))
    assert checks(outcome) == ["provenance.signature_invalid"]
    assert "certificate chain" in outcome.findings[0].message


@pytest.mark.usefixtures("no_network")
def test_a_keyless_message_signature_with_a_changed_byte_is_signature_invalid(
    world: World, sigstore: LocalSigstore
) -> None:
    bundle = json.loads(sigstore.sign_digest(DIGEST))
    signature = bytearray(base64.b64decode(bundle["messageSignature"]["signature"]))
    signature[12] ^= 1
    bundle["messageSignature"]["signature"] = base64.b64encode(signature).decode()
    _, outcome = audit(
        world, {"image.sigstore.json": json.dumps(bundle).encode()}, **ci_keyless(sigstore)
    )
    assert checks(outcome) == ["provenance.signature_invalid"]


# public-good: the one real keyless bundle (model-signing's, a DSSE statement) signs a digest


def keyless_trust(world: World, tmp_path: Path, identity: str = KEYLESS_IDENTITY) -> dict[str, Any]:
    root = tmp_path / "trusted_root.json"
    shutil.copy(PUBLIC_GOOD_ROOT, root)
    return {
        "authorities": [
            {
                "name": "ci-keyless",
                "sigstore": {
                    "issuer": KEYLESS_ISSUER,
                    "subject": identity,
                    "trusted_root": str(root),
                },
            }
        ],
        "models": [{"match": {"namespace": "ml-*"}, "require": ["ci-keyless"]}],
    }


def keyless_subject(keyless_dir: Path) -> str:
    """The subject digest of the real keyless bundle's statement: the 'image' it signs here."""
    bundle = json.loads((keyless_dir / "model.sig").read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return "sha256:" + statement["subject"][0]["digest"]["sha256"]


@pytest.mark.usefixtures("no_network")
def test_a_public_good_keyless_signature_over_the_digest_verifies_offline(
    world: World, keyless_dir: Path, tmp_path: Path
) -> None:
    subject = keyless_subject(keyless_dir)
    files = {"image.sigstore.json": (keyless_dir / "model.sig").read_bytes()}
    doc, outcome = audit(world, files, declared=subject, **keyless_trust(world, tmp_path))
    assert checks(outcome) == []
    assert doc["signature"]["signers"] == [
        {"authority": "ci-keyless", "identity": KEYLESS_IDENTITY}
    ]


@pytest.mark.usefixtures("no_network")
def test_a_public_good_keyless_signature_by_another_identity_is_identity_mismatch(
    world: World, keyless_dir: Path, tmp_path: Path
) -> None:
    subject = keyless_subject(keyless_dir)
    files = {"image.sigstore.json": (keyless_dir / "model.sig").read_bytes()}
    trust = keyless_trust(world, tmp_path, identity="release-bot@acme.example")
    _, outcome = audit(world, files, declared=subject, **trust)
    assert checks(outcome) == ["provenance.identity_mismatch"]


# --- through the CLI ------------------------------------------------------------------------------


def test_audit_of_a_signed_modelcar_exits_0_and_of_another_images_signature_exits_1(
    world: World, tmp_path: Path
) -> None:
    body = oci()
    body["metadata"]["annotations"]["auditor.gitops.ml/attestations"] = ATTESTATIONS
    world.repo.write("ml/recs.yaml", yaml.safe_dump(body))
    snapshot = tmp_path / "live.json"
    live_pod = running()[0].body
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [body, live_pod]}))
    path = tmp_path / "auditor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(world.repo.path), "paths": ["ml"]},
                "clusters": [{"name": "prod", "snapshot": str(snapshot)}],
                "store": str(tmp_path / "audit.db"),
                "trust": world.trust(),
            }
        )
    )
    codes = {}
    for label, digest in (("signed", DIGEST), ("other image", OTHER)):
        commit(world, {"image.sigstore.json": cosign_signature(world.release, digest)})
        result = run_cli("audit", "--config", str(path), "--fail-on", "critical", "-o", "json")
        doc = json.loads(result.out)
        provenance = [f["check"] for f in doc["findings"] if f["category"] == "provenance"]
        codes[label] = (result.code, provenance)
    assert codes == {
        "signed": (0, []),
        "other image": (1, ["provenance.digest_mismatch"]),
    }


# --- the verifier, key by key ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa-pkcs1"])
def test_message_signatures_over_an_image_verify_with_ec_and_rsa_keys(
    tmp_path: Path, kind: KeyKind
) -> None:
    key = make_key(tmp_path, kind)
    signature = verify_image_signature(
        key_bundle_message(DIGEST, key), key.authority, image_digest=DIGEST, source="s.json"
    )
    assert signature.digests == (DIGEST,) and signature.form == "message"
    assert signature.signer.identity == key.authority.fingerprint


def test_an_ed25519_key_cannot_have_made_a_message_signature_over_a_digest(
    tmp_path: Path,
) -> None:
    p256, ed25519 = make_key(tmp_path, "p256", "a"), make_key(tmp_path, "ed25519", "b")
    with pytest.raises(SignatureInvalidError, match="Ed25519 key, which signs messages"):
        verify_image_signature(
            key_bundle_message(DIGEST, p256), ed25519.authority, image_digest=DIGEST, source="s"
        )


def test_a_statement_signed_with_an_ed25519_key_verifies(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ed25519")
    bundle = key_bundle_dsse(image_statement(DIGEST), key)
    signature = verify_image_signature(bundle, key.authority, image_digest=DIGEST, source="s")
    assert signature.digests == (DIGEST,) and signature.predicate_type == COSIGN_SIGN_PREDICATE


def test_a_cosign_2_attestation_statement_v0_1_is_read(tmp_path: Path) -> None:
    key = make_key(tmp_path)
    statement = image_statement(DIGEST, statement_type="https://in-toto.io/Statement/v0.1")
    envelope = sign_envelope(statement, [key])
    signature = verify_image_signature(envelope, key.authority, image_digest=DIGEST, source="s")
    assert signature.digests == (DIGEST,)
