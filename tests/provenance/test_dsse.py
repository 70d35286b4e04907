"""DSSE envelopes: real signatures with fresh keys, and each tampering rejected for its reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sigstore

from auditor.errors import ConfigError
from auditor.model import ResourceRef
from auditor.provenance import dsse
from auditor.provenance.dsse import (
    IdentityMismatchError,
    MalformedEnvelopeError,
    SignatureInvalidError,
    UnsignedEnvelopeError,
    attestation_finding,
    pae,
    parse_envelope,
    verify_envelope,
    verify_sigstore_bundle,
    verify_with_key,
)
from auditor.trust.authorities import CertificateChain, SigstoreIdentity
from tests.provenance.attestation_factory import (
    KeyKind,
    SigningKey,
    b64,
    flip_payload_byte,
    flip_signature_byte,
    make_key,
    sign_envelope,
    statement_bytes,
)

KEYLESS = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "model-signing-keyless"
PUBLIC_GOOD_ROOT = (
    Path(sigstore.__file__).parent
    / "_store"
    / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    / "trusted_root.json"
)
KEYLESS_SUBJECT = "stefanb@us.ibm.com"
KEYLESS_ISSUER = "https://sigstore.verify.ibm.com/oauth2"


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    dsse.clear_cache()


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return make_key(tmp_path / "keys")


def test_pae_is_the_dsse_v1_encoding() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa-pss", "rsa-pkcs1"])
def test_envelope_signed_with_a_fresh_key_verifies(tmp_path: Path, kind: KeyKind) -> None:
    key = make_key(tmp_path, kind)
    payload = statement_bytes()
    verified = verify_with_key(sign_envelope(payload, [key]), key.authority)
    assert verified.payload == payload
    assert verified.payload_type == "application/vnd.in-toto+json"
    assert verified.signer.kind == "key"
    assert verified.signer.identity == key.authority.fingerprint
    assert verified.signer.authority == "release-key"
    assert verified.envelope_digest.startswith("sha256:")


def test_keyid_hint_is_not_trusted_either_way(key: SigningKey) -> None:
    """DSSE keyids are unauthenticated: a wrong hint neither blocks nor grants verification."""
    envelope = sign_envelope(statement_bytes(), [key], keyid="not-this-key")
    assert verify_with_key(envelope, key.authority).payload == statement_bytes()


def test_url_safe_base64_is_accepted(key: SigningKey) -> None:
    doc = json.loads(sign_envelope(statement_bytes(), [key]))
    doc["payload"] = doc["payload"].replace("+", "-").replace("/", "_").rstrip("=")
    assert verify_with_key(json.dumps(doc).encode(), key.authority).payload == statement_bytes()


def test_one_good_signature_among_several_is_enough(tmp_path: Path, key: SigningKey) -> None:
    other = make_key(tmp_path / "other", "ed25519", name="other")
    envelope = sign_envelope(statement_bytes(), [other, key])
    assert verify_with_key(envelope, key.authority).signer.authority == "release-key"


# --- the tamper matrix: each case has its own reason -------------------------------------------


def test_changed_payload_byte_is_signature_invalid(key: SigningKey) -> None:
    envelope = flip_payload_byte(sign_envelope(statement_bytes(), [key]))
    with pytest.raises(SignatureInvalidError) as caught:
        verify_with_key(envelope, key.authority)
    assert caught.value.check == "provenance.signature_invalid"
    assert "no signature of the envelope verifies with release-key" in caught.value.message


def test_changed_signature_byte_is_signature_invalid(key: SigningKey) -> None:
    envelope = flip_signature_byte(sign_envelope(statement_bytes(), [key]))
    with pytest.raises(SignatureInvalidError):
        verify_with_key(envelope, key.authority)


def test_changed_payload_type_is_signature_invalid(key: SigningKey) -> None:
    """The payload type is signed too (PAE): relabelling the payload breaks the signature."""
    doc = json.loads(sign_envelope(statement_bytes(), [key]))
    doc["payloadType"] = "application/json"
    with pytest.raises(SignatureInvalidError):
        verify_with_key(json.dumps(doc).encode(), key.authority)


def test_another_key_is_signature_invalid(tmp_path: Path, key: SigningKey) -> None:
    stranger = make_key(tmp_path / "stranger", "p256", name="stranger")
    envelope = sign_envelope(statement_bytes(), [stranger])
    with pytest.raises(SignatureInvalidError) as caught:
        verify_with_key(envelope, key.authority)
    assert key.authority.fingerprint in caught.value.message


@pytest.mark.parametrize("cut", [1, 10, 100, 0.5])
def test_truncated_envelope_is_malformed(key: SigningKey, cut: float) -> None:
    envelope = sign_envelope(statement_bytes(), [key])
    end = int(len(envelope) * cut) if isinstance(cut, float) else len(envelope) - cut
    with pytest.raises(MalformedEnvelopeError) as caught:
        verify_with_key(envelope[:end], key.authority)
    assert caught.value.check == "provenance.malformed"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("payload"), "lacks payload"),
        (lambda d: d.pop("payloadType"), "lacks payloadType"),
        (lambda d: d.update(payload="not base64!"), "payload is not valid base64"),
        (lambda d: d.update(payload=d["payload"][:41]), "payload is truncated base64"),
        (lambda d: d.update(signatures={}), "signatures is not a list"),
        (lambda d: d["signatures"][0].pop("sig"), "signatures[0] has no sig"),
        (lambda d: d["signatures"][0].update(sig=""), "signatures[0].sig is empty"),
        (lambda d: d.update(payloadType=7), "payloadType is not a non-empty string"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(key: SigningKey, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(sign_envelope(statement_bytes(), [key]))
    mutate(doc)
    with pytest.raises(
        MalformedEnvelopeError, match=expected.replace("[", r"\[").replace("]", r"\]")
    ):
        verify_with_key(json.dumps(doc).encode(), key.authority)


def test_envelope_without_signatures_is_unsigned(key: SigningKey) -> None:
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": b64(statement_bytes()),
            "signatures": [],
        }
    ).encode()
    with pytest.raises(UnsignedEnvelopeError) as caught:
        verify_with_key(envelope, key.authority)
    assert caught.value.check == "provenance.unsigned"


def test_oversized_envelope_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dsse, "MAX_ENVELOPE_BYTES", 100)
    with pytest.raises(MalformedEnvelopeError, match="over the 100-byte limit"):
        parse_envelope(b"{" + b" " * 200 + b"}")


# --- cache -----------------------------------------------------------------------------------


def test_results_are_cached_by_envelope_and_key(
    key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope = sign_envelope(statement_bytes(), [key])
    tampered = flip_payload_byte(envelope)
    verify_with_key(envelope, key.authority)
    with pytest.raises(SignatureInvalidError):
        verify_with_key(tampered, key.authority)
    assert dsse.cache_size() == 2

    def must_not_run(*_: object) -> bool:
        raise AssertionError("verified twice")

    monkeypatch.setattr(dsse, "_verify_key_signature", must_not_run)
    assert verify_with_key(envelope, key.authority).payload == statement_bytes()
    with pytest.raises(SignatureInvalidError):  # a cached rejection is still a rejection
        verify_with_key(tampered, key.authority)


# --- authorities -----------------------------------------------------------------------------


def test_verify_envelope_dispatches_on_the_authority_kind(key: SigningKey) -> None:
    envelope = sign_envelope(statement_bytes(), [key])
    assert verify_envelope(envelope, key.authority).signer.identity == key.authority.fingerprint


def test_a_certificate_chain_authority_cannot_verify_attestations(tmp_path: Path) -> None:
    chain = CertificateChain(name="ml-ca", paths=(tmp_path / "ca.pem",), certificates=())
    with pytest.raises(ConfigError, match="cannot verify DSSE attestations"):
        verify_envelope(b"{}", chain)


# --- Sigstore keyless (the one real bundle from shared testdata) -------------------------------

needs_keyless = pytest.mark.skipif(
    not (KEYLESS / "model.sig").is_file() or not PUBLIC_GOOD_ROOT.is_file(),
    reason="../shared/testdata/model-signing-keyless or sigstore's bundled trusted_root.json is absent",
)


def keyless_authority(
    tmp_path: Path,
    *,
    subject: str | None = KEYLESS_SUBJECT,
    subject_regexp: str | None = None,
    issuer: str = KEYLESS_ISSUER,
) -> SigstoreIdentity:
    root = tmp_path / "trusted_root.json"
    shutil.copy(PUBLIC_GOOD_ROOT, root)
    return SigstoreIdentity.load(
        "ci-keyless",
        issuer=issuer,
        subject=subject,
        subject_regexp=subject_regexp,
        trusted_root=root,
    )


@needs_keyless
def test_sigstore_dsse_bundle_verifies_offline(tmp_path: Path) -> None:
    bundle = (KEYLESS / "model.sig").read_bytes()
    verified = verify_sigstore_bundle(bundle, keyless_authority(tmp_path))
    assert verified.payload_type == "application/vnd.in-toto+json"
    assert json.loads(verified.payload)["_type"] == "https://in-toto.io/Statement/v1"
    assert verified.signer.kind == "sigstore"
    assert verified.signer.identity == KEYLESS_SUBJECT
    assert verified.signer.issuer == KEYLESS_ISSUER
    assert verified.signer.authority == "ci-keyless"


@needs_keyless
def test_sigstore_subject_regexp_names_the_matching_identity(tmp_path: Path) -> None:
    authority = keyless_authority(tmp_path, subject=None, subject_regexp=r".*@us\.ibm\.com")
    verified = verify_envelope((KEYLESS / "model.sig").read_bytes(), authority)
    assert verified.signer.identity == KEYLESS_SUBJECT


@needs_keyless
@pytest.mark.parametrize(
    ("subject", "issuer"),
    [
        ("someone-else@example.com", KEYLESS_ISSUER),
        (KEYLESS_SUBJECT, "https://token.actions.githubusercontent.com"),
    ],
    ids=["another-subject", "another-issuer"],
)
def test_sigstore_bundle_by_another_identity_is_identity_mismatch(
    tmp_path: Path, subject: str, issuer: str
) -> None:
    authority = keyless_authority(tmp_path, subject=subject, issuer=issuer)
    with pytest.raises(IdentityMismatchError) as caught:
        verify_sigstore_bundle((KEYLESS / "model.sig").read_bytes(), authority)
    assert caught.value.check == "provenance.identity_mismatch"


@needs_keyless
def test_sigstore_bundle_with_a_changed_payload_byte_is_signature_invalid(tmp_path: Path) -> None:
    doc = json.loads((KEYLESS / "model.sig").read_bytes())
    doc["dsseEnvelope"] = json.loads(
        flip_payload_byte(json.dumps(doc["dsseEnvelope"]).encode(), index=30)
    )
    with pytest.raises(SignatureInvalidError):
        verify_sigstore_bundle(json.dumps(doc).encode(), keyless_authority(tmp_path))


@needs_keyless
def test_truncated_sigstore_bundle_is_malformed(tmp_path: Path) -> None:
    data = (KEYLESS / "model.sig").read_bytes()
    with pytest.raises(MalformedEnvelopeError):
        verify_sigstore_bundle(data[: len(data) // 2], keyless_authority(tmp_path))


def test_a_rejection_becomes_a_finding_with_its_exact_reason(key: SigningKey) -> None:
    ref = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud-scorer")
    envelope = flip_payload_byte(sign_envelope(statement_bytes(), [key]))
    with pytest.raises(SignatureInvalidError) as caught:
        verify_with_key(envelope, key.authority, source="ml/provenance.dsse.json")
    finding = attestation_finding(caught.value, ref=ref)
    assert finding.category == "provenance"
    assert finding.check == "provenance.signature_invalid"
    assert finding.message.startswith(
        "InferenceService ml/fraud-scorer: attestation (ml/provenance.dsse.json) rejected: "
        "no signature of the envelope verifies with release-key"
    )


@needs_keyless
@pytest.mark.parametrize("signatures", [0, 2], ids=["none", "two"])
def test_sigstore_bundle_whose_envelope_has_not_one_signature_is_malformed(
    tmp_path: Path, signatures: int
) -> None:
    # sigstore refuses such an envelope with its own exception: it must read as a finding
    doc = json.loads((KEYLESS / "model.sig").read_bytes())
    doc["dsseEnvelope"]["signatures"] = doc["dsseEnvelope"]["signatures"] * signatures
    with pytest.raises(MalformedEnvelopeError, match="DSSE envelope"):
        verify_sigstore_bundle(json.dumps(doc).encode(), keyless_authority(tmp_path))
