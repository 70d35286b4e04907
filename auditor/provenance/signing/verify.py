"""The verdict for a model: which signatures count, whether they satisfy the trust rule, and
the findings that say why not.

A model passes when the authorities whose signatures verify *and* cover exactly its files
satisfy the matching trust.models rule (several signature files can together satisfy an
all-of rule); every other outcome is a finding with the one reason that matters most.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from auditor import checks
from auditor.errors import InputError
from auditor.model import Finding, ResourceRef
from auditor.provenance.signing.cache import VERIFICATIONS, cache_key
from auditor.provenance.signing.manifest import Hasher
from auditor.provenance.signing.results import ModelVerification, Problem, Signer
from auditor.provenance.signing.signature import Authentic, SignatureOutcome, check_signature
from auditor.serving import AUDITOR_API_VERSION
from auditor.trust.authorities import Requirement
from auditor.trust.policy import TrustPolicy

# A pseudo-kind for a model directory verified on its own (`auditor verify model`); the audit
# binding passes the serving resource's ref instead, so findings land on the InferenceService.
MODEL_API_VERSION = AUDITOR_API_VERSION
MODEL_KIND = "Model"

# Among an authority's failures, the reason that got furthest says the most: a sound signature
# over the wrong files or by the wrong identity, before a broken one.
_PRIORITY = {
    checks.DIGEST_MISMATCH: 0,
    checks.IDENTITY_MISMATCH: 1,
    checks.SIGNATURE_INVALID: 2,
    checks.UNVERIFIED: 3,
}


def model_directory_ref(
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
    ref = ref or model_directory_ref(model, namespace=namespace, name=name)

    key = None
    if use_cache:
        key = cache_key(model, signature_paths, policy, namespace, name, ignores, ref)
        cached = VERIFICATIONS.get(key)
        if cached is not None:
            return cached
    result = _verify(model, signature_paths, policy, namespace, name, ignores, ref)
    if key is not None:
        VERIFICATIONS.put(key, result)
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

    # Without the files (model None) nothing is hashed: the signed manifest stands as is.
    hasher = Hasher(model, ignores) if model is not None else None
    outcomes = [check_signature(path, policy, hasher) for path in signature_paths]

    # Who signed exactly these files, in the order the policy lists authorities.
    signed: dict[str, Authentic] = {}
    for outcome in outcomes:
        for item in outcome.authentic:
            signed.setdefault(item.authority.name, item)
    signers = tuple(
        Signer(a.name, signed[a.name].identity) for a in policy.authorities if a.name in signed
    )
    digest = next(iter(signed.values())).digest if signed else _claimed_digest(outcomes)
    verified = requirement is not None and requirement.is_satisfied(set(signed))

    findings: tuple[Finding, ...] = ()
    if not verified:
        where = (
            f"namespace {namespace or ''!r}, name {name or model_name!r}"
            if namespace is not None or name is not None
            else "any model"
        )
        problems = _problems(requirement, where, policy, signature_paths, outcomes, signed)
        findings = tuple(_finding(ref, p) for p in problems)
    return ModelVerification(
        verified=verified,
        model_path=str(model) if model is not None else label,
        digest=digest,
        signers=signers,
        findings=findings,
        ref=ref,
        requirement=rule_text,
    )


def _problems(
    requirement: Requirement | None,
    where: str,
    policy: TrustPolicy,
    signature_paths: tuple[Path, ...],
    outcomes: Sequence[SignatureOutcome],
    signed: dict[str, Authentic],
) -> list[Problem]:
    """Why an unverified model is unverified: no rule, no signature, each signature's reason,
    or else the rule itself."""
    required = set(requirement.names()) if requirement else set()
    problems: list[Problem] = []
    if requirement is None:
        problems.append(
            Problem(
                checks.NO_RULE,
                f"no trust.models rule matches {where}: unverified (fail closed)",
                details={"trust_policy": policy.source},
            )
        )
    if not signature_paths:
        problems.append(Problem(checks.UNSIGNED, "no signature file given"))
    for outcome in outcomes:
        problem = _explain(outcome, required, has_rule=requirement is not None)
        if problem is not None:
            problems.append(problem)
    if requirement is not None and not problems:
        problems.append(_requirement_problem(requirement, required, signed))
    return problems


def _explain(outcome: SignatureOutcome, required: set[str], *, has_rule: bool) -> Problem | None:
    """The one reason this signature file does not count toward the rule, if any."""
    if outcome.problem is not None:
        return outcome.problem
    if any(a.authority.name in required for a in outcome.authentic):
        return None  # it counts; the requirement as a whole is judged by the caller
    if outcome.authentic and not has_rule:
        return None  # sound; `no_rule` already says why it is not enough
    if outcome.authentic:
        who = ", ".join(f"{a.authority.name} ({a.identity})" for a in outcome.authentic)
        return Problem(
            checks.AUTHORITY_NOT_REQUIRED,
            f"{outcome.path.name} is validly signed by {who}, but the matching rule requires "
            f"{', '.join(sorted(required)) or 'no authority'}",
            expected=sorted(required),
            actual=[a.authority.name for a in outcome.authentic],
        )
    # What went wrong against a required authority matters more than against another one.
    failures = [f for f in outcome.failures if f[0] is not None and f[0].name in required]
    failures = failures or outcome.failures
    authority, problem = min(failures, key=lambda f: _PRIORITY.get(f[1].check, 9))
    details = {**problem.details, "signature": str(outcome.path)}
    if authority is not None:
        details["authority"] = authority.name
    return Problem(problem.check, problem.message, problem.expected, problem.actual, details)


def _requirement_problem(
    requirement: Requirement, required: set[str], signed: dict[str, Authentic]
) -> Problem:
    present = sorted(set(signed) & required)
    if not present and signed:
        return Problem(
            checks.AUTHORITY_NOT_REQUIRED,
            f"signed by {', '.join(sorted(signed))}, but the matching rule requires "
            f"{requirement.describe()}",
            expected=requirement.describe(),
            actual=sorted(signed),
        )
    return Problem(
        checks.UNVERIFIED,
        f"the matching rule requires {requirement.describe()}; signed by "
        f"{', '.join(present) or 'none of them'}",
        expected=requirement.describe(),
        actual=present,
    )


def _claimed_digest(outcomes: Sequence[SignatureOutcome]) -> str | None:
    """The digest an authentic signature vouches for even when the files no longer match it."""
    for outcome in outcomes:
        for _authority, problem in outcome.failures:
            if problem.check == checks.DIGEST_MISMATCH and isinstance(problem.expected, str):
                return problem.expected
    return None


def _finding(ref: ResourceRef, problem: Problem) -> Finding:
    return checks.finding(
        problem.check,
        ref,
        "",
        f"{ref.display()}: {problem.message}",
        expected=problem.expected,
        actual=problem.actual,
        details=problem.details,
    )


__all__ = [
    "MODEL_API_VERSION",
    "MODEL_KIND",
    "model_directory_ref",
    "verify_model",
    "verify_signatures",
]
