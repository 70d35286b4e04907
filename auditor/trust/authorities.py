"""Who may sign: trust-policy authorities and the requirements that combine them.

Shaped like sigstore-python's `sigstore.verify.policy`: small classes that each answer one
question. An authority holds the trust material of one signer (a public key, a CA chain, a
Sigstore identity with its offline trust root) and loads it once; a requirement (`Signed`,
`AllOf`, `AnyOf`) says which authorities must have signed, given the set that did.

These classes know nothing of model-signing: `auditor.provenance.signing` verifies model
bundles against them, and the SLSA/in-toto verifiers can use the same key, chain and identity.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import (
    OtherName,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)
from sigstore.errors import VerificationError as SigstoreVerificationError

from auditor.bounded import read_bounded
from auditor.errors import InputError

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot
    from sigstore.verify.policy import VerificationPolicy

# sigstore's models and verification policies (pydantic, requests, Rekor types: a third of a
# second to import) load where Sigstore material is read or a Sigstore certificate checked:
# a trust policy of keys and certificate chains, and the commands that only read one, never
# pay for them.

AuthorityKind = Literal["key", "certificate_chain", "sigstore"]
PublicKeyType = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

# The curves a trust policy may name. model-signing 1.1.1 itself signs and verifies with
# P-256, P-384 and P-521 only; Ed25519 and RSA keys are accepted for the other attestations.
# A PEM key or a CA bundle is a few KiB, Sigstore's trusted_root.json some tens: anything
# near this is not trust material.
MAX_TRUST_FILE_BYTES = 4 * 1024 * 1024

SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
MIN_RSA_BITS = 2048

# Fulcio's "other name" SAN for identities that are neither an email nor a URI.
_OTHERNAME_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


class TrustMaterialError(ValueError):
    """A key, certificate or trust root file is unusable; trust.py turns it into a ConfigError."""


def key_type(key: PublicKeyType) -> str:
    """`ecdsa-p256`, `ed25519`, `rsa-3072`: how messages name a key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa-{SUPPORTED_CURVES.get(key.curve.name, key.curve.name).lower()}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return f"rsa-{key.key_size}"


def key_fingerprint(key: PublicKeyType) -> str:
    """`sha256:<hex>` of the PEM SubjectPublicKeyInfo: the `hint` model-signing writes in bundles."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def read_trust_file(path: Path, what: str = "trust material file") -> bytes:
    """A key, certificate or trust-root file, bounded (`read_bounded`): a named pipe or
    `/dev/zero` is a TrustMaterialError naming it, never a hang or a full memory."""
    try:
        return read_bounded(
            path, max_bytes=MAX_TRUST_FILE_BYTES, what=f"{what} {path}", missing="does not exist"
        )
    except InputError as exc:
        raise TrustMaterialError(exc.message) from None


def load_public_key(path: Path) -> PublicKeyType:
    """A PEM public key of a supported type, or TrustMaterialError saying why not."""
    data = read_trust_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise TrustMaterialError(f"{path} is not a PEM public key") from None
    except TypeError as exc:  # cryptography's answer for key types it cannot load
        raise TrustMaterialError(f"{path}: {exc}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in SUPPORTED_CURVES:
            raise TrustMaterialError(
                f"{path}: EC curve {key.curve.name} is not supported (use P-256, P-384 or P-521)"
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise TrustMaterialError(
                f"{path}: a {key.key_size}-bit RSA key is too weak (at least {MIN_RSA_BITS})"
            )
        return key
    raise TrustMaterialError(
        f"{path}: {type(key).__name__} keys are not supported (EC P-256/P-384/P-521, Ed25519, RSA)"
    )


def load_certificates(paths: Sequence[Path]) -> tuple[x509.Certificate, ...]:
    """Every PEM certificate in `paths` (a file may hold several)."""
    certificates: list[x509.Certificate] = []
    for path in paths:
        certificates.extend(parse_certificates(read_trust_file(path, "certificate file"), path))
    if not certificates:
        raise TrustMaterialError("the certificate chain is empty")
    return tuple(certificates)


def parse_certificates(data: bytes, path: Path) -> list[x509.Certificate]:
    """Every PEM certificate in `data`, read from `path`; TrustMaterialError when none."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TrustMaterialError(f"{path} holds no valid PEM certificate") from None


