"""Real signed attestations for tests: fresh keys, real DSSE envelopes, real in-toto metadata.

Nothing here fakes a signature: every envelope is signed with a key generated in the test,
and tampering helpers change bytes of a genuinely signed envelope.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from securesystemslib.signer import CryptoSigner, SSlibKey

from auditor.provenance.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from auditor.trust.authorities import PublicKey

KeyKind = Literal["p256", "p384", "ed25519", "rsa-pss", "rsa-pkcs1"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A fresh key pair: the private key signs, `authority` is how a trust policy names it."""

    kind: KeyKind
    private: PrivateKey
    authority: PublicKey
    pem_path: Path

    @property
    def signer(self) -> CryptoSigner:
        scheme = {"rsa-pss": "rsassa-pss-sha256", "rsa-pkcs1": "rsa-pkcs1v15-sha256"}.get(self.kind)
        public = SSlibKey.from_crypto(self.private.public_key(), scheme=scheme)
        return CryptoSigner(self.private, public)

    def sign(self, message: bytes) -> bytes:
        return bytes.fromhex(self.signer.sign(message).signature)


def make_key(directory: Path, kind: KeyKind = "p256", name: str = "release-key") -> SigningKey:
    private: PrivateKey
    if kind == "p256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif kind == "p384":
        private = ec.generate_private_key(ec.SECP384R1())
    elif kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    directory.mkdir(parents=True, exist_ok=True)
    pem_path = directory / f"{name}.pub"
    pem_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return SigningKey(kind, private, PublicKey.load(name, pem_path), pem_path)


def private_pem(key: SigningKey) -> bytes:
    return key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign_envelope(
    payload: bytes,
    keys: Sequence[SigningKey],
    *,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    keyid: str | None = None,
) -> bytes:
    """A DSSE envelope over `payload`, one signature per key, serialized as JSON bytes."""
    message = pae(payload_type, payload)
    signatures = [
        {
            "keyid": key.authority.fingerprint if keyid is None else keyid,
            "sig": b64(key.sign(message)),
        }
        for key in keys
    ]
    return json.dumps(
        {"payloadType": payload_type, "payload": b64(payload), "signatures": signatures}
    ).encode()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


MODEL_DIGEST = "sha256:" + sha256_hex("fraud-scorer v3 manifest")
TRAIN_MD5 = hashlib.md5(b"train split").hexdigest()
EVAL_MD5 = hashlib.md5(b"eval split").hexdigest() + ".dir"


def dataset(name: str, md5: str, *, uri: str = "", annotate: bool = True) -> dict[str, Any]:
    dep: dict[str, Any] = {"name": name, "digest": {"md5": md5}}
    if uri:
        dep["uri"] = uri
    if annotate:
        dep["annotations"] = {"auditor.gitops.ml/kind": "dataset"}
    return dep


DEFAULT_DATASETS = (
    dataset("data/train.csv", TRAIN_MD5),
    dataset("data/eval", EVAL_MD5, uri="dvc://data/eval", annotate=False),
)


def statement(
    *,
    subject_digest: str = MODEL_DIGEST,
    datasets: Sequence[Mapping[str, Any]] = DEFAULT_DATASETS,
    predicate_type: str = "https://slsa.dev/provenance/v1",
) -> dict[str, Any]:
    """An in-toto Statement v1 with SLSA Provenance v1: a model trained on `datasets`."""
    algorithm, _, value = subject_digest.partition(":")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "fraud-scorer", "digest": {algorithm: value}}],
        "predicateType": predicate_type,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://auditor.gitops.ml/training/v1",
                "externalParameters": {"pipeline": "train.yaml", "epochs": 3},
                "internalParameters": {"seed": 42},
                "resolvedDependencies": [
                    {
                        "uri": "git+https://github.com/acme/models@refs/heads/main",
                        "digest": {"gitCommit": "a" * 40},
                    },
                    # copies: tests mutate the statement, never the shared defaults
                    *copy.deepcopy(list(datasets)),
                ],
            },
            "runDetails": {
                "builder": {"id": "https://github.com/acme/models/.github/workflows/train.yml"},
                "metadata": {"invocationId": "run-1"},
            },
        },
    }


def statement_bytes(**kwargs: Any) -> bytes:
    return json.dumps(statement(**kwargs)).encode()


