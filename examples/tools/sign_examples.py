"""Re-creates the example's signed models and attestations (EXAMPLE keys only).

    .venv/bin/python examples/tools/sign_examples.py

What it writes, all under examples/:

- keys/EXAMPLE-ONLY-release.key/.pub: an EC P-256 key pair (model-signing signs with EC keys
  only), generated once and then reused. It is committed ON PURPOSE so that anyone can re-sign
  the demo; it protects nothing. Never reuse it, never commit a real key.
- models/acme/support-llm-7b: a tiny stand-in for an LLM directory, signed: verifies.
- models/acme-models/fraud-scorer/v3: a tiny stand-in for a scikit-learn model, signed, then
  one byte of model.pkl changed: the audit reports provenance.digest_mismatch.
- gitops/attestations/ml-prod/<name>/: model.sig (the model-signing bundle) and
  provenance.intoto.json (an in-toto Statement v1 with SLSA Provenance v1 in a DSSE envelope
  signed by the example key). The recommender (an OCI model) has no model-signing bundle: its
  provenance, whose subject is the image digest, is the signature that binds the image; it
  names a clicks dataset whose md5 is not the one gitops/dvc.lock pins:
  provenance.dataset_mismatch.

Model files, statements and digests are deterministic; the bytes of model-signing bundles are
not (its ECDSA signatures are randomized), so re-running changes only signature bytes. The
script ends by checking that Git (gitops/base/*.yaml) and the live snapshot declare the signed
digests, and says what to edit when they do not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import model_signing
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

EXAMPLES = Path(__file__).resolve().parents[1]
KEY = EXAMPLES / "keys" / "EXAMPLE-ONLY-release.key"
PUB = EXAMPLES / "keys" / "EXAMPLE-ONLY-release.pub"
MODELS = EXAMPLES / "models"
ATTESTATIONS = EXAMPLES / "gitops" / "attestations" / "ml-prod"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
RECOMMENDER_DIGEST = "sha256:4c1f0e2d3b5a6978c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"
STANDIN = b"EXAMPLE ONLY: a stand-in for model weights, not a real model. "

# The md5s gitops/dvc.lock pins (DVC's md5 of each out); the recommender's provenance swaps one.
DATASETS = {
    "fraud-scorer": {
        "data/transactions.parquet": hashlib.md5(b"example transactions").hexdigest(),
        "data/labels.parquet": hashlib.md5(b"example labels").hexdigest(),
    },
    "llm-server": {
        "data/support-tickets": hashlib.md5(b"example support tickets").hexdigest() + ".dir",
    },
    "recommender": {
        "data/clicks.parquet": hashlib.md5(b"example clicks").hexdigest(),
    },
}
SWAPPED = {"recommender": {"data/clicks.parquet": hashlib.md5(b"other clicks").hexdigest()}}

MODEL_FILES: dict[str, dict[str, bytes]] = {
    "acme/support-llm-7b": {
        "config.json": b'{"architectures": ["LlamaForCausalLM"], "example_only": true}\n',
        "tokenizer.json": b'{"version": "1.0", "example_only": true}\n',
        "model.safetensors": STANDIN * 32,
    },
    "acme-models/fraud-scorer/v3": {
        "config.json": b'{"estimator": "GradientBoostingClassifier", "example_only": true}\n',
        "model.pkl": STANDIN * 16,  # not a pickle: nothing here should ever be unpickled
    },
}
TAMPERED = ("acme-models/fraud-scorer/v3", "model.pkl", 7)  # after signing, flip this byte


def example_key() -> ec.EllipticCurvePrivateKey:
    if KEY.exists():
        key = serialization.load_pem_private_key(KEY.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    KEY.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    KEY.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    PUB.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key


def write_model(rel: str) -> Path:
    directory = MODELS / rel
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in MODEL_FILES[rel].items():
        (directory / name).write_bytes(data)
    return directory


def sign_model(directory: Path, signature: Path) -> str:
    """Signs with model-signing and returns the signed subject digest (`sha256:…`)."""
    signature.parent.mkdir(parents=True, exist_ok=True)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=KEY).sign(
        directory, signature
    )
    bundle = json.loads(signature.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return "sha256:" + statement["subject"][0]["digest"]["sha256"]


def provenance(name: str, subject: str, datasets: dict[str, str]) -> dict[str, Any]:
    algorithm, _, value = subject.partition(":")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {algorithm: value}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://auditor.gitops.ml/training/v1",
                "externalParameters": {"pipeline": f"pipelines/{name}.yaml"},
                "resolvedDependencies": [
                    {
                        "uri": "git+https://git.example.com/acme/ml-pipelines@refs/heads/main",
                        "digest": {"gitCommit": "0" * 40},
                    },
                    *(
                        {
                            "name": path,
                            "uri": f"dvc://{path}",
                            "digest": {"md5": md5},
                            "annotations": {"auditor.gitops.ml/kind": "dataset"},
                        }
                        for path, md5 in sorted(datasets.items())
                    ),
                ],
            },
            "runDetails": {
                "builder": {"id": "https://ci.example.com/acme/ml-pipelines/train"},
                "metadata": {"invocationId": f"example-{name}"},
            },
        },
    }


def sign_envelope(statement: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> bytes:
    payload = json.dumps(statement, indent=2, sort_keys=True).encode()
    kind = PAYLOAD_TYPE.encode()
    pae = b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)
    # RFC 6979 deterministic ECDSA: the same statement always gives the same envelope
    signature = key.sign(pae, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    keyid = hashlib.sha256(PUB.read_bytes()).hexdigest()
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }
    return (json.dumps(envelope, indent=2) + "\n").encode()


def write_provenance(name: str, subject: str, key: ec.EllipticCurvePrivateKey) -> None:
    datasets = {**DATASETS[name], **SWAPPED.get(name, {})}
    target = ATTESTATIONS / name / "provenance.intoto.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(sign_envelope(provenance(name, subject, datasets), key))


def check_declared(digests: dict[str, str]) -> list[str]:
    """Where Git or the snapshot does not declare the signed digest."""
    problems = []
    for name, digest in digests.items():
        for path in (
            EXAMPLES / "gitops" / "base" / f"{name}.yaml",
            EXAMPLES / "live" / "prod-snapshot.yaml",
        ):
            if f"auditor.gitops.ml/model-digest: {digest}" not in path.read_text():
                problems.append(f"{path.relative_to(EXAMPLES)}: {name} must declare {digest}")
    return problems


def main() -> int:
    key = example_key()
    llm = write_model("acme/support-llm-7b")
    fraud = write_model("acme-models/fraud-scorer/v3")
    digests = {
        "llm-server": sign_model(llm, ATTESTATIONS / "llm-server" / "model.sig"),
        "fraud-scorer": sign_model(fraud, ATTESTATIONS / "fraud-scorer" / "model.sig"),
    }
    rel, file, index = TAMPERED
    target = MODELS / rel / file
    data = bytearray(target.read_bytes())
    data[index] ^= 0x20  # one byte changed after signing
    target.write_bytes(bytes(data))
    for name, digest in digests.items():
        write_provenance(name, digest, key)
    write_provenance("recommender", RECOMMENDER_DIGEST, key)
    for name, digest in digests.items():
        print(f"{name}: {digest}")
    problems = check_declared(digests)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