def load_trusted_root(*, trusted_root: Path | None, trust_config: Path | None) -> TrustedRoot:
    """A Sigstore TrustedRoot read from a local file: never TUF, never the network."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig, TrustedRoot

    if trusted_root is not None:
        path, what = trusted_root, "trusted root"
    elif trust_config is not None:
        path, what = trust_config, "trust config"
    else:  # pragma: no cover - the schema requires one of them
        raise TrustMaterialError("a Sigstore authority needs trusted_root or trust_config")
    data = read_trust_file(path, what)
    try:
        if trusted_root is not None:
            # sigstore reads the file again; it was just found a regular file within the limit
            return TrustedRoot.from_file(str(path))
        return ClientTrustConfig.from_json(data.decode("utf-8")).trusted_root
    except (ValueError, UnicodeDecodeError, SigstoreError) as exc:
        # pydantic's ValidationError is a ValueError; its first line says what is wrong.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = "Sigstore trusted_root.json" if trusted_root is not None else "ClientTrustConfig"
        raise TrustMaterialError(f"{path} is not a valid {kind}: {reason}") from None


def certificate_identities(certificate: x509.Certificate) -> tuple[str, ...]:
    """The SAN identities of a (Fulcio) certificate: emails, URIs and Sigstore other names.

    The same set sigstore-python's `Identity` policy compares against.
    """
    try:
        san = certificate.extensions.get_extension_for_class(SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = list(san.get_values_for_type(RFC822Name))
    names.extend(san.get_values_for_type(UniformResourceIdentifier))
    names.extend(
        on.value.decode(errors="replace")
        for on in san.get_values_for_type(OtherName)
        if on.type_id == _OTHERNAME_OID
    )
    return tuple(names)


def certificate_issuer_claim(certificate: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded in the certificate (extension 1.3.6.1.4.1.57264.1.1)."""
    from sigstore.verify.policy import OIDCIssuer

    try:
        ext = certificate.extensions.get_extension_for_oid(OIDCIssuer.oid).value
    except x509.ExtensionNotFound:
        return None
    raw = getattr(ext, "value", b"")
    return raw.decode(errors="replace") if isinstance(raw, bytes) else None


# ---------------------------------------------------------------------------------------------
# Authorities


class Authority(ABC):
    """One named signer the trust policy trusts."""

    name: str
    kind: AuthorityKind

    @abstractmethod
    def describe(self) -> str:
        """`release-key (public key ecdsa-p256)`: how messages name the authority."""

    @abstractmethod
    def files(self) -> tuple[Path, ...]:
        """The trust material files; their bytes are part of the trust-policy digest."""


@dataclass(frozen=True, slots=True)
class PublicKey(Authority):
    """Signatures made with the private half of one public key."""

    name: str
    path: Path
    key: PublicKeyType = field(compare=False, repr=False)
    kind: AuthorityKind = field(default="key", init=False)

    @classmethod
    def load(cls, name: str, path: Path) -> PublicKey:
        return cls(name=name, path=path, key=load_public_key(path))

    @property
    def key_type(self) -> str:
        return key_type(self.key)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)

    def describe(self) -> str:
        return f"{self.name} (public key {self.key_type} {self.path.name})"

    def files(self) -> tuple[Path, ...]:
        return (self.path,)


@dataclass(frozen=True, slots=True)
class CertificateChain(Authority):
    """Signatures whose signing certificate chains to one of these CA certificates."""

    name: str
    paths: tuple[Path, ...]
    certificates: tuple[x509.Certificate, ...] = field(compare=False, repr=False)
    kind: AuthorityKind = field(default="certificate_chain", init=False)

    @classmethod
    def load(cls, name: str, paths: Sequence[Path]) -> CertificateChain:
        return cls(name=name, paths=tuple(paths), certificates=load_certificates(paths))

    def describe(self) -> str:
        subjects = ", ".join(
            c.subject.rfc4514_string() or "(empty subject)" for c in self.certificates
        )
        return f"{self.name} (certificate chain to {subjects})"

    def files(self) -> tuple[Path, ...]:
        return self.paths


class SubjectPattern:
    """A sigstore `VerificationPolicy`: issuer equal, one SAN identity matching a regexp.

    sigstore-python's `Identity` compares the identity exactly; CI identities carry branch or
    tag names, so policies need a pattern. The pattern must match the whole identity.
    """

    def __init__(self, *, pattern: re.Pattern[str], issuer: str) -> None:
        from sigstore.verify.policy import OIDCIssuer

        self._pattern = pattern
        self._issuer = OIDCIssuer(issuer)

    def verify(self, cert: x509.Certificate) -> None:
        self._issuer.verify(cert)
        identities = certificate_identities(cert)
        if not any(self._pattern.fullmatch(identity) for identity in identities):
            raise SigstoreVerificationError(
                f"Certificate's SANs do not match {self._pattern.pattern!r}; "
                f"actual SANs: {sorted(identities)}"
            )


