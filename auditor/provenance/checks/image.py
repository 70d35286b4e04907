"""The signature of a model shipped as an OCI image (KServe modelcars, `oci://…@sha256:…`).

Its digest is the image manifest digest, the one the pods run; the binding is Git's digest ==
the subject of a signature over it by the authorities the matching trust rule requires
(`auditor.provenance.images` lists the forms cosign, GitHub attestations and sigstore write).

- Git must pin the digest (`provenance.digest_undeclared`).
- The signature documents are the attestation directory's `*.sigstore.json` (a Sigstore bundle
  each) and the DSSE envelopes of its `*.intoto.json` / `*.intoto.jsonl` (cosign attestations).
  A model-signing bundle (`*.sig`) signs a manifest of files, never an image: it does not count.
- Each document is verified with every key and Sigstore authority of the trust policy, so that
  a signature by a known authority the rule does not name reads as such. The authorities whose
  signatures name Git's digest must satisfy the rule. Why a document does not count:
  `provenance.digest_mismatch` (a sound signature by a required authority over another image),
  `provenance.authority_not_required`, `provenance.signature_invalid`,
  `provenance.identity_mismatch`, `provenance.malformed`; and for the whole model
  `provenance.no_rule`, `provenance.unsigned`, `provenance.unverified`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from auditor import checks
from auditor.model import Finding, GitFile, ModelRef, ResourceRef
from auditor.provenance import signing as ms
from auditor.provenance.checks.attestations import AttestationDirectory
from auditor.provenance.checks.signature import (
    Mode,
    SignatureCheck,
    directory_text,
    no_rule_finding,
    undeclared_finding,
)
from auditor.provenance.dsse import DsseError, MalformedEnvelopeError
from auditor.provenance.gitfiles import documents
from auditor.provenance.images import (
    ImageAuthority,
    ImageSignature,
    MalformedImageStatementError,
    verify_image_signature,
)
from auditor.trust.authorities import PublicKey, SigstoreIdentity
from auditor.trust.policy import ModelRule, TrustPolicy

# When no authority verifies a document, the failure reported is the most telling one: an
# authentic signature over something that is not an image statement, then a valid signature
# by the wrong identity, a bad signature, no signature, a document that is no signature at all.
_RANK = {"identity_mismatch": 1, "signature_invalid": 2, "unsigned": 3, "malformed": 4}


@dataclass(slots=True)
class _Document:
    """One signature document as Git holds it, and what each authority made of it."""

    file: GitFile
    source: str  # `dir/image.sigstore.json@1a2b3c4d5e6f`, `…/x.intoto.jsonl@…#2`
    authentic: list[tuple[ImageAuthority, ImageSignature]] = field(default_factory=list)
    failures: list[tuple[ImageAuthority, DsseError]] = field(default_factory=list)

    def for_digest(self, digest: str | None) -> list[tuple[ImageAuthority, ImageSignature]]:
        """The authentic signatures over `digest` (over anything, when Git pins none)."""
        return [(a, s) for a, s in self.authentic if digest is None or digest in s.digests]

    @property
    def path(self) -> str:
        # one path per file keeps the findings of several documents apart (fingerprints)
        return f"/provenance/signature/{self.file.name}"


@dataclass(frozen=True, slots=True)
class _Target:
    ref: ResourceRef
    digest: str | None  # Git's
    rule: ModelRule | None
    required: frozenset[str]


def check_image_signature(
    ref: ResourceRef,
    declared: ModelRef,
    rule: ModelRule | None,
    directory: AttestationDirectory,
    trust: TrustPolicy,
) -> SignatureCheck:
    """The signature check of a serving resource whose Git body names the OCI image `declared`."""
    authorities = [a for a in trust.authorities if isinstance(a, PublicKey | SigstoreIdentity)]
    files = (*directory.files.image_signatures, *directory.files.provenance)
    docs = [
        _verify(file, source, data, authorities, declared.digest)
        for file in files
        for source, data in documents(file)
    ]
    required = frozenset(rule.requirement.names()) if rule else frozenset()
    target = _Target(ref, declared.digest, rule, required)
    signed: dict[str, ImageSignature] = {}
    for doc in docs:
        for authority, signature in doc.for_digest(declared.digest):
            signed.setdefault(authority.name, signature)
    verified = rule is not None and rule.requirement.is_satisfied(set(signed))
    findings: tuple[Finding, ...] = ()
    if not verified:
        findings = _problems(target, docs, directory, trust.source)
    verification = ms.ModelVerification(
        verified=verified,
        model_path=declared.uri or "",
        digest=_signed_digest(declared.digest, signed, docs),
        signers=tuple(
            ms.Signer(a.name, signed[a.name].signer.identity)
            for a in trust.authorities
            if a.name in signed
        ),
        findings=findings,
        ref=ref,
        requirement=rule.describe() if rule else None,
    )
    mode: Mode = "image" if docs else "none"
    undeclared = None if declared.digest else undeclared_finding(ref, declared)
    return SignatureCheck(verification, mode, files, undeclared, findings, None, "image-signature")


def _verify(
    file: GitFile,
    source: str,
    data: bytes | None,
    authorities: Sequence[ImageAuthority],
    digest: str | None,
) -> _Document:
    doc = _Document(file, source)
    for authority in authorities:
        try:
            if data is None:
                raise MalformedEnvelopeError(f"{file.size} bytes, over the size limit", file=source)
            signature = verify_image_signature(data, authority, image_digest=digest, source=source)
        except DsseError as exc:
            doc.failures.append((authority, exc))
        else:
            doc.authentic.append((authority, signature))
    return doc


def _signed_digest(
    declared: str | None, signed: dict[str, ImageSignature], docs: Sequence[_Document]
) -> str | None:
    """The image digest the record and the policy input name: Git's when an authority signed
    it, else the first one an authentic signature names (another image's)."""
    if signed:
        return declared or next(iter(signed.values())).digests[0]
    return next((s.digests[0] for d in docs for _, s in d.authentic), None)


def _problems(
    target: _Target, docs: Sequence[_Document], directory: AttestationDirectory, trust_source: str
) -> tuple[Finding, ...]:
    """Why the image is unverified: no rule, no signature, each document's reason, or else
    the rule itself."""
    ref = target.ref
    problems: list[Finding] = []
    if target.rule is None:
        problems.append(no_rule_finding(ref, trust_source))
    if not docs:
        problems.append(_unsigned(ref, target.digest, directory))
    problems.extend(f for d in docs if (f := _explain(target, d)) is not None)
    if target.rule is not None and not problems:
        problems.append(_unmet(target, docs))
    return tuple(problems)


def _explain(target: _Target, doc: _Document) -> Finding | None:
    """The one reason this document does not count toward the rule, if any."""
    ref, digest, required = target.ref, target.digest, target.required
    for_digest = doc.for_digest(digest)
    if any(a.name in required for a, _ in for_digest) or (for_digest and target.rule is None):
        return None  # it counts (without a rule, `no_rule` already says why it is not enough)
    elsewhere = [(a, s) for a, s in doc.authentic if a.name in required]
    if elsewhere:
        authority, signature = elsewhere[0]
        return checks.finding(
            checks.DIGEST_MISMATCH,
            ref,
            doc.path,
            f"{ref.display()}: {doc.source} is signed by {authority.name} for image "
            f"{', '.join(signature.digests)}, but Git declares {digest}",
            expected=digest,
            actual=list(signature.digests),
            details={"signature": doc.source, "authority": authority.name},
        )
    if doc.authentic:
        who = ", ".join(f"{a.name} ({s.signer.identity})" for a, s in doc.authentic)
        return checks.finding(
            checks.AUTHORITY_NOT_REQUIRED,
            ref,
            doc.path,
            f"{ref.display()}: {doc.source} is validly signed by {who}, but the matching rule "
            f"requires {', '.join(sorted(required)) or 'no authority'}",
            expected=sorted(required),
            actual=[a.name for a, _ in doc.authentic],
            details={"signature": doc.source},
        )
    return _rejected(target, doc)


def _rejected(target: _Target, doc: _Document) -> Finding | None:
    """The most telling failure of a document no authority verified, against a required
    authority when one was tried."""
    failures = [f for f in doc.failures if f[0].name in target.required] or doc.failures
    if not failures:
        return None  # the policy names no key or Sigstore authority: `unverified` says so
    authority, error = min(failures, key=lambda f: _rank(f[1]))
    ref = target.ref
    return checks.finding(
        error.check,
        ref,
        doc.path,
        f"{ref.display()}: image signature {doc.source} rejected: {error.message}",
        details={"signature": doc.source, "authority": authority.name},
    )


def _rank(error: DsseError) -> int:
    return 0 if isinstance(error, MalformedImageStatementError) else _RANK.get(error.reason, 9)


def _unsigned(ref: ResourceRef, digest: str | None, directory: AttestationDirectory) -> Finding:
    bundles = [f.name for f in directory.files.signatures]
    why = (
        f": {', '.join(bundles)} is a model-signing bundle, which signs a manifest of files, "
        "not the image"
        if bundles
        else ""
    )
    return checks.finding(
        checks.UNSIGNED,
        ref,
        "/provenance/signature",
        f"{ref.display()}: no signature over image {digest or '(no digest in Git)'} "
        f"(*.sigstore.json, or an in-toto statement in *.intoto.json) {directory_text(directory)}"
        f"{why}",
    )


def _unmet(target: _Target, docs: Sequence[_Document]) -> Finding:
    """Every document counts, and together they do not satisfy the rule (an all-of rule)."""
    assert target.rule is not None
    requirement = target.rule.requirement.describe()
    if not any(d.authentic or d.failures for d in docs):
        return checks.finding(
            checks.UNVERIFIED,
            target.ref,
            "/provenance/signature",
            f"{target.ref.display()}: the trust policy names no key or Sigstore authority to "
            "verify image signatures with (certificate_chain authorities sign model-signing "
            "bundles only)",
            expected=requirement,
        )
    present = sorted(
        {a.name for d in docs for a, _ in d.for_digest(target.digest)} & target.required
    )
    return checks.finding(
        checks.UNVERIFIED,
        target.ref,
        "/provenance/signature",
        f"{target.ref.display()}: the matching rule requires {requirement}; image "
        f"{target.digest} is signed by {', '.join(present) or 'none of them'}",
        expected=requirement,
        actual=present,
    )


__all__ = ["check_image_signature"]
