"""Real trust material for provenance tests: fresh keys, a self-made CA chain, signed models.

Everything is generated per test session with `cryptography` and signed with model-signing's
own signing API, so the tests verify exactly what the tool a team uses produces.
"""

from __future__ import annotations

import datetime
import socket
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import model_signing
import pytest
import sigstore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.provenance.signing import clear_cache
from tests.provenance.attestation_factory import SigningKey, make_key

if TYPE_CHECKING:
    from tests.provenance.binding_world import World

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

KEYLESS_DIR = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "model-signing-keyless"
KEYLESS_IDENTITY = "stefanb@us.ibm.com"
KEYLESS_ISSUER = "https://sigstore.verify.ibm.com/oauth2"
_STORE = Path(sigstore.__file__).parent / "_store"
PUBLIC_GOOD_ROOT = _STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"
STAGING_ROOT = _STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / "trusted_root.json"


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path


@dataclass(frozen=True)
class Chain:
    """root -> intermediate -> leaf; the leaf key signs models."""

    root: Path
    intermediate: Path
    leaf: Path
    leaf_key: Path


def _write_key(directory: Path, name: str, key: PrivateKey) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    private = directory / f"{name}.key"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)


def new_key(kind: str) -> PrivateKey:
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ec-p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    """One fresh key pair of every type a trust policy may name, plus a second P-256 key."""
    directory = tmp_path_factory.mktemp("keys")
    pairs = {
        kind: _write_key(directory, kind, new_key(kind))
        for kind in ("ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa")
    }
    pairs["other"] = _write_key(directory, "other", new_key("ec-p256"))
    return pairs


def _certificate(
    subject: str,
    key: PrivateKey,
    issuer: x509.Name | None,
    issuer_key: PrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())  # type: ignore[arg-type]


def make_chain(directory: Path, label: str) -> Chain:
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _certificate(f"{label} root CA", root_key, None, root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = _certificate(f"{label} intermediate CA", inter_key, root.subject, root_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(f"{label} model signer", leaf_key, inter.subject, inter_key, ca=False)
    paths = {}
    for name, cert in (("root", root), ("intermediate", inter), ("leaf", leaf)):
        paths[name] = directory / f"{label}-{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key = _write_key(directory, f"{label}-leaf", leaf_key)
    return Chain(paths["root"], paths["intermediate"], paths["leaf"], key.private)


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return make_chain(tmp_path_factory.mktemp("ca"), "acme")


@pytest.fixture(scope="session")
def other_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    return make_chain(tmp_path_factory.mktemp("other-ca"), "evil")


# ---------------------------------------------------------------------------------------------
# Models and signatures


def make_model(directory: Path, files: dict[str, bytes] | None = None) -> Path:
    """A small model directory: a few files, one in a subdirectory."""
    files = files or {
        "config.json": b'{"layers": 2}\n',
        "weights.bin": bytes(range(256)) * 64,
        "tokenizer/vocab.txt": b"a\nb\nc\n",
    }
    for rel, data in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path / "fraud-scorer")


def _hashing(ignore: list[str] | None) -> model_signing.hashing.Config:
    return model_signing.hashing.Config().set_ignored_paths(paths=ignore or [])


def sign_with_key(model: Path, key: Path, signature: Path, ignore: list[str] | None = None) -> Path:
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(
        _hashing(ignore)
    ).sign(model, signature)
    return signature


def sign_with_certificate(
    model: Path, chain: Chain, signature: Path, ignore: list[str] | None = None
) -> Path:
    model_signing.signing.Config().use_certificate_signer(
        private_key=chain.leaf_key,
        signing_certificate=chain.leaf,
        certificate_chain=[chain.intermediate],
    ).set_hashing_config(_hashing(ignore)).sign(model, signature)
    return signature


# ---------------------------------------------------------------------------------------------
# Trust policies


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[str], Path]:
    """Writes a trust-policy file (dedented YAML) and returns its path."""

    def write(text: str, name: str = "trust.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture(autouse=True)
def _fresh_verification_cache() -> Iterator[None]:
    # Tests rewrite files within one stat-second; never let one test see another's answer.
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any attempt to open a network connection: verification must be offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def keyless_dir() -> Path:
    if not (KEYLESS_DIR / "model.sig").is_file():
        pytest.skip(
            f"shared testdata not present at {KEYLESS_DIR} (a plain clone outside the workplace)"
        )
    return KEYLESS_DIR


# ---------------------------------------------------------------------------------------------
# The binding world (tests/provenance/binding_world.py)


@pytest.fixture(scope="module")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, SigningKey]:
    """release-key (the trust rule requires it) and other-key (known, not required)."""
    directory = tmp_path_factory.mktemp("binding-keys")
    return make_key(directory, "p256", "release-key"), make_key(directory, "p256", "other-key")


@pytest.fixture
def world(
    tmp_path: Path, signing_keys: tuple[SigningKey, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> World:
    # imported here: binding_world imports this module's model and signing helpers
    from tests.gitrepo import _ENV
    from tests.provenance.binding_world import World

    for key, value in _ENV.items():
        monkeypatch.setenv(key, value)
    return World(tmp_path, *signing_keys)