@dataclass(frozen=True, slots=True)
class SigstoreIdentity(Authority):
    """Sigstore keyless signatures by one OIDC identity, verified against a local trust root."""

    name: str
    issuer: str
    subject: str | None
    subject_regexp: re.Pattern[str] | None
    trusted_root_path: Path | None
    trust_config_path: Path | None
    trusted_root: TrustedRoot = field(compare=False, repr=False)
    kind: AuthorityKind = field(default="sigstore", init=False)

    @classmethod
    def load(
        cls,
        name: str,
        *,
        issuer: str,
        subject: str | None = None,
        subject_regexp: str | re.Pattern[str] | None = None,
        trusted_root: Path | None = None,
        trust_config: Path | None = None,
    ) -> SigstoreIdentity:
        pattern = re.compile(subject_regexp) if isinstance(subject_regexp, str) else subject_regexp
        return cls(
            name=name,
            issuer=issuer,
            subject=subject,
            subject_regexp=pattern,
            trusted_root_path=trusted_root,
            trust_config_path=trust_config,
            trusted_root=load_trusted_root(trusted_root=trusted_root, trust_config=trust_config),
        )

    def policy(self) -> VerificationPolicy:
        """The sigstore-python verification policy this authority stands for."""
        if self.subject_regexp is not None:
            return SubjectPattern(pattern=self.subject_regexp, issuer=self.issuer)
        from sigstore.verify.policy import Identity as ExactIdentity

        assert self.subject is not None  # the loader requires one of the two
        return ExactIdentity(identity=self.subject, issuer=self.issuer)

    def matching_identity(self, cert: x509.Certificate) -> str:
        """The SAN that satisfied the policy (call after `policy().verify(cert)` passed)."""
        for identity in certificate_identities(cert):
            if self.subject is not None and identity == self.subject:
                return identity
            if self.subject_regexp is not None and self.subject_regexp.fullmatch(identity):
                return identity
        return self.subject or ""

    @property
    def expected_identity(self) -> str:
        if self.subject is not None:
            return self.subject
        assert self.subject_regexp is not None
        return f"/{self.subject_regexp.pattern}/"

    def describe(self) -> str:
        return f"{self.name} (Sigstore identity {self.expected_identity} from {self.issuer})"

    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.trusted_root_path, self.trust_config_path) if p is not None)


# ---------------------------------------------------------------------------------------------
# Requirements


class Requirement(ABC):
    """Which authorities must have signed, answered for the set of authorities that did."""

    @abstractmethod
    def is_satisfied(self, signed: AbstractSet[str]) -> bool:
        """True when the authorities named in `signed` meet this requirement."""

    @abstractmethod
    def names(self) -> Iterator[str]:
        """Every authority name this requirement mentions, in order."""

    @abstractmethod
    def describe(self) -> str:
        """`all of: release-key, ci-keyless`."""


@dataclass(frozen=True, slots=True)
class Signed(Requirement):
    """One authority must have signed."""

    authority: str

    def is_satisfied(self, signed: AbstractSet[str]) -> bool:
        return self.authority in signed

    def names(self) -> Iterator[str]:
        yield self.authority

    def describe(self) -> str:
        return self.authority


def _children(items: Iterable[Requirement | str]) -> tuple[Requirement, ...]:
    return tuple(Signed(i) if isinstance(i, str) else i for i in items)


@dataclass(frozen=True, slots=True, init=False)
class AllOf(Requirement):
    """Every child must be satisfied. An empty AllOf is never satisfied (fail closed)."""

    children: tuple[Requirement, ...]

    def __init__(self, children: Iterable[Requirement | str]) -> None:
        object.__setattr__(self, "children", _children(children))

    def is_satisfied(self, signed: AbstractSet[str]) -> bool:
        # sigstore-python makes the same choice: an empty list is API misuse, never a pass.
        return bool(self.children) and all(c.is_satisfied(signed) for c in self.children)

    def names(self) -> Iterator[str]:
        for child in self.children:
            yield from child.names()

    def describe(self) -> str:
        if len(self.children) == 1:
            return self.children[0].describe()
        return "all of: " + ", ".join(_nested(c) for c in self.children)


@dataclass(frozen=True, slots=True, init=False)
class AnyOf(Requirement):
    """At least one child must be satisfied."""

    children: tuple[Requirement, ...]

    def __init__(self, children: Iterable[Requirement | str]) -> None:
        object.__setattr__(self, "children", _children(children))

    def is_satisfied(self, signed: AbstractSet[str]) -> bool:
        return any(c.is_satisfied(signed) for c in self.children)

    def names(self) -> Iterator[str]:
        for child in self.children:
            yield from child.names()

    def describe(self) -> str:
        if len(self.children) == 1:
            return self.children[0].describe()
        return "any of: " + ", ".join(_nested(c) for c in self.children)


def _nested(requirement: Requirement) -> str:
    text = requirement.describe()
    return (
        f"({text})"
        if isinstance(requirement, AllOf | AnyOf) and len(requirement.children) > 1
        else text
    )


__all__ = [
    "MAX_TRUST_FILE_BYTES",
    "AllOf",
    "AnyOf",
    "Authority",
    "AuthorityKind",
    "CertificateChain",
    "PublicKey",
    "Requirement",
    "Signed",
    "SigstoreIdentity",
    "SubjectPattern",
    "TrustMaterialError",
    "certificate_identities",
    "certificate_issuer_claim",
    "key_fingerprint",
    "key_type",
    "load_certificates",
    "load_public_key",
    "load_trusted_root",
    "parse_certificates",
    "read_trust_file",
]
