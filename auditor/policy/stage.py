"""The policy stage of an audit: one input document per resource in scope, every policy over
every input, in one evaluation at the end of the run (DESIGN "Policy input and output").

`build_inputs` runs per cluster, on what the earlier stages produced (model values only);
`evaluate_inputs` once, with Gatekeeper's `data.inventory` built from what Git declares.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from auditor.config import PolicySettings
from auditor.errors import AuditorError
from auditor.model import (
    Finding,
    GitCommit,
    PolicyInfo,
    PolicyInput,
    ProvenanceResult,
    ServedModel,
    StageError,
    StageOutcome,
    policy_counts,
)
from auditor.policy.engine import Policy, PolicyEngine
from auditor.policy.inputs import build_input

if TYPE_CHECKING:  # regorus and the loader load only when policies are evaluated
    from auditor.policy.loader import PolicySet

MatchKey = tuple[str, str, str, str]


def build_inputs(
    *,
    git: GitCommit,
    cluster: str,
    served: Mapping[MatchKey, ServedModel],
    drift: Sequence[Finding],
    provenance: Mapping[MatchKey, ProvenanceResult] | None,
) -> list[PolicyInput]:
    """The input documents of one cluster, one per resource desired or live, in key order.

    `served` holds every resource with the model each side names (read once by the
    pipeline); `provenance` the provenance stage's result per resource, or None when
    provenance is not configured, which the input of a serving resource then says (fail
    closed).
    """
    drift_of: dict[MatchKey, list[Finding]] = {}
    for finding in drift:
        drift_of.setdefault(finding.ref.match_key, []).append(finding)
    inputs: list[PolicyInput] = []
    for key, resource in served.items():
        w, h, subject, model = resource.desired, resource.live, resource.subject, resource.model
        result: ProvenanceResult | None
        if provenance is not None:
            result = provenance.get(key)
        else:
            result = ProvenanceResult.not_configured() if model is not None else None
        document = build_input(
            resource=subject,
            desired=w,
            live=h,
            drift=drift_of.get(key, ()),
            git={
                "repo": git.repo,
                "commit": git.commit,
                "path": w.origin.rpartition("@")[0] if w else None,
            },
            cluster=cluster,
            context="audit",
            model=model,
            provenance=result.to_json() if result is not None else None,
        )
        inputs.append(PolicyInput(subject.ref, document))
    return inputs


def evaluate_inputs(
    settings: PolicySettings,
    inputs: Sequence[PolicyInput],
    inventory: Sequence[Mapping[str, Any]],
) -> StageOutcome:
    """Every configured policy over every input. A policy that does not load is a usage error
    (raised); an OPA server that cannot be reached is a StageError (the run is incomplete)."""
    from auditor.policy.evaluate import evaluate_policies, load_engine
    from auditor.policy.loader import with_inventory

    policy_set = with_inventory(configured_policies(settings), [dict(d) for d in inventory])
    engine = remote_engine(settings)
    # requests and the OPA client load only for the `opa` engine (1 s on a busy machine)
    server_errors: tuple[type[AuditorError], ...] = ()
    if engine is not None:
        from auditor.policy.opa_server import PolicyServerError

        server_errors = (PolicyServerError,)
    try:
        loaded = load_engine(policy_set, engine, vm=settings.uses_vm())
        outcome = evaluate_policies(
            policy_set,
            [(i.ref, i.document) for i in inputs],
            engine=loaded,
            workers=1 if engine is not None else min(2, os.cpu_count() or 1),
            timeout=settings.timeout_seconds,
            memory=settings.memory_bytes,
        )
    except server_errors as exc:
        error = StageError(stage="policy", message=exc.diagnostics(), target="opa server")
        return StageOutcome(errors=(error,))
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()
    return StageOutcome(
        findings=outcome.findings,
        errors=outcome.errors,
        notes=outcome.notes,
        evaluations=outcome.evaluations,
        policies=tuple(policy_info(p, policy_set) for p in policy_set.policies),
    )


def configured_policies(settings: PolicySettings) -> PolicySet:
    """The configured policies, loaded as an audit judges with them (Gatekeeper's audit
    enforcement point). Raises PolicyLoadError for one that does not load."""
    from auditor.policy import gatekeeper
    from auditor.policy.loader import load_policy_files

    return load_policy_files(
        settings.resolved_paths(), data_files=settings.data, hooks=(gatekeeper.HOOKS,)
    )


def describe_engine(settings: PolicySettings) -> str:
    """What an audit would evaluate and on which engine, loading and compiling the policies
    as `evaluate_inputs` does (`auditor doctor`). Raises PolicyLoadError as it would."""
    from auditor.policy.evaluate import load_engine

    policy_set = configured_policies(settings)
    count = len(policy_set.policies)
    loaded = f"{count} {'policy' if count == 1 else 'policies'} from {', '.join(settings.paths)}"
    if settings.engine == "opa":
        return f"{loaded}, evaluated by the OPA server at {settings.opa_url}"
    engine = load_engine(policy_set, vm=settings.uses_vm())
    if getattr(engine, "uses_vm", False):
        return f"{loaded}, on regorus's compiled VM (its interpreter checks a sample)"
    if not settings.uses_vm():
        why = "policy.vm: false"
        if settings.vm is None:
            why = "policy.vm: auto, and these are not the shipped library alone"
        return f"{loaded}, on regorus's interpreter ({why})"
    return f"{loaded}, on regorus's interpreter: {getattr(engine, 'reason', None)}"


def policy_info(policy: Policy, policy_set: PolicySet) -> PolicyInfo:
    """What reports name a policy by, as its METADATA (or Gatekeeper constraint) says, and
    the digest of what was evaluated (its package's Rego, a constraint's spec)."""
    texts = sorted(m.text for m in policy_set.modules if m.package == policy.package)
    material = json.dumps([texts, dict(policy.constraint)], sort_keys=True, default=str)
    return PolicyInfo(
        id=policy.id,
        title=policy.title,
        description=policy.description,
        severity=policy.severity,
        warn_severity=policy.warn_severity,
        controls=policy.controls,
        source=policy.source,
        kind=policy.kind,
        digest="sha256:" + hashlib.sha256(material.encode()).hexdigest(),
    )


def evaluation_counts(outcome: StageOutcome) -> dict[str, int]:
    """`policy_pass`, `policy_fail`, ... for the run's counts."""
    return policy_counts(outcome.evaluations)


def remote_engine(settings: PolicySettings) -> PolicyEngine | None:
    """The OPA server engine when configured; None means the embedded default."""
    if settings.engine != "opa":
        return None
    from auditor.policy.opa_server import OpaServerEngine

    assert settings.opa_url is not None  # config validation requires it
    return OpaServerEngine(
        settings.opa_url,
        token_file=settings.opa_token_file,
        upload=settings.opa_upload,
        timeout=settings.opa_timeout_seconds,
    )


__all__ = ["build_inputs", "describe_engine", "evaluate_inputs", "evaluation_counts"]
