"""The contract between policies and the engines that evaluate them.

An engine only loads Rego modules and data once, then answers "what is the value of this
rule for this input": the embedded regorus engine and a running OPA server answer the same
question, so they can be swapped and compared (parity tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from auditor.errors import InputError
from auditor.model import RuleName, Severity

PolicyKind = Literal["rego", "gatekeeper"]


@dataclass(frozen=True, slots=True)
class RegoModule:
    """One Rego source: a `.rego` file, or a ConstraintTemplate's rego/libs."""

    source: str  # file path (repo-relative where possible), for error messages
    package: str  # `auditor.model.signed`, `k8srequiredlabels`
    text: str
    v0: bool = False  # Rego v0 syntax (Gatekeeper templates, older libraries)
    line_offset: int = 0  # where the text starts in `source` (a template's YAML block)


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy as a report names it: one Rego package, or one Gatekeeper Constraint."""

    id: str  # `auditor.model.signed`; `K8sRequiredLabels/must-have-team` for Gatekeeper
    kind: PolicyKind
    package: str  # the package whose deny/warn/violation rules are evaluated
    rules: tuple[RuleName, ...]  # the rules the package defines
    source: str
    title: str = ""
    description: str = ""
    severity: Severity = "high"  # deny/violation severity; warn is `low` unless METADATA says
    warn_severity: Severity = "low"
    controls: tuple[str, ...] = ()
    # Gatekeeper: the constraint's spec (parameters, match, enforcementAction)
    constraint: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


class PolicyLoadError(InputError):
    """A policy does not parse or compile: names the file and line (exit 2)."""


class PolicyEvalError(Exception):
    """A rule failed at run time for one input (a builtin error, a conflict): that policy's
    evaluation becomes `error` while the others still run."""


class PolicyEngine(Protocol):
    """Evaluates loaded Rego. Implementations: embedded (regorus), opa (a running server)."""

    name: str

    def load(self, modules: Sequence[RegoModule], data: Mapping[str, Any]) -> None:
        """Parses and compiles every module once and sets `data`; raises PolicyLoadError."""
        ...

    def evaluate(self, rule: str, input_doc: Mapping[str, Any]) -> Any:
        """The JSON value of `rule` (e.g. `data.auditor.model.signed.deny`) for `input_doc`;
        None when the rule is undefined; raises PolicyEvalError for a run-time error."""
        ...

    def evaluate_many(self, rules: Sequence[str], input_doc: Mapping[str, Any]) -> list[Any]:
        """Several rules over one input (one round trip for a server engine); an entry is a
        PolicyEvalError instance where that rule failed."""
        ...
