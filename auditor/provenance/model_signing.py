"""Verifies OpenSSF model-signing bundles against the trust policy, offline.

The formats are model-signing's: its bundle readers, its verifiers (public key, certificate
chain) and its DSSE-statement-to-manifest conversion, its hashing. We compose its layers
instead of calling `model_signing.verifying.Config.verify`, because that one call raises a bare
ValueError for every failure (we must tell a wrong key from a changed byte), prints to stdout
for old bundles (which would corrupt `-o json`), returns nothing we can pin (the subject
digest), and for Sigstore builds its trust root from TUF unless given a ClientTrustConfig (we
take a plain trusted_root.json too, and never touch the network).

Pipeline, per signature file: read the bundle -> for every authority of the bundle's kind,
verify the signature (crypto and identity) -> turn the authenticated statement into a manifest
(model-signing checks the subject digest against the resources) -> hash the model directory
the way the statement says it was hashed -> compare. The trust policy's requirement then says
whether the authorities that signed these exact files are enough.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from model_signing import hashing as ms_hashing
from model_signing import manifest as ms_manifest
from model_signing._signing import sign_certificate as ms_certificate
from model_signing._signing import sign_ec_key as ms_ec_key
from model_signing._signing import sign_sigstore as ms_sigstore
from model_signing._signing import sign_sigstore_pb as ms_sigstore_pb
from model_signing._signing import signing as ms_signing
from OpenSSL import crypto as openssl_crypto
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import InvalidBundle
from sigstore.verify import Verifier as SigstoreVerifier

from auditor.errors import InputError
from auditor.model import Finding, ResourceRef, Severity
from auditor.trust.authorities import (
    Authority,
    AuthorityKind,
    CertificateChain,
    PublicKey,
    Requirement,
    SigstoreIdentity,
    certificate_identities,
    certificate_issuer_claim,
)
from auditor.trust.policy import TrustPolicy

logger = logging.getLogger(__name__)

UNSIGNED = "provenance.unsigned"
SIGNATURE_INVALID = "provenance.signature_invalid"
IDENTITY_MISMATCH = "provenance.identity_mismatch"
DIGEST_MISMATCH = "provenance.digest_mismatch"
AUTHORITY_NOT_REQUIRED = "provenance.authority_not_required"
UNVERIFIED = "provenance.unverified"
NO_RULE = "provenance.no_rule"

SEVERITY: dict[str, Severity] = {
    UNSIGNED: "high",
    SIGNATURE_INVALID: "critical",
    IDENTITY_MISMATCH: "critical",
    DIGEST_MISMATCH: "critical",
    AUTHORITY_NOT_REQUIRED: "high",
    UNVERIFIED: "high",
    NO_RULE: "high",
}

# A pseudo-kind for a model directory verified on its own (`auditor verify model`); the audit
# binding passes the serving resource's ref instead, so findings land on the InferenceService.
MODEL_API_VERSION = "auditor.gitops.ml/v1"
MODEL_KIND = "Model"
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # a sharded manifest of a very large model stays far below

_V1_PREDICATE = "https://model_signing/signature/v1.0"
_KIND_TEXT: dict[str, str] = {
    "key": "a public key",
    "certificate_chain": "a certificate chain",
    "sigstore": "a Sigstore keyless certificate",
}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class Signer:
    """An authority whose signature covers exactly the model's files."""

    authority: str
    identity: str  # key: `sha256:<fingerprint>`; chain: certificate subject; Sigstore: the SAN

    def to_json(self) -> dict[str, str]:
        return {"authority": self.authority, "identity": self.identity}


