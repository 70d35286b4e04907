"""Values of the policy stage: its inputs, its evaluations and the policies it ran.

Import them from `auditor.model`, which loads this module when one is first asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.model import EvaluationResult, ResourceRef, RuleName, Severity


@dataclass(frozen=True, slots=True)
class PolicyMessage:
    """One message of a deny, warn or violation rule."""

    rule: RuleName
    msg: str
    details: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One policy x one resource: kept for every pair, pass included."""

    policy: str
    ref: ResourceRef | None
    result: EvaluationResult
    messages: tuple[PolicyMessage, ...] = ()
    duration_ms: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """One input document (DESIGN "Policy input and output") and the resource it is about."""

    ref: ResourceRef | None
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """A policy as its METADATA describes it: what SARIF rules, JUnit and PolicyReport name.

    `id` is the check id its findings carry; the rest comes from the `# METADATA` block (or a
    Gatekeeper constraint) and is stored with the run, so a report of an old run names the
    policies as they were then.
    """

    id: str
    title: str = ""
    description: str = ""
    severity: Severity = "high"  # of deny/violation messages
    warn_severity: Severity = "low"
    controls: tuple[str, ...] = ()
    source: str = ""  # the file it was loaded from
    kind: str = "rego"  # rego | gatekeeper
    digest: str = ""  # `sha256:` of its Rego (and a Gatekeeper constraint's spec) as evaluated
