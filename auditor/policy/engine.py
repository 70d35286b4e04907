"""The contract between policies and the engines that evaluate them.

An engine only loads Rego modules and data once, then answers "what is the value of this
rule for this input": the embedded regorus engine and a running OPA server answer the same
question, so they can be swapped and compared (parity tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

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
    # The (group, kind)s it judges ("*" group: any), from METADATA `custom.matchers.kinds` or
    # the constraint's `match.kinds` (`applies.py`); None: every kind.
    kinds: frozenset[tuple[str, str]] | None = None


class PolicyLoadError(InputError):
    """A policy does not parse or compile: names the file and line (exit 2)."""


class PolicyEvalError(Exception):
    """A rule failed at run time for one input (a builtin error, a conflict): that policy's
    evaluation becomes `error` while the others still run."""

    def kept(self) -> PolicyEvalError:
        """This error as a value to keep in results: without its traceback and the regorus
        error it was raised from. Both hold the frames that keep it, a cycle that leaves the
        engine to the garbage collector, which may run in another thread than the one that
        made it (a regorus engine must be dropped by that thread)."""
        self.__traceback__ = None
        self.__context__ = self.__cause__ = None
        return self


class PolicyAborted(PolicyEvalError):
    """The call never came back: the process evaluating it died (a crash in the engine) or was
    stopped. Only the rules of that call are lost; the engine answers the next call."""


class PolicyTimeout(PolicyAborted):
    """The call overran its time budget (`policy.timeout_seconds`) and was stopped."""


class VmDisagreement(Exception):
    """regorus's VM (`vm.py`) and its interpreter gave different values for one input: every result of the
    VM in the run is suspect."""

    def __init__(self, rule: str, vm_value: Any, interpreter_value: Any) -> None:
        super().__init__(rule)
        self.rule = rule  # the first rule whose values differ
        self.vm_value = vm_value
        self.interpreter_value = interpreter_value
        self.ref: Any = None  # the object of the input, once the caller knows it


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


# The deepest document (policy input, data) policies are evaluated over, counting every mapping
# and list, the document itself included. regorus reads documents as JSON through serde_json,
# which refuses more than 127 levels ("recursion limit exceeded"); evaluating at that depth
# needs under 100 KiB of stack. 100 leaves room for what the engine wraps around a value
# (Gatekeeper's inventory puts each object 6 levels down in `data`), and no real Kubernetes
# object comes near it. The same bound for every engine, so they agree on every input.
MAX_DEPTH: Final = 100


_SCALARS = (str, int, float, type(None))  # bool is an int


def nesting_depth(value: Any, limit: int | None = None) -> int:
    """How deeply `value` nests mappings and lists (a scalar is 0, `{"a": 1}` is 1). With a
    `limit` the walk stops as soon as it is passed and returns `limit + 1`. Iterative: the
    documents it judges may nest deeper than Python's recursion limit."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    # A container seen before at this depth or deeper adds nothing: an audit input holds the
    # live body twice (`resource` and `live`), and walking it once halves the work.
    walked: dict[int, int] = {}
    while stack:
        item, depth = pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if walked.get(id(item), 0) >= depth:
            continue
        walked[id(item)] = depth
        if depth > deepest:
            deepest = depth
            if limit is not None and deepest > limit:
                return limit + 1
        for child in children:
            if not isinstance(child, _SCALARS):
                push((child, depth + 1))
    return deepest


# What JSON text decodes to: a document made of only these reads the same to regorus whether
# handed over as Python values or as its JSON text (the binding converts the former as
# serde_json parses the latter). Exact types: a subclass (an enum) goes through JSON.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_PLAIN = _JSON_SCALARS | {dict, list}
_STR = frozenset({str})


def plain_depth(value: Any, limit: int) -> int | None:
    """The nesting depth of a document made only of dicts with string keys, lists and JSON
    scalars (`limit + 1` once it passes `limit`); None when it holds anything else (a tuple, a
    set, bytes, a non-string key, a subclass such as an enum), which only its JSON text says
    faithfully. Recursive, never more than `limit + 1` levels deep."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return 0
    if kind is not dict and kind is not list:
        return None
    # a container met again (an audit input holds the live body as `resource` and `live`)
    # is not walked again: its height is known
    return _height(value, 1, limit, {})


def _height(container: Any, depth: int, limit: int, known: dict[int, int]) -> int | None:
    """Levels from `container` (at `depth`) down to its deepest leaf, counting itself; None
    when not plain; past `limit` it stops with a height that puts it there."""
    if depth > limit:
        return 1
    if type(container) is dict:
        if not _STR.issuperset(map(type, container)):
            return None
        children: Any = container.values()
    else:
        children = container
    kinds = set(map(type, children))
    if kinds <= _JSON_SCALARS:
        return 1
    if not kinds <= _PLAIN:
        return None
    highest = 0
    for child in children:
        if type(child) in _JSON_SCALARS:
            continue
        height = known.get(id(child))
        if height is None:
            height = _height(child, depth + 1, limit, known)
            if height is None:
                return None
            if depth + height <= limit:
                known[id(child)] = height
        if height > highest:
            highest = height
            if depth + highest > limit:
                break
    return highest + 1


def depth_over_limit(value: Any) -> int | None:
    """The nesting depth of `value` when it is over MAX_DEPTH (for the message), else None:
    one walk, which a document within the limit needs whole anyway."""
    depth = nesting_depth(value)
    return depth if depth > MAX_DEPTH else None


def depth_error(depth: int) -> str:
    return f"nests {depth} levels deep, over the policy engine's limit of {MAX_DEPTH}"