@dataclass(frozen=True, slots=True)
class ModelVerification:
    """The answer for one model: verified, its digest, who signed it, and why not."""

    verified: bool
    model_path: str
    digest: str | None  # `sha256:<hex>`, the subject digest of the signed statement
    signers: tuple[Signer, ...]
    findings: tuple[Finding, ...]
    ref: ResourceRef
    requirement: str | None = None  # what the matching rule asked for, for messages

    def to_json(self) -> dict[str, Any]:
        """The `auditor verify model -o json` document of DESIGN."""
        return {
            "verified": self.verified,
            "model": {"path": self.model_path, "digest": self.digest},
            "signers": [s.to_json() for s in self.signers],
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class _Bundle:
    path: Path
    kind: AuthorityKind
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why one signature file did not count."""

    check: str
    message: str
    expected: Any = None
    actual: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Authentic:
    """A signature an authority vouches for, with the statement it signed."""

    authority: Authority
    identity: str
    manifest: ms_manifest.Manifest
    digest: str  # sha256:<hex>


@dataclass(slots=True)
class _SignatureOutcome:
    path: Path
    authentic: list[_Authentic] = field(default_factory=list)
    failures: list[tuple[Authority | None, _Problem]] = field(default_factory=list)
    problem: _Problem | None = None  # set when no authority could even be tried


class _IdentityMismatch(SigstoreVerificationError):
    """The Sigstore signature is sound but the certificate belongs to someone else."""


# ---------------------------------------------------------------------------------------------
# Reading bundles


def _bundle_kind(document: dict[str, Any]) -> AuthorityKind | None:
    """Which kind of authority can have made this bundle, from its verification material."""
    material = document.get("verificationMaterial")
    if not isinstance(material, dict):
        return None
    if "publicKey" in material:
        return "key"
    # Keyless bundles always carry a transparency-log entry; model-signing's certificate
    # bundles carry none (an empty list, or no key at all before v1.0).
    if material.get("tlogEntries"):
        return "sigstore"
    if "x509CertificateChain" in material:
        return "certificate_chain"
    return None


def _read_bundle(path: Path) -> _Bundle | _Problem:
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            return _Problem(SIGNATURE_INVALID, f"{size} bytes is too large for a signature bundle")
        data = path.read_bytes()
    except FileNotFoundError:
        return _Problem(UNSIGNED, f"no signature file at {path}")
    except IsADirectoryError:
        return _Problem(UNSIGNED, f"{path} is a directory, not a signature file")
    except OSError as exc:
        return _Problem(SIGNATURE_INVALID, f"cannot read {path}: {exc.strerror}")
    if not data.strip():
        return _Problem(SIGNATURE_INVALID, f"{path.name} is empty")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return _Problem(SIGNATURE_INVALID, f"{path.name} is not UTF-8 JSON: corrupted bundle")
    except json.JSONDecodeError as exc:
        return _Problem(
            SIGNATURE_INVALID,
            f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno}): a corrupted or "
            "truncated bundle",
        )
    if not isinstance(document, dict):
        return _Problem(SIGNATURE_INVALID, f"{path.name} is not a Sigstore bundle (not an object)")
    envelope = document.get("dsseEnvelope")
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    if (
        not isinstance(envelope, dict)
        or not isinstance(envelope.get("payload"), str)
        or not isinstance(signatures, list)
        or not signatures
        or not isinstance(signatures[0], dict)
        or not isinstance(signatures[0].get("sig"), str)
    ):
        return _Problem(
            SIGNATURE_INVALID,
            f"{path.name} has no DSSE envelope with a signature: not a model signature",
        )
    kind = _bundle_kind(document)
    if kind is None:
        return _Problem(
            SIGNATURE_INVALID,
            f"{path.name} carries no key, certificate chain or Sigstore log entry to verify with",
        )
    return _Bundle(path=path, kind=kind, document=document)


# ---------------------------------------------------------------------------------------------
# Verifying one bundle with one authority

# The parse errors model-signing's and sigstore's bundle readers raise for malformed input:
# pydantic's ValidationError and binascii.Error are ValueErrors; the protobuf-model reader
# indexes dicts and lists directly.
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, InvalidBundle)


class _OfflineSigstoreVerifier(ms_signing.Verifier):
    """model-signing's Sigstore verification with a trust root we loaded from a file.

    `sign_sigstore.Verifier` builds its sigstore `Verifier` from a ClientTrustConfig, or from
    TUF (the network) without one; `_verify_signed_content` is the hook model-signing documents
    for subclasses, so we plug in a verifier built from the authority's local TrustedRoot.
    """

    def __init__(self, authority: SigstoreIdentity) -> None:
        self._authority = authority
        self._verifier = SigstoreVerifier(trusted_root=authority.trusted_root)
        self.certificate: x509.Certificate | None = None

    def _verify_signed_content(self, signature: ms_signing.Signature) -> tuple[str, bytes]:
        bundle = cast(ms_sigstore.Signature, signature).bundle
        # Verify everything but the identity first, so that a sound signature by someone else
        # (identity_mismatch) reads differently from a broken one (signature_invalid). The
        # identity is still checked before anything is returned.
        payload_type, payload = self._verifier.verify_dsse(bundle=bundle, policy=_AcceptAny())
        certificate = bundle.signing_certificate
        try:
            self._authority.policy().verify(certificate)
        except SigstoreVerificationError as exc:
            raise _IdentityMismatch(str(exc)) from None
        self.certificate = certificate
        return payload_type, payload


class _AcceptAny:
    """A sigstore policy that defers the identity check to the caller (see above)."""

    def verify(self, cert: x509.Certificate) -> None:
        return None


def _verify_signature(authority: Authority, bundle: _Bundle) -> tuple[bytes, str] | _Problem:
    """(authenticated DSSE payload, signer identity), or the exact reason it is not authentic."""
    captured = io.StringIO()
    try:
        # model-signing prints a warning to stdout for pre-1.0 key bundles; stdout is reserved
        # for `-o json`, so it goes to the log instead. The redirect is process-wide for this
        # short, CPU-only step; nothing else in auditor prints while verifying.
        with contextlib.redirect_stdout(captured):
            result = _verify_with(authority, bundle)
    finally:
        if captured.getvalue().strip():
            logger.info("model-signing: %s", captured.getvalue().strip())
    return result


def _verify_with(authority: Authority, bundle: _Bundle) -> tuple[bytes, str] | _Problem:
    path = bundle.path
    if isinstance(authority, PublicKey):
        if authority.key_type.startswith(("ed25519", "rsa")):
            return _Problem(
                UNVERIFIED,
                f"{authority.describe()} cannot verify {path.name}: model-signing signs models "
                "with EC P-256/P-384/P-521 keys only",
            )
        try:
            signature = ms_sigstore_pb.Signature.read(path)
        except _MALFORMED as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} is not a readable bundle: {exc}")
        verifier: ms_signing.Verifier = ms_ec_key.Verifier(authority.path)
        try:
            payload_type, payload = verifier._verify_signed_content(signature)
        except InvalidSignature:
            return _Problem(
                SIGNATURE_INVALID,
                f"the signature in {path.name} does not verify with {authority.describe()}",
                expected=authority.fingerprint,
            )
        except ValueError as exc:
            # The key hint in the bundle names another key ("Key mismatch"), or a bad media type.
            return _Problem(
                SIGNATURE_INVALID,
                f"{path.name} was not signed by {authority.describe()}: {_first_line(exc)}",
                expected=authority.fingerprint,
                actual=_key_hint(bundle),
            )
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} is malformed: {exc}")
        identity = authority.fingerprint
    elif isinstance(authority, CertificateChain):
        try:
            signature = ms_sigstore_pb.Signature.read(path)
            leaf = _leaf_certificate(signature)
        except _MALFORMED as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} is not a readable bundle: {exc}")
        verifier = ms_certificate.Verifier(list(authority.paths))
        try:
            payload_type, payload = verifier._verify_signed_content(signature)
        except openssl_crypto.X509StoreContextError as exc:
            return _Problem(
                IDENTITY_MISMATCH,
                f"the signing certificate of {path.name} ({leaf.subject.rfc4514_string()}) does "
                f"not chain to {authority.describe()}: {exc}",
                expected=authority.describe(),
                actual=_issuer_chain(leaf),
            )
        except InvalidSignature:
            return _Problem(
                SIGNATURE_INVALID,
                f"the signature in {path.name} does not verify with its signing certificate "
                f"({leaf.subject.rfc4514_string()})",
            )
        except _MALFORMED as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} is malformed: {_first_line(exc)}")
        identity = leaf.subject.rfc4514_string()
    else:
        assert isinstance(authority, SigstoreIdentity)
        try:
            sigstore_signature = ms_sigstore.Signature.read(path)
        except (SigstoreError, *_MALFORMED) as exc:
            return _Problem(
                SIGNATURE_INVALID,
                f"{path.name} is not a readable Sigstore bundle: {_first_line(exc)}",
            )
        sigstore_verifier = _OfflineSigstoreVerifier(authority)
        try:
            payload_type, payload = sigstore_verifier._verify_signed_content(sigstore_signature)
        except _IdentityMismatch as exc:
            cert = sigstore_signature.bundle.signing_certificate
            return _Problem(
                IDENTITY_MISMATCH,
                f"{path.name} was signed by {', '.join(certificate_identities(cert)) or '?'} "
                f"from {certificate_issuer_claim(cert) or '?'}, not {authority.describe()}: {exc}",
                expected={"subject": authority.expected_identity, "issuer": authority.issuer},
                actual={
                    "subjects": list(certificate_identities(cert)),
                    "issuer": certificate_issuer_claim(cert),
                },
            )
        except CertValidationError as exc:
            return _Problem(
                IDENTITY_MISMATCH,
                f"the certificate in {path.name} does not chain to the trust root of "
                f"{authority.describe()}: {_first_line(exc)}",
            )
        except SigstoreVerificationError as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} does not verify: {_first_line(exc)}")
        except _MALFORMED as exc:
            return _Problem(SIGNATURE_INVALID, f"{path.name} is malformed: {_first_line(exc)}")
        assert sigstore_verifier.certificate is not None
        identity = authority.matching_identity(sigstore_verifier.certificate)
    if payload_type != ms_signing._IN_TOTO_JSON_PAYLOAD_TYPE:
        return _Problem(
            SIGNATURE_INVALID,
            f"{path.name} signs a {payload_type!r} payload, not an in-toto statement",
        )
    return payload, identity


def _leaf_certificate(signature: ms_sigstore_pb.Signature) -> x509.Certificate:
    chain = signature.bundle.verification_material.x509_certificate_chain
    if chain is None or not chain.certificates:
        raise ValueError("the bundle has no signing certificate")
    return x509.load_der_x509_certificate(chain.certificates[0].raw_bytes)


def _issuer_chain(leaf: x509.Certificate) -> str:
    return f"issued by {leaf.issuer.rfc4514_string()}"


def _key_hint(bundle: _Bundle) -> str | None:
    hint = bundle.document.get("verificationMaterial", {}).get("publicKey", {}).get("hint")
    return f"sha256:{hint}" if isinstance(hint, str) and hint else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# From the signed statement to a manifest


def _statement_manifest(payload: bytes, path: Path) -> tuple[ms_manifest.Manifest, str] | _Problem:
    """The manifest and subject digest of an authenticated statement."""
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _Problem(SIGNATURE_INVALID, f"the statement signed in {path.name} is not JSON")
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != ms_signing._IN_TOTO_STATEMENT_TYPE
    ):
        return _Problem(SIGNATURE_INVALID, f"{path.name} does not sign an in-toto Statement v1")
    try:
        manifest = ms_signing.dsse_payload_to_manifest(statement)
    except ValueError as exc:
        message = _first_line(exc)
        if message.startswith("Manifest is inconsistent"):
            # Authentic, but its subject digest is not the digest of the files it lists.
            return _Problem(
                DIGEST_MISMATCH,
                f"the subject digest signed in {path.name} does not match the files it lists "
                f"({message})",
                expected=_subject_digest(statement),
            )
        return _Problem(SIGNATURE_INVALID, f"{path.name} is not a model signature: {message}")
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        return _Problem(SIGNATURE_INVALID, f"{path.name} is not a model signature: missing {exc}")
    if statement.get("predicateType") == _V1_PREDICATE:
        digest = _subject_digest(statement)
    else:
        # The v0.2 compat statement lists files as subjects and has no single model digest:
        # use the one a v1.0 statement of the same manifest would carry.
        digest = manifest_digest(manifest)
    assert digest is not None
    return manifest, digest


def _subject_digest(statement: dict[str, Any]) -> str | None:
    try:
        return "sha256:" + str(statement["subject"][0]["digest"]["sha256"])
    except (KeyError, IndexError, TypeError):
        return None


def manifest_digest(manifest: ms_manifest.Manifest) -> str:
    """The subject digest model-signing signs for a manifest: `sha256:<hex>`."""
    statement = ms_signing.Payload(manifest).statement
    return "sha256:" + statement.pb.subject[0].digest["sha256"]


# ---------------------------------------------------------------------------------------------
# Hashing the model as the statement says it was hashed


def _truthy(value: Any) -> bool:
    # The v0.2 compat serialization records allow_symlinks as the string "false".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def hashing_config(
    serialization: dict[str, Any], ignore_paths: Iterable[Path]
) -> ms_hashing.Config:
    """model-signing's hashing configuration for a signed serialization, plus ignored paths.

    The same choice `model_signing.verifying.Config` makes when it guesses the configuration
    from the signature, with the caller's ignored paths added (ours come from the CLI).
    """
    method = serialization.get("method")
    algorithm = serialization.get("hash_type", "sha256")
    symlinks = _truthy(serialization.get("allow_symlinks", False))
    signed_ignores = [Path(p) for p in serialization.get("ignore_paths", ())]
    config = ms_hashing.Config()
    if method == "files":
        config.use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=symlinks)
    elif method == "shards":
        config.use_shard_serialization(
            hashing_algorithm=algorithm,
            shard_size=int(serialization["shard_size"]),
            allow_symlinks=symlinks,
        )
    else:
        raise ValueError(f"unknown serialization method {method!r}")
    # set_allow_symlinks: Config.hash re-applies its own flag to the serializer.
    return config.set_ignored_paths(
        paths=[*signed_ignores, *ignore_paths], ignore_git_paths=True
    ).set_allow_symlinks(symlinks)


def _manifest_diff(
    actual: ms_manifest.Manifest, expected: ms_manifest.Manifest
) -> dict[str, list[str]]:
    have = {rd.identifier: rd.digest.digest_hex for rd in actual.resource_descriptors()}
    want = {rd.identifier: rd.digest.digest_hex for rd in expected.resource_descriptors()}
    return {
        "changed": sorted(k for k in have.keys() & want.keys() if have[k] != want[k]),
        "missing": sorted(want.keys() - have.keys()),
        "extra": sorted(have.keys() - want.keys()),
    }


class _Hasher:
    """Hashes the model once per distinct serialization, however many signatures ask."""

    def __init__(self, model: Path, ignore_paths: tuple[Path, ...]) -> None:
        self.model = model
        self.ignore_paths = ignore_paths
        self._done: dict[str, ms_manifest.Manifest | _Problem] = {}

    def manifest(self, serialization: dict[str, Any]) -> ms_manifest.Manifest | _Problem:
        key = json.dumps(serialization, sort_keys=True, default=str)
        if key not in self._done:
            self._done[key] = self._hash(serialization)
        return self._done[key]

    def _hash(self, serialization: dict[str, Any]) -> ms_manifest.Manifest | _Problem:
        try:
            config = hashing_config(serialization, self.ignore_paths)
        except (ValueError, KeyError, TypeError) as exc:
            return _Problem(
                SIGNATURE_INVALID, f"the signed serialization is not one model-signing knows: {exc}"
            )
        try:
            return config.hash(self.model)
        except ValueError as exc:
            # A symlink the signature does not allow, or a special file: not the signed model.
            return _Problem(
                DIGEST_MISMATCH, f"the model cannot be hashed as signed: {_first_line(exc)}"
            )
        except OSError as exc:
            raise InputError(
                f"cannot read the model: {exc.strerror}", file=exc.filename or str(self.model)
            ) from None


# ---------------------------------------------------------------------------------------------
# The verification


def model_ref(
    model_path: str | Path, *, namespace: str | None = None, name: str | None = None
) -> ResourceRef:
    """The ref findings carry for a model verified on its own: kind Model, the directory name."""
    resolved = Path(model_path).resolve()
    return ResourceRef(
        cluster="",
        api_version=MODEL_API_VERSION,
        kind=MODEL_KIND,
        namespace=namespace or "",
        name=name or resolved.name,
    )


def _relative_ignores(
    model: Path, signatures: Sequence[Path], ignore_paths: Iterable[str | Path]
) -> tuple[Path, ...]:
    """Ignored paths relative to the model directory, as model-signing's CLI resolves them:
    relative ones are taken relative to the model, anything outside it is dropped. A signature
    file inside the model directory is never part of the model."""
    root = model if model.is_dir() else model.parent
    out: list[Path] = []
    for item in [*ignore_paths, *signatures]:
        candidate = Path(item)
        absolute = candidate if candidate.is_absolute() else root / candidate
        with contextlib.suppress(ValueError):
            relative = absolute.resolve().relative_to(root)
            if str(relative) != ".":
                out.append(relative)
    return tuple(sorted(set(out)))


def verify_model(
    model_path: str | Path,
    signatures: str | Path | Sequence[str | Path],
    policy: TrustPolicy,
    *,
    namespace: str | None = None,
    name: str | None = None,
    ignore_paths: Iterable[str | Path] = (),
    ref: ResourceRef | None = None,
    use_cache: bool = True,
) -> ModelVerification:
    """Verifies a model directory (or single file) against its signature bundles.

    The rule is the first whose globs match `namespace`/`name` (`name` defaults to the
    directory name); with neither given, the model passes if it satisfies any rule. A model
    passes when the authorities whose signatures verify *and* cover exactly its files satisfy
    the rule (several signature files can together satisfy an all-of rule). `ignore_paths` are
    relative to the model directory (or absolute). Never raises for a bad signature or a
    tampered model: every failure is a finding. Raises InputError when the model cannot be read.
    """
    model = Path(model_path)
    if not model.exists():
        raise InputError("model path does not exist", file=str(model_path))
    model = model.resolve()
    if isinstance(signatures, str | Path):
        signatures = [signatures]
    signature_paths = tuple(Path(s).absolute() for s in signatures)
    ignores = _relative_ignores(model, signature_paths, ignore_paths)
    ref = ref or model_ref(model, namespace=namespace, name=name)

    key = None
    if use_cache:
        key = _cache_key(model, signature_paths, policy, namespace, name, ignores, ref)
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
    result = _verify(model, signature_paths, policy, namespace, name, ignores, ref)
    if key is not None:
        _CACHE.put(key, result)
    return result


def verify_signatures(
    signatures: str | Path | Sequence[str | Path],
    policy: TrustPolicy,
    *,
    namespace: str,
    name: str,
    ref: ResourceRef,
    label: str = "",
) -> ModelVerification:
    """Verifies model-signing bundles without the model files: signature, identity, rule.

    For a model whose files are not reachable (an object store, an OCI image): every check
    `verify_model` makes except hashing the files, with the same reasons. The statement must
    still be consistent (its subject digest is the digest of the manifest it lists), and the
    returned `digest` is that signed subject digest, which the caller compares with the digest
    Git pins. `label` is how the result names the model (its URI) in `model_path`.
    """
    if isinstance(signatures, str | Path):
        signatures = [signatures]
    signature_paths = tuple(Path(s).absolute() for s in signatures)
    return _verify(None, signature_paths, policy, namespace, name, (), ref, label=label)


def _verify(
    model: Path | None,
    signature_paths: tuple[Path, ...],
    policy: TrustPolicy,
    namespace: str | None,
    name: str | None,
    ignores: tuple[Path, ...],
    ref: ResourceRef,
    *,
    label: str = "",
) -> ModelVerification:
    model_name = model.name if model is not None else ref.name
    if namespace is None and name is None:
        requirement: Requirement | None = policy.any_rule()
        rule_text = requirement.describe() if requirement else None
    else:
        rule = policy.rule_for(namespace or "", name or model_name)
        requirement = rule.requirement if rule else None
        rule_text = rule.describe() if rule else None
    required = set(requirement.names()) if requirement else set()

    # Without the files (model None) nothing is hashed: the signed manifest stands as is.
    hasher = _Hasher(model, ignores) if model is not None else None
    outcomes = [_check_signature(path, policy, hasher) for path in signature_paths]

    # Who signed exactly these files, in the order the policy lists authorities.
    signed: dict[str, _Authentic] = {}
    for outcome in outcomes:
        for item in outcome.authentic:
            signed.setdefault(item.authority.name, item)
    signers = tuple(
        Signer(a.name, signed[a.name].identity) for a in policy.authorities if a.name in signed
    )
    digest = next(iter(signed.values())).digest if signed else _claimed_digest(outcomes)
    verified = requirement is not None and requirement.is_satisfied(set(signed))

    findings: list[Finding] = []
    if not verified:
        problems: list[_Problem] = []
        if requirement is None:
            where = (
                f"namespace {namespace or ''!r}, name {name or model_name!r}"
                if namespace is not None or name is not None
                else "any model"
            )
            problems.append(
                _Problem(
                    NO_RULE,
                    f"no trust.models rule matches {where}: unverified (fail closed)",
                    details={"trust_policy": policy.source},
                )
            )
        if not signature_paths:
            problems.append(_Problem(UNSIGNED, "no signature file given"))
        for outcome in outcomes:
            problem = _explain(outcome, required, has_rule=requirement is not None)
            if problem is not None:
                problems.append(problem)
        if requirement is not None and not problems:
            problems.append(_requirement_problem(requirement, required, signed))
        findings = [_finding(ref, p) for p in problems]
    return ModelVerification(
        verified=verified,
        model_path=str(model) if model is not None else label,
        digest=digest,
        signers=signers,
        findings=tuple(findings),
        ref=ref,
        requirement=rule_text,
    )


def _check_signature(path: Path, policy: TrustPolicy, hasher: _Hasher | None) -> _SignatureOutcome:
    outcome = _SignatureOutcome(path=path)
    bundle = _read_bundle(path)
    if isinstance(bundle, _Problem):
        outcome.problem = bundle
        return outcome
    candidates = [a for a in policy.authorities if a.kind == bundle.kind]
    if not candidates:
        outcome.problem = _Problem(
            UNVERIFIED,
            f"{path.name} is signed with {_KIND_TEXT[bundle.kind]}, and the trust policy has no "
            "authority of that kind",
        )
        return outcome
    for authority in candidates:
        verified = _verify_signature(authority, bundle)
        if isinstance(verified, _Problem):
            outcome.failures.append((authority, verified))
            continue
        payload, identity = verified
        statement = _statement_manifest(payload, path)
        if isinstance(statement, _Problem):
            outcome.failures.append((authority, statement))
            continue
        signed_manifest, digest = statement
        if hasher is None:
            outcome.authentic.append(_Authentic(authority, identity, signed_manifest, digest))
            continue
        actual = hasher.manifest(signed_manifest.serialization_type)
        if isinstance(actual, _Problem):
            outcome.failures.append((authority, actual))
            continue
        if actual != signed_manifest:
            diff = _manifest_diff(actual, signed_manifest)
            outcome.failures.append(
                (
                    authority,
                    _Problem(
                        DIGEST_MISMATCH,
                        f"the model files differ from the manifest signed in {path.name} by "
                        f"{authority.name}: " + _diff_text(diff),
                        expected=digest,
                        actual=manifest_digest(actual),
                        details={**diff, "signature": str(path)},
                    ),
                )
            )
            continue
        outcome.authentic.append(_Authentic(authority, identity, signed_manifest, digest))
    return outcome


def _diff_text(diff: dict[str, list[str]]) -> str:
    parts = [
        f"{label} {', '.join(diff[key][:5])}{' ...' if len(diff[key]) > 5 else ''}"
        for key, label in (("changed", "changed"), ("missing", "missing"), ("extra", "unsigned"))
        if diff[key]
    ]
    return "; ".join(parts)


_PRIORITY = {DIGEST_MISMATCH: 0, IDENTITY_MISMATCH: 1, SIGNATURE_INVALID: 2, UNVERIFIED: 3}


def _explain(outcome: _SignatureOutcome, required: set[str], *, has_rule: bool) -> _Problem | None:
    """The one reason this signature file does not count toward the rule, if any."""
    if outcome.problem is not None:
        return outcome.problem
    if any(a.authority.name in required for a in outcome.authentic):
        return None  # it counts; the requirement as a whole is judged by the caller
    if outcome.authentic and not has_rule:
        return None  # sound; `no_rule` already says why it is not enough
    if outcome.authentic:
        who = ", ".join(f"{a.authority.name} ({a.identity})" for a in outcome.authentic)
        return _Problem(
            AUTHORITY_NOT_REQUIRED,
            f"{outcome.path.name} is validly signed by {who}, but the matching rule requires "
            f"{', '.join(sorted(required)) or 'no authority'}",
            expected=sorted(required),
            actual=[a.authority.name for a in outcome.authentic],
        )
    # What went wrong against a required authority matters more than against another one;
    # among those, the reason that got furthest (a sound signature over the wrong files or by
    # the wrong identity says more than a broken one).
    failures = [f for f in outcome.failures if f[0] is not None and f[0].name in required]
    failures = failures or outcome.failures
    authority, problem = min(failures, key=lambda f: _PRIORITY.get(f[1].check, 9))
    details = {**problem.details, "signature": str(outcome.path)}
    if authority is not None:
        details["authority"] = authority.name
    return _Problem(problem.check, problem.message, problem.expected, problem.actual, details)


def _requirement_problem(
    requirement: Requirement, required: set[str], signed: dict[str, _Authentic]
) -> _Problem:
    present = sorted(set(signed) & required)
    if not present and signed:
        return _Problem(
            AUTHORITY_NOT_REQUIRED,
            f"signed by {', '.join(sorted(signed))}, but the matching rule requires "
            f"{requirement.describe()}",
            expected=requirement.describe(),
            actual=sorted(signed),
        )
    return _Problem(
        UNVERIFIED,
        f"the matching rule requires {requirement.describe()}; signed by "
        f"{', '.join(present) or 'none of them'}",
        expected=requirement.describe(),
        actual=present,
    )


def _claimed_digest(outcomes: Sequence[_SignatureOutcome]) -> str | None:
    """The digest an authentic signature vouches for even when the files no longer match it."""
    for outcome in outcomes:
        for _authority, problem in outcome.failures:
            if problem.check == DIGEST_MISMATCH and isinstance(problem.expected, str):
                return problem.expected
    return None


def _finding(ref: ResourceRef, problem: _Problem) -> Finding:
    return Finding(
        category="provenance",
        check=problem.check,
        severity=SEVERITY[problem.check],
        ref=ref,
        path="",
        message=f"{ref.display()}: {problem.message}",
        expected=problem.expected,
        actual=problem.actual,
        details=problem.details,
    )


# ---------------------------------------------------------------------------------------------
# Cache: a model is hashed once per process for the same bundle, policy and files on disk


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def stat_fingerprint(model: Path) -> str:
    """A digest of every entry's path, type, size, mtime, ctime and inode under `model`.

    Any write changes ctime, which a user cannot set back, so a cached answer never outlives
    a change to the files.
    """
    entries: list[tuple[Any, ...]] = []

    def add(path: Path) -> None:
        st = path.lstat()
        entries.append(
            (
                str(path.relative_to(model.parent)),
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
            )
        )

    add(model)
    if model.is_dir():
        for root, dirs, files in os.walk(model):
            dirs.sort()
            for item in sorted(dirs + files):
                add(Path(root) / item)
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def _cache_key(
    model: Path,
    signatures: tuple[Path, ...],
    policy: TrustPolicy,
    namespace: str | None,
    name: str | None,
    ignores: tuple[Path, ...],
    ref: ResourceRef,
) -> tuple[Any, ...]:
    return (
        tuple((str(p), _file_digest(p)) for p in signatures),
        policy.digest,
        namespace,
        name,
        tuple(str(p) for p in ignores),
        ref,
        str(model),
        stat_fingerprint(model),
    )


class _Cache:
    """A small thread-safe LRU: the webhook verifies from several threads."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], ModelVerification] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> ModelVerification | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: ModelVerification) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _Cache()


def clear_cache() -> None:
    """Forgets every cached verification (tests, or after rotating trust material)."""
    _CACHE.clear()


__all__ = [
    "AUTHORITY_NOT_REQUIRED",
    "DIGEST_MISMATCH",
    "IDENTITY_MISMATCH",
    "NO_RULE",
    "SIGNATURE_INVALID",
    "UNSIGNED",
    "UNVERIFIED",
    "ModelVerification",
    "Signer",
    "clear_cache",
    "hashing_config",
    "manifest_digest",
    "model_ref",
    "stat_fingerprint",
    "verify_model",
    "verify_signatures",
]
