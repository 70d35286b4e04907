"""Model signatures made with model-signing, verified against the trust policy.

Every signature here is real: fresh keys and a self-made CA sign small models through
model-signing's own signing API; the keyless bundle is the real one from shared testdata.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import model_signing
import pytest
from model_signing._signing import sign_ec_key, signing

from auditor.errors import InputError
from auditor.provenance.signing import ModelVerification, manifest_digest, verify_model
from auditor.provenance.signing.manifest import Hasher
from auditor.trust.policy import TrustPolicy, load_trust_policy
from tests.provenance.conftest import (
    KEYLESS_IDENTITY,
    KEYLESS_ISSUER,
    PUBLIC_GOOD_ROOT,
    STAGING_ROOT,
    Chain,
    KeyPair,
    sign_with_certificate,
    sign_with_key,
)

WritePolicy = Callable[..., Path]


def policy_for(
    write_policy: WritePolicy, authorities: dict[str, str], rules: list[str] | None = None
) -> TrustPolicy:
    """A trust policy from `name: <authority YAML flow mapping>` and rule lines."""
    lines = ["trust:", "  authorities:"]
    lines += [f"    - {{name: {name}, {spec}}}" for name, spec in authorities.items()]
    if rules is None:
        rules = [f"{{match: {{}}, require: [{next(iter(authorities))}]}}"]
    lines += ["  models:", *[f"    - {rule}" for rule in rules]]
    return load_trust_policy(write_policy("\n".join(lines) + "\n"))


def key_authority(pair: KeyPair) -> str:
    return f"key: {pair.public}"


def checks(result: ModelVerification) -> list[str]:
    return [f.check for f in result.findings]


# ---------------------------------------------------------------------------------------------
# Every key type, the certificate chain, keyless


@pytest.mark.parametrize("kind", ["ec-p256", "ec-p384", "ec-p521"])
def test_ec_key_signature_verifies_and_reports_the_subject_digest(
    kind: str, model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys[kind].private, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"release-key": key_authority(keys[kind])})
    result = verify_model(model_dir, signature, policy)
    assert result.verified, result.findings
    assert result.findings == ()
    assert result.digest == manifest_digest(model_signing.hashing.hash(model_dir))
    [signer] = result.signers
    assert signer.authority == "release-key"
    assert signer.identity.startswith("sha256:")


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_model_signing_signs_with_ec_keys_only(kind: str, keys: dict[str, KeyPair]) -> None:
    # model-signing 1.1.1 refuses Ed25519 and RSA signing keys, so no model bundle can carry
    # such a signature; the trust policy still accepts these keys for other attestations.
    with pytest.raises((ValueError, AttributeError)):
        sign_ec_key.Signer(keys[kind].private)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_non_ec_key_authority_cannot_satisfy_a_model_rule(
    kind: str, model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"release-key": key_authority(keys[kind])})
    result = verify_model(model_dir, signature, policy)
    assert not result.verified
    assert checks(result) == ["provenance.unverified"]
    assert "EC P-256/P-384/P-521 keys only" in result.findings[0].message


def test_certificate_chain_to_self_made_ca_verifies(
    model_dir: Path, tmp_path: Path, chain: Chain, write_policy: WritePolicy
) -> None:
    signature = sign_with_certificate(model_dir, chain, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"ml-ca": f"certificate_chain: [{chain.root}]"})
    result = verify_model(model_dir, signature, policy)
    assert result.verified, result.findings
    assert [s.to_json() for s in result.signers] == [
        {"authority": "ml-ca", "identity": "CN=acme model signer"}
    ]


def keyless_policy(
    write_policy: WritePolicy,
    *,
    subject: str = f"subject: {KEYLESS_IDENTITY}",
    issuer: str = KEYLESS_ISSUER,
    root: Path = PUBLIC_GOOD_ROOT,
    root_key: str = "trusted_root",
) -> TrustPolicy:
    return policy_for(
        write_policy,
        {"ibm": f"sigstore: {{issuer: '{issuer}', {subject}, {root_key}: '{root}'}}"},
    )


@pytest.mark.usefixtures("no_network")
def test_keyless_bundle_verifies_offline_from_trusted_root(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    result = verify_model(
        keyless_dir,
        keyless_dir / "model.sig",
        keyless_policy(write_policy),
        ignore_paths=["ignore-me"],
    )
    assert result.verified, result.findings
    assert result.signers[0].identity == KEYLESS_IDENTITY
    assert (
        result.digest == "sha256:61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226"
    )


@pytest.mark.usefixtures("no_network")
def test_keyless_bundle_verifies_with_subject_regexp_and_trust_config(
    keyless_dir: Path, tmp_path: Path, write_policy: WritePolicy
) -> None:
    root = json.loads(PUBLIC_GOOD_ROOT.read_text())
    config = {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": root,
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [],
            "oidcUrls": [],
            "rekorTlogUrls": [],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }
    trust_config = tmp_path / "trust_config.json"
    trust_config.write_text(json.dumps(config))
    policy = keyless_policy(
        write_policy,
        subject="subject_regexp: '.+@us[.]ibm[.]com'",
        root=trust_config,
        root_key="trust_config",
    )
    result = verify_model(
        keyless_dir, keyless_dir / "model.sig", policy, ignore_paths=["ignore-me"]
    )
    assert result.verified, result.findings
    assert result.signers[0].identity == KEYLESS_IDENTITY


def test_keyless_subject_regexp_must_match_the_whole_identity(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    policy = keyless_policy(write_policy, subject="subject_regexp: 'stefanb'")
    result = verify_model(
        keyless_dir, keyless_dir / "model.sig", policy, ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.identity_mismatch"]


def test_keyless_file_outside_the_signature_is_an_unsigned_file(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    # `ignore-me` is not covered by the signature: without --ignore-paths it is an added file.
    result = verify_model(keyless_dir, keyless_dir / "model.sig", keyless_policy(write_policy))
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].details["extra"] == ["ignore-me"]


# ---------------------------------------------------------------------------------------------
# The tamper matrix: each case rejected with its own reason


def _flip_signature_byte(signature: Path) -> None:
    bundle = json.loads(signature.read_text())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[len(raw) // 2] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    signature.write_text(json.dumps(bundle))


def _swap_subject_digest(payload: signing.Payload) -> None:
    payload.statement.pb.subject[0].digest["sha256"] = "ab" * 32


@pytest.fixture
def signed(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> tuple[Path, Path, TrustPolicy]:
    signature = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = policy_for(
        write_policy,
        {"release-key": key_authority(keys["ec-p256"]), "dev-key": key_authority(keys["ec-p384"])},
        ["{match: {}, require: [release-key]}"],
    )
    assert verify_model(model_dir, signature, policy).verified
    return model_dir, signature, policy


def test_changed_model_byte_is_digest_mismatch(signed: tuple[Path, Path, TrustPolicy]) -> None:
    model, signature, policy = signed
    weights = model / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = verify_model(model, signature, policy)
    assert checks(result) == ["provenance.digest_mismatch"]
    finding = result.findings[0]
    assert finding.details["changed"] == ["weights.bin"]
    assert finding.expected == result.digest != finding.actual
    assert result.signers == ()


def test_removed_file_is_digest_mismatch(signed: tuple[Path, Path, TrustPolicy]) -> None:
    model, signature, policy = signed
    (model / "tokenizer" / "vocab.txt").unlink()
    result = verify_model(model, signature, policy)
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].details["missing"] == ["tokenizer/vocab.txt"]


def test_added_unsigned_file_is_digest_mismatch(signed: tuple[Path, Path, TrustPolicy]) -> None:
    model, signature, policy = signed
    (model / "backdoor.py").write_text("import os\n")
    result = verify_model(model, signature, policy)
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].details["extra"] == ["backdoor.py"]


def test_ignore_paths_leave_an_added_file_out(signed: tuple[Path, Path, TrustPolicy]) -> None:
    model, signature, policy = signed
    (model / "README.md").write_text("notes\n")
    assert verify_model(model, signature, policy, ignore_paths=["README.md"]).verified


def test_changed_signature_byte_is_signature_invalid(
    signed: tuple[Path, Path, TrustPolicy],
) -> None:
    model, signature, policy = signed
    _flip_signature_byte(signature)
    result = verify_model(model, signature, policy)
    assert checks(result) == ["provenance.signature_invalid"]
    assert result.digest is None


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.99])
def test_truncated_bundle_is_signature_invalid(
    signed: tuple[Path, Path, TrustPolicy], keep: float
) -> None:
    model, signature, policy = signed
    data = signature.read_bytes()
    signature.write_bytes(data[: int(len(data) * keep)])
    result = verify_model(model, signature, policy)
    assert checks(result) == ["provenance.signature_invalid"]


@pytest.mark.parametrize(
    "content", [b"", b"\xff\xfe garbage", b"[]", b'{"mediaType": "x"}', b"null"]
)
def test_garbage_bundle_is_signature_invalid(
    signed: tuple[Path, Path, TrustPolicy], content: bytes
) -> None:
    model, signature, policy = signed
    signature.write_bytes(content)
    assert checks(verify_model(model, signature, policy)) == ["provenance.signature_invalid"]


def test_every_single_byte_change_of_the_bundle_is_a_rejection_never_a_traceback(
    signed: tuple[Path, Path, TrustPolicy],
) -> None:
    model, signature, policy = signed
    original = signature.read_bytes()
    # Every 7th byte: covers structure, key hint, payload and signature in well under a second.
    for offset in range(0, len(original), 7):
        data = bytearray(original)
        data[offset] = ord("A") if data[offset] != ord("A") else ord("B")
        signature.write_bytes(bytes(data))
        result = verify_model(model, signature, policy, use_cache=False)
        assert not result.verified or bytes(data) == original, offset
        assert result.verified or result.findings, offset


def test_another_key_is_signature_invalid(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["other"].private, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    result = verify_model(model_dir, signature, policy)
    assert checks(result) == ["provenance.signature_invalid"]
    assert "not signed by release-key" in result.findings[0].message


def test_another_ca_is_identity_mismatch(
    model_dir: Path, tmp_path: Path, chain: Chain, other_chain: Chain, write_policy: WritePolicy
) -> None:
    signature = sign_with_certificate(model_dir, other_chain, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"ml-ca": f"certificate_chain: [{chain.root}]"})
    result = verify_model(model_dir, signature, policy)
    assert checks(result) == ["provenance.identity_mismatch"]
    assert "evil model signer" in result.findings[0].message


def test_changed_certificate_signature_byte_is_signature_invalid(
    model_dir: Path, tmp_path: Path, chain: Chain, write_policy: WritePolicy
) -> None:
    signature = sign_with_certificate(model_dir, chain, tmp_path / "model.sig")
    _flip_signature_byte(signature)
    policy = policy_for(write_policy, {"ml-ca": f"certificate_chain: [{chain.root}]"})
    assert checks(verify_model(model_dir, signature, policy)) == ["provenance.signature_invalid"]


def test_keyless_another_subject_is_identity_mismatch(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    policy = keyless_policy(write_policy, subject="subject: someone-else@example.com")
    result = verify_model(
        keyless_dir, keyless_dir / "model.sig", policy, ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.identity_mismatch"]
    assert result.findings[0].actual["subjects"] == [KEYLESS_IDENTITY]


def test_keyless_another_issuer_is_identity_mismatch(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    policy = keyless_policy(write_policy, issuer="https://accounts.google.com")
    result = verify_model(
        keyless_dir, keyless_dir / "model.sig", policy, ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.identity_mismatch"]
    assert result.findings[0].actual["issuer"] == KEYLESS_ISSUER


def test_keyless_another_trust_root_is_identity_mismatch(
    keyless_dir: Path, write_policy: WritePolicy
) -> None:
    policy = keyless_policy(write_policy, root=STAGING_ROOT)
    result = verify_model(
        keyless_dir, keyless_dir / "model.sig", policy, ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.identity_mismatch"]


def test_keyless_changed_signature_byte_is_signature_invalid(
    keyless_dir: Path, tmp_path: Path, write_policy: WritePolicy
) -> None:
    model = tmp_path / "keyless"
    shutil.copytree(keyless_dir, model)
    _flip_signature_byte(model / "model.sig")
    result = verify_model(
        model, model / "model.sig", keyless_policy(write_policy), ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.signature_invalid"]


def test_keyless_bundle_with_two_envelope_signatures_is_signature_invalid(
    keyless_dir: Path, tmp_path: Path, write_policy: WritePolicy
) -> None:
    # sigstore refuses such an envelope with its own exception: a finding, never a crash
    model = tmp_path / "keyless"
    shutil.copytree(keyless_dir, model)
    bundle = json.loads((model / "model.sig").read_bytes())
    bundle["dsseEnvelope"]["signatures"] *= 2
    (model / "model.sig").write_text(json.dumps(bundle))
    result = verify_model(
        model, model / "model.sig", keyless_policy(write_policy), ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.signature_invalid"]
    assert "exactly one signature" in result.findings[0].message


def test_keyless_changed_model_byte_is_digest_mismatch(
    keyless_dir: Path, tmp_path: Path, write_policy: WritePolicy
) -> None:
    model = tmp_path / "keyless"
    shutil.copytree(keyless_dir, model)
    (model / "signme-1").chmod(0o644)
    (model / "signme-1").write_bytes(b"signme-X")
    result = verify_model(
        model, model / "model.sig", keyless_policy(write_policy), ignore_paths=["ignore-me"]
    )
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].details["changed"] == ["signme-1"]


def test_subject_digest_swapped_and_resigned_is_digest_mismatch(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    # A trusted signer signs a statement whose subject digest is not the digest of its files.
    payload = signing.Payload(model_signing.hashing.hash(model_dir))
    _swap_subject_digest(payload)
    signature = tmp_path / "model.sig"
    sign_ec_key.Signer(keys["ec-p256"].private).sign(payload).write(signature)
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    result = verify_model(model_dir, signature, policy)
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].expected == "sha256:" + "ab" * 32


def test_subject_digest_swapped_without_resigning_is_signature_invalid(
    signed: tuple[Path, Path, TrustPolicy],
) -> None:
    model, signature, policy = signed
    bundle = json.loads(signature.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "cd" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    signature.write_text(json.dumps(bundle))
    assert checks(verify_model(model, signature, policy)) == ["provenance.signature_invalid"]


def test_unsigned_model_is_unsigned(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    result = verify_model(model_dir, tmp_path / "model.sig", policy)
    assert checks(result) == ["provenance.unsigned"]
    assert result.findings[0].severity == "high"


def test_signature_by_an_authority_the_rule_does_not_require(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p384"].private, tmp_path / "model.sig")
    policy = policy_for(
        write_policy,
        {"release-key": key_authority(keys["ec-p256"]), "dev-key": key_authority(keys["ec-p384"])},
        [
            "{match: {namespace: 'prod-*'}, require: [release-key]}",
            "{match: {}, require: [dev-key]}",
        ],
    )
    result = verify_model(model_dir, signature, policy, namespace="prod-eu", name="fraud")
    assert checks(result) == ["provenance.authority_not_required"]
    assert [s.authority for s in result.signers] == ["dev-key"]  # who did sign is still said
    # The same signature is enough where the rule asks for dev-key.
    assert verify_model(model_dir, signature, policy, namespace="dev", name="fraud").verified


def test_no_matching_rule_is_no_rule(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = policy_for(
        write_policy,
        {"release-key": key_authority(keys["ec-p256"])},
        ["{match: {namespace: 'prod-*'}, require: [release-key]}"],
    )
    result = verify_model(model_dir, signature, policy, namespace="dev", name="fraud")
    assert checks(result) == ["provenance.no_rule"]
    assert result.signers[0].authority == "release-key"  # signed, but fail closed


def test_policy_without_model_rules_is_no_rule(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = load_trust_policy(
        write_policy(f"trust:\n  authorities: [{{name: k, key: {keys['ec-p256'].public}}}]\n")
    )
    assert checks(verify_model(model_dir, signature, policy)) == ["provenance.no_rule"]


def test_all_of_rule_needs_every_signature(
    model_dir: Path,
    tmp_path: Path,
    keys: dict[str, KeyPair],
    chain: Chain,
    write_policy: WritePolicy,
) -> None:
    by_key = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "key.sig")
    by_ca = sign_with_certificate(model_dir, chain, tmp_path / "ca.sig")
    policy = policy_for(
        write_policy,
        {
            "release-key": key_authority(keys["ec-p256"]),
            "ml-ca": f"certificate_chain: [{chain.root}]",
        },
        ["{match: {}, require: [release-key, ml-ca]}"],
    )
    partial = verify_model(model_dir, by_key, policy)
    assert checks(partial) == ["provenance.unverified"]
    assert "all of: release-key, ml-ca" in partial.findings[0].message
    both = verify_model(model_dir, [by_key, by_ca], policy)
    assert both.verified
    assert [s.authority for s in both.signers] == ["release-key", "ml-ca"]


def test_bare_directory_passes_when_any_rule_is_satisfied(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p384"].private, tmp_path / "model.sig")
    policy = policy_for(
        write_policy,
        {"release-key": key_authority(keys["ec-p256"]), "dev-key": key_authority(keys["ec-p384"])},
        [
            "{match: {namespace: 'prod-*'}, require: [release-key]}",
            "{match: {namespace: dev}, require: [dev-key]}",
        ],
    )
    assert verify_model(model_dir, signature, policy).verified
    assert not verify_model(model_dir, signature, policy, namespace="prod-us").verified


def test_name_defaults_to_the_directory_name_for_rule_matching(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(model_dir, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = policy_for(
        write_policy,
        {"release-key": key_authority(keys["ec-p256"])},
        ["{match: {namespace: ml, name: 'fraud-*'}, require: [release-key]}"],
    )
    result = verify_model(model_dir, signature, policy, namespace="ml")
    assert result.verified
    assert (result.ref.kind, result.ref.namespace, result.ref.name) == (
        "Model",
        "ml",
        "fraud-scorer",
    )


# ---------------------------------------------------------------------------------------------
# Formats and options model-signing has


def test_signature_inside_the_model_directory_is_not_part_of_the_model(
    model_dir: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = sign_with_key(
        model_dir, keys["ec-p256"].private, model_dir / "model.sig", ignore=["model.sig"]
    )
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    assert verify_model(model_dir, signature, policy).verified


def test_sharded_serialization_verifies(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    signature = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=keys["ec-p256"].private
    ).set_hashing_config(
        model_signing.hashing.Config().use_shard_serialization(shard_size=4096)
    ).sign(model_dir, signature)
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    assert verify_model(model_dir, signature, policy).verified
    with (model_dir / "weights.bin").open("r+b") as handle:
        handle.seek(10_000)
        handle.write(b"\x00\x01")
    result = verify_model(model_dir, signature, policy)
    assert checks(result) == ["provenance.digest_mismatch"]
    assert result.findings[0].details["changed"] == ["weights.bin:8192:12288"]


def test_single_file_model_verifies(
    tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x00" * 4096)
    signature = sign_with_key(model, keys["ec-p256"].private, tmp_path / "model.sig")
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    result = verify_model(model, signature, policy)
    assert result.verified, result.findings
    assert result.ref.name == "model.safetensors"


def test_pre_1_0_key_bundle_without_hint_verifies_and_keeps_stdout_clean(
    signed: tuple[Path, Path, TrustPolicy], capsys: pytest.CaptureFixture[str]
) -> None:
    # Bundles before model-signing 1.0 carried no key hint; its verifier prints a warning to
    # stdout for them, which must not reach `-o json` output.
    model, signature, policy = signed
    bundle = json.loads(signature.read_text())
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    signature.write_text(json.dumps(bundle))
    result = verify_model(model, signature, policy)
    assert result.verified, result.findings
    assert capsys.readouterr().out == ""


def test_missing_model_is_an_input_error(
    tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    with pytest.raises(InputError, match="does not exist"):
        verify_model(tmp_path / "absent", tmp_path / "model.sig", policy)


# ---------------------------------------------------------------------------------------------
# Cache


def test_cache_answers_again_without_hashing_and_notices_a_change(
    signed: tuple[Path, Path, TrustPolicy], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, signature, policy = signed
    first = verify_model(model, signature, policy)
    calls: list[Path] = []
    original = Hasher._hash

    def counting(self: Hasher, serialization: dict[str, object]) -> object:
        calls.append(self.model)
        return original(self, serialization)

    monkeypatch.setattr(Hasher, "_hash", counting)
    assert verify_model(model, signature, policy) is first
    assert calls == []
    (model / "config.json").write_text('{"layers": 3}\n')  # same size, new ctime
    assert not verify_model(model, signature, policy).verified
    assert len(calls) == 1


def test_cache_key_includes_the_policy(
    signed: tuple[Path, Path, TrustPolicy], keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    model, signature, policy = signed
    assert verify_model(model, signature, policy).verified
    other = policy_for(write_policy, {"release-key": key_authority(keys["other"])})
    assert not verify_model(model, signature, other).verified


def test_findings_serialise_as_design_says(signed: tuple[Path, Path, TrustPolicy]) -> None:
    model, signature, policy = signed
    (model / "extra.bin").write_bytes(b"x")
    document = verify_model(model, signature, policy).to_json()
    assert set(document) == {"verified", "model", "signers", "findings"}
    assert document["model"]["path"] == str(model)
    finding = document["findings"][0]
    assert finding["category"] == "provenance"
    assert finding["resource"] == {
        "apiVersion": "auditor.gitops.ml/v1",
        "kind": "Model",
        "namespace": "",
        "name": "fraud-scorer",
    }
    assert len(finding["fingerprint"]) == 32


def test_v0_2_compat_certificate_bundle_verifies(
    tmp_path: Path, chain: Chain, write_policy: WritePolicy
) -> None:
    # model-signing 0.2 signed a statement listing files as subjects (predicate
    # Digests/v0.1) over a buggy PAE, always with SHA-256; 1.1.1 still verifies those bundles
    # and cannot make them, so this one is assembled by hand with the CA leaf key.
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from model_signing._signing import sign_sigstore_pb

    model = tmp_path / "v0.2-model"
    model.mkdir()
    (model / "signme-1").write_bytes(b"signme-1\n")
    (model / "signme-2").write_bytes(b"signme-2\n")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": n, "digest": {"sha256": hashlib.sha256((model / n).read_bytes()).hexdigest()}}
            for n in ("signme-1", "signme-2")
        ],
        "predicateType": "https://model_signing/Digests/v0.1",
        "predicate": {"unused": "Unused, just passed due to API requirements"},
    }
    payload = json.dumps(statement, indent=2).encode()
    key = serialization.load_pem_private_key(chain.leaf_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw_sig = key.sign(sign_sigstore_pb.pae_compat(payload), ec.ECDSA(hashes.SHA256()))

    def der(path: Path) -> str:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "x509CertificateChain": {
                "certificates": [
                    {"rawBytes": der(chain.leaf)},
                    {"rawBytes": der(chain.intermediate)},
                ]
            }
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(raw_sig).decode(), "keyid": None}],
        },
    }
    (model / "model.sig").write_text(json.dumps(bundle))
    policy = policy_for(write_policy, {"ml-ca": f"certificate_chain: [{chain.root}]"})
    result = verify_model(model, model / "model.sig", policy)
    assert result.verified, result.findings
    # No single subject in v0.2: the digest is the one a v1.0 statement of these files carries.
    files = model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"]).hash(model)
    assert result.digest == manifest_digest(files)
    (model / "signme-2").write_bytes(b"tampered\n")
    assert checks(verify_model(model, model / "model.sig", policy)) == [
        "provenance.digest_mismatch"
    ]


# ---------------------------------------------------------------------------------------------
# Shapes of model-signing's own published bundles (scripts/tests in sigstore/model-transparency),
# remade here with fresh keys


def _embed_public_key(signature: Path, public_pem: bytes) -> None:
    """The verification material of a model-signing 0.3 / 1.0 key bundle: the PEM key itself
    in `publicKey.rawBytes` (1.1 writes a `hint`, the key's SHA-256, instead)."""
    bundle = json.loads(signature.read_text())
    bundle["verificationMaterial"] = {
        "publicKey": {
            "rawBytes": base64.b64encode(public_pem).decode(),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
        }
    }
    signature.write_text(json.dumps(bundle))


def test_pre_1_1_key_bundle_with_the_key_in_raw_bytes_verifies(
    signed: tuple[Path, Path, TrustPolicy], keys: dict[str, KeyPair]
) -> None:
    model, signature, policy = signed
    _embed_public_key(signature, keys["ec-p256"].public.read_bytes())
    result = verify_model(model, signature, policy)
    assert result.verified, result.findings
    assert [s.authority for s in result.signers] == ["release-key"]


def test_a_key_embedded_in_the_bundle_is_never_trusted(
    model_dir: Path, tmp_path: Path, keys: dict[str, KeyPair], write_policy: WritePolicy
) -> None:
    # signed by a stranger who put their own public key in the bundle: only the policy's key counts
    signature = sign_with_key(model_dir, keys["other"].private, tmp_path / "model.sig")
    _embed_public_key(signature, keys["other"].public.read_bytes())
    policy = policy_for(write_policy, {"release-key": key_authority(keys["ec-p256"])})
    assert checks(verify_model(model_dir, signature, policy)) == ["provenance.signature_invalid"]


@pytest.fixture(scope="module")
def rsa_rooted_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """root (RSA-3072) -> intermediate (RSA-3072) -> leaf (EC P-384), as upstream's test CA."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from tests.provenance.conftest import _certificate, _write_key

    directory = tmp_path_factory.mktemp("rsa-ca")
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    root = _certificate("root-ca", root_key, None, root_key, ca=True)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    inter = _certificate("intermediate-ca", inter_key, root.subject, root_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    leaf = _certificate("model signer", leaf_key, inter.subject, inter_key, ca=False)
    paths = {}
    for name, cert in (("root", root), ("intermediate", inter), ("leaf", leaf)):
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key = _write_key(directory, "leaf", leaf_key)
    return Chain(paths["root"], paths["intermediate"], paths["leaf"], key.private)


def test_rsa_rooted_chain_with_a_p384_leaf_verifies_to_its_root_only(
    model_dir: Path, tmp_path: Path, rsa_rooted_chain: Chain, write_policy: WritePolicy
) -> None:
    signature = sign_with_certificate(model_dir, rsa_rooted_chain, tmp_path / "model.sig")
    root = policy_for(write_policy, {"ml-ca": f"certificate_chain: [{rsa_rooted_chain.root}]"})
    result = verify_model(model_dir, signature, root)
    assert result.verified, result.findings
    assert result.signers[0].identity == "CN=model signer"
    # The intermediate alone is no trust anchor (model-signing builds no partial chains): a
    # policy must name the root the chain ends in.
    intermediate = policy_for(
        write_policy,
        {"ml-ca": f"certificate_chain: [{rsa_rooted_chain.intermediate}]"},
    )
    assert checks(verify_model(model_dir, signature, intermediate)) == [
        "provenance.identity_mismatch"
    ]