def dvc_lock(train_md5: str = TRAIN_MD5, eval_md5: str = EVAL_MD5) -> str:
    """A DVC 3 lockfile whose `prepare` stage pins the two datasets of DEFAULT_DATASETS."""
    return f"""\
schema: '2.0'
stages:
  prepare:
    cmd: python prepare.py
    deps:
    - path: raw/source.csv
      hash: md5
      md5: {hashlib.md5(b"raw").hexdigest()}
      size: 12
    outs:
    - path: data/train.csv
      hash: md5
      md5: {train_md5}
      size: 11
    - path: data/eval
      hash: md5
      md5: {eval_md5}
      size: 10
      nfiles: 2
"""


# --- tampering ---------------------------------------------------------------------------------


def _envelope(data: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc


def flip_payload_byte(data: bytes, index: int = 40) -> bytes:
    doc = _envelope(data)
    payload = bytearray(base64.b64decode(doc["payload"]))
    payload[index] ^= 0x01
    doc["payload"] = b64(bytes(payload))
    return json.dumps(doc).encode()


def flip_signature_byte(data: bytes, index: int = 10) -> bytes:
    doc = _envelope(data)
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[index] ^= 0x01
    doc["signatures"][0]["sig"] = b64(bytes(sig))
    return json.dumps(doc).encode()


def replace_payload(data: bytes, payload: bytes) -> bytes:
    """The same signatures over a different payload: what an attacker who edits JSON produces."""
    doc = _envelope(data)
    doc["payload"] = b64(payload)
    return json.dumps(doc).encode()


# --- OCI images: what cosign, GitHub attestations and sigstore sign for an image --------------

COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IMAGE_NAME = "registry.acme.io/models/recs"


def image_manifest(label: str) -> bytes:
    """An OCI image manifest (a modelcar: one layer holding /models), distinct per label."""
    layer = hashlib.sha256(f"model layer {label}".encode()).hexdigest()
    config = hashlib.sha256(f"config {label}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config}",
                "size": 512,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer}",
                    "size": 104857600,
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


def image_digest(manifest: bytes) -> str:
    """The image manifest digest: what a registry, the kubelet and cosign call the image."""
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def image_statement(
    digest: str,
    *,
    name: str | None = IMAGE_NAME,
    predicate_type: str = COSIGN_SIGN_PREDICATE,
    predicate: Mapping[str, Any] | None = None,
    statement_type: str = "https://in-toto.io/Statement/v1",
) -> bytes:
    """An in-toto Statement about an image, as `cosign sign` (v3: predicate cosign/sign/v1,
    no subject name) or `cosign attest` (subject name = the repository) write it."""
    algorithm, _, value = digest.partition(":")
    subject: dict[str, Any] = {"digest": {algorithm: value}}
    if name is not None:
        subject["name"] = name
    return json.dumps(
        {
            "_type": statement_type,
            "subject": [subject],
            "predicateType": predicate_type,
            "predicate": dict(predicate or {}),
        }
    ).encode()


def _key_material(key: SigningKey) -> dict[str, Any]:
    # sigstore-go's hint for a key: base64 of the SHA-256 of its DER SubjectPublicKeyInfo
    der = key.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"publicKey": {"hint": b64(hashlib.sha256(der).digest())}, "tlogEntries": []}


def key_bundle_dsse(payload: bytes, key: SigningKey) -> bytes:
    """A Sigstore bundle v0.3 holding a DSSE envelope signed with `key`: what
    `cosign sign --key K --bundle F` (cosign 3) and `cosign attest --key K --bundle F` write."""
    envelope = json.loads(sign_envelope(payload, [key], keyid=""))
    return json.dumps(
        {
            "mediaType": SIGSTORE_BUNDLE_V03,
            "verificationMaterial": _key_material(key),
            "dsseEnvelope": envelope,
        }
    ).encode()


def key_bundle_message(digest: str, key: SigningKey, *, claimed: str | None = None) -> bytes:
    """A Sigstore bundle v0.3 whose message signature is over the image manifest digest
    (a hashedrekord over the manifest), signed with an EC or RSA `key`; `claimed` is the
    messageDigest it records, when it should say another digest than it signs."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    raw = bytes.fromhex(digest.partition(":")[2])
    private = key.private
    if isinstance(private, ec.EllipticCurvePrivateKey):
        signature = private.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
    elif isinstance(private, rsa.RSAPrivateKey):
        signature = private.sign(raw, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        raise ValueError("Ed25519 keys sign messages, not digests")
    recorded = bytes.fromhex((claimed or digest).partition(":")[2])
    return json.dumps(
        {
            "mediaType": SIGSTORE_BUNDLE_V03,
            "verificationMaterial": _key_material(key),
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(recorded)},
                "signature": b64(signature),
            },
        }
    ).encode()
