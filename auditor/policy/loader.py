"""Finding and reading policies: `.rego` files, their packages, rules, METADATA and data.

A policy is a package that defines `deny`, `warn` or `violation`; the other packages are
libraries it imports. `*_test.rego` files are left out unless tests are wanted
(`auditor policy test`). Other kinds of policy (Gatekeeper ConstraintTemplates and their
Constraints, in YAML under the same paths) come from a `PolicyKindHooks` plug-in, so this module
knows nothing of their semantics.

Rego v0 or v1, decided per module: a module that imports `rego.v1` is v1; otherwise it is
parsed as v1 and, when that fails, as v0 (v1 first because v0 mode accepts many v1 modules
with a different meaning, e.g. `if` read as a variable). When both fail, the error reported is
the one the parser found furthest into the file: that parse understood the most of it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.bounded import read_bounded
from auditor.errors import InputError
from auditor.model import EvaluationResult, RuleName
from auditor.policy.datarefs import may_read, module_ast
from auditor.policy.embedded import describe_error, load_error
from auditor.policy.engine import (
    Policy,
    PolicyKind,
    PolicyLoadError,
    RegoModule,
    depth_error,
    depth_over_limit,
)
from auditor.policy.metadata import Annotation, parse_annotations, policy_metadata
from auditor.safeyaml import DEFAULT_MAX_BYTES, load_documents

log = logging.getLogger(__name__)

POLICY_RULES: tuple[RuleName, ...] = ("deny", "warn", "violation")
MAX_POLICY_BYTES = 2 * 1024 * 1024
_IMPORTS_V1 = re.compile(r"^\s*import\s+rego\.v1\b", re.MULTILINE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv"}


@dataclass(frozen=True, slots=True)
class TestRule:
    """A `test_*` rule for `auditor policy test`."""

    __test__ = False  # not a pytest test class

    package: str
    name: str
    source: str
    line: int
    skip: bool = False  # `todo_test_*`: reported, not run (as `opa test` does)

    @property
    def path(self) -> str:
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class ParsedModule:
    """A module with what the loader read from its syntax tree."""

    module: RegoModule
    package_line: int
    rules: tuple[tuple[str, int], ...]  # (name, line in source) of every rule, in order
    annotations: tuple[Annotation, ...]

    @property
    def is_test(self) -> bool:
        return self.module.source.endswith("_test.rego")


@dataclass(frozen=True, slots=True)
class DiscoveredPolicies:
    """What a policy-kind plug-in found in the non-Rego files under the policy paths."""

    modules: tuple[RegoModule, ...] = ()
    policies: tuple[Policy, ...] = ()


# The input a plug-in's policy sees for one DESIGN input document, or None when the policy does
# not apply to that resource (a Gatekeeper constraint whose `match` excludes it). `data` is the
# data document the engine was loaded with (inventory included).
PrepareInput = Callable[[Policy, Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class PolicyKindHooks:
    """A kind of policy other than plain Rego packages, plugged into loading and evaluation.

    The Gatekeeper module provides them (`auditor.policy.gatekeeper.hooks(...)`); whoever
    loads policies passes the kinds it wants to `load_policy_files`.
    """

    kind: PolicyKind
    # YAML/JSON files under the policy paths -> the modules and policies they define; raises
    # PolicyLoadError for a malformed one, ignores files that are not its kind.
    discover: Callable[[Sequence[Path]], DiscoveredPolicies]
    prepare_input: PrepareInput
    # Objects (`--inventory` files, Git at audit time) -> the value of `data.inventory`.
    inventory: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]] | None = None
    # The result of an evaluation with violation messages (e.g. `warn` for a constraint whose
    # enforcementAction is warn or dryrun); default `fail`.
    violation_result: Callable[[Policy], EvaluationResult] | None = None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Everything one run evaluates, parsed once."""

    modules: tuple[RegoModule, ...]
    policies: tuple[Policy, ...]
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    tests: tuple[TestRule, ...] = ()
    hooks: tuple[PolicyKindHooks, ...] = ()

    def hooks_for(self, kind: str) -> PolicyKindHooks | None:
        return next((h for h in self.hooks if h.kind == kind), None)


# -- syntax tree ---------------------------------------------------------------------------


def _ref_parts(node: Any) -> list[str]:
    """`a.b["c-d"]` as ["a", "b", "c-d"] from regorus's AST of a reference."""
    if not isinstance(node, dict) or len(node) != 1:
        return []
    ((kind, body),) = node.items()
    if kind == "Var":
        return [str(body.get("value"))]
    if kind == "RefDot":
        field_ = body.get("field")
        name = field_[1] if isinstance(field_, list) and len(field_) == 2 else ""
        return [*_ref_parts(body.get("refr")), str(name)]
    if kind == "RefBrack":
        index = body.get("index") or {}
        value = index.get("String", {}).get("value") if isinstance(index, dict) else None
        return [*_ref_parts(body.get("refr")), str(value) if value is not None else "?"]
    return []


def format_path(parts: Sequence[str]) -> str:
    """Parts as Rego writes them: dotted where they are identifiers, bracketed otherwise."""
    out = ""
    for part in parts:
        if _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _rule_name_and_line(rule: Any) -> tuple[str, int] | None:
    if not isinstance(rule, dict) or len(rule) != 1:
        return None
    ((kind, body),) = rule.items()
    if kind == "Default":
        refr, span = body.get("refr"), body.get("span") or {}
    elif kind == "Spec":
        head = body.get("head") or {}
        if not isinstance(head, dict) or len(head) != 1:
            return None
        ((_, head_body),) = head.items()
        refr, span = head_body.get("refr"), body.get("span") or {}
    else:
        return None
    parts = _ref_parts(refr)
    if not parts:
        return None
    return parts[0], int(span.get("line", 0))


def _parse(source: str, text: str, v0: bool) -> dict[str, Any]:
    ast: dict[str, Any] = module_ast(source, text, v0)
    return ast


def _location(exc: BaseException) -> tuple[int, int]:
    error = describe_error(exc, {})
    return (error.line or 0, error.column or 0)


def parse_module(
    source: str, text: str, *, line_offset: int = 0, v0: bool | None = None
) -> ParsedModule:
    """Parses one Rego module: its syntax (v0 or v1, see the module docstring, unless `v0` is
    given), package, rules and METADATA. Raises PolicyLoadError naming the file and line."""
    keys = {source: RegoModule(source=source, package="", text=text, line_offset=line_offset)}
    if v0 is None and _IMPORTS_V1.search(text):
        v0 = False
    if v0 is not None:
        try:
            ast, is_v0 = _parse(source, text, v0), v0
        except RuntimeError as exc:
            raise load_error(exc, keys) from None
    else:
        try:
            ast, is_v0 = _parse(source, text, False), False
        except RuntimeError as v1_error:
            try:
                ast, is_v0 = _parse(source, text, True), True
            except RuntimeError as v0_error:
                furthest = max((v1_error, v0_error), key=_location)
                raise load_error(furthest, keys) from None
    package_node = ast.get("package") or {}
    package_parts = _ref_parts(package_node.get("refr"))
    if not package_parts:
        raise PolicyLoadError("Rego: module has no package", file=source, line=1 + line_offset)
    package = format_path(package_parts)
    package_line = int((package_node.get("span") or {}).get("line", 1))
    rules = tuple(
        r for r in (_rule_name_and_line(rule) for rule in ast.get("rules") or []) if r is not None
    )
    annotations = parse_annotations(
        text, source, package_line=package_line, rule_lines=rules, line_offset=line_offset
    )
    module = RegoModule(
        source=source, package=package, text=text, v0=is_v0, line_offset=line_offset
    )
    return ParsedModule(
        module=module,
        package_line=package_line + line_offset,
        rules=tuple((name, line + line_offset) for name, line in rules),
        annotations=annotations,
    )


# -- files ---------------------------------------------------------------------------------


def find_policy_files(paths: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """The `.rego` files and the other YAML/JSON files (for plug-ins) under `paths`, sorted.

    A path that is a file is taken whatever its name; directories are walked, skipping hidden
    and tool directories.
    """
    rego: list[Path] = []
    other: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.exists() and not path.is_dir() and not path.is_file():
            read_policy_file(path)  # a pipe or a device: refused by name, never skipped
        if path.is_file():
            (rego if path.suffix == ".rego" else other).append(path)
            continue
        if not path.is_dir():
            raise PolicyLoadError("no such file or directory", file=raw, key="--policy")
        for child in sorted(path.rglob("*")):
            if any(
                part in _SKIP_DIRS or part.startswith(".") for part in child.relative_to(path).parts
            ):
                continue
            if not child.is_file():
                continue
            if child.suffix == ".rego":
                rego.append(child)
            elif child.suffix in (".yaml", ".yml", ".json"):
                other.append(child)
    return list(dict.fromkeys(rego)), list(dict.fromkeys(other))


def read_policy_file(path: Path) -> bytes:
    """A policy file's bytes, bounded (`read_bounded`): a pipe or device is refused by name."""
    return read_bounded(path, max_bytes=MAX_POLICY_BYTES, what="policy file", error=PolicyLoadError)


def read_text(path: Path) -> str:
    source = str(path)
    content = read_policy_file(path)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyLoadError(f"not UTF-8 text (byte {exc.start})", file=source) from None


def merge_data(
    target: dict[str, Any], extra: Mapping[str, Any], source: str, at: str = "data"
) -> None:
    """Deep-merges `extra` into `target`; two files setting the same leaf is an error (as OPA
    does), not a silent last-one-wins."""
    for key, value in extra.items():
        where = f"{at}.{key}"
        if key in target:
            if isinstance(target[key], dict) and isinstance(value, Mapping):
                merge_data(target[key], value, source, where)
                continue
            if target[key] == value:
                continue
            raise InputError(f"{where} is already set by another data file", file=source)
        target[key] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_data_files(files: Sequence[str]) -> dict[str, Any]:
    """`--data` files (JSON or YAML mappings) merged at the root of `data`, as conftest does."""
    data: dict[str, Any] = {}
    for name in files:
        content = read_bounded(name, max_bytes=DEFAULT_MAX_BYTES, what="data file")
        for doc in load_documents(content, name):
            if doc.data is None:
                continue
            if not isinstance(doc.data, Mapping):
                raise InputError(
                    "a data file must hold a mapping (its keys go under data)",
                    file=name,
                    line=doc.line,
                )
            depth = depth_over_limit(doc.data)
            if depth is not None:
                raise InputError(depth_error(depth), file=name, line=doc.line)
            merge_data(data, doc.data, name)
    return data


# -- policies ------------------------------------------------------------------------------


def _policies(parsed: Sequence[ParsedModule]) -> list[Policy]:
    by_package: dict[str, list[ParsedModule]] = {}
    for p in parsed:
        by_package.setdefault(p.module.package, []).append(p)
    subpackage_annotations = {
        package: [a for p in modules for a in p.annotations if a.scope == "subpackages"]
        for package, modules in by_package.items()
    }
    policies: list[Policy] = []
    for package, modules in by_package.items():
        defined = {name for p in modules for name, _ in p.rules}
        rules = tuple(r for r in POLICY_RULES if r in defined)
        if not rules:
            continue
        own = [a for p in modules for a in p.annotations]
        package_scope = [a for a in own if a.scope in ("package", "subpackages")]
        rule_scope = [a for a in own if a.scope in ("rule", "document")]
        inherited = [
            a
            for other, annotations in subpackage_annotations.items()
            if other != package and package.startswith(other + ".")
            for a in annotations
        ]
        meta = policy_metadata(package_scope, rule_scope, inherited)
        source = next(p.module.source for p in modules if any(name in rules for name, _ in p.rules))
        policies.append(
            Policy(
                id=package,
                kind="rego",
                package=package,
                rules=rules,
                source=source,
                title=meta.title,
                description=meta.description,
                severity=meta.severity,
                warn_severity=meta.warn_severity,
                controls=meta.controls,
                kinds=meta.kinds,
            )
        )
    return policies


def _tests(parsed: Iterable[ParsedModule]) -> list[TestRule]:
    tests: dict[str, TestRule] = {}
    for p in parsed:
        for name, line in p.rules:
            skip = name.startswith("todo_test_")
            if not (name.startswith("test_") or skip):
                continue
            test = TestRule(
                package=p.module.package, name=name, source=p.module.source, line=line, skip=skip
            )
            # A test defined by several rules of one name is one test, as in `opa test`.
            tests.setdefault(test.path, test)
    return list(tests.values())


def load_policy_files(
    paths: Sequence[str],
    *,
    data_files: Sequence[str] = (),
    include_tests: bool = False,
    hooks: Sequence[PolicyKindHooks],
) -> PolicySet:
    """Reads every policy under `paths` once: Rego modules (v0 or v1), their METADATA, the
    policies of the plug-in kinds in `hooks` (Gatekeeper's, from `policy.gatekeeper.hooks`),
    and `data_files` merged under `data`. The caller names the kinds: the loader knows none.

    `*_test.rego` files, and their `test_*` rules, only with `include_tests`.
    Raises PolicyLoadError (exit 2) naming the file and line of the first broken policy, and
    when the paths hold no policy at all.
    """
    hooks = tuple(hooks)
    rego_files, other_files = find_policy_files(paths)
    parsed: list[ParsedModule] = []
    for path in rego_files:
        if path.name.endswith("_test.rego") and not include_tests:
            continue
        parsed.append(parse_module(str(path), read_text(path)))
    modules = [p.module for p in parsed]
    policies = _policies([p for p in parsed if not p.is_test])
    for hook in hooks:
        found = hook.discover(other_files)
        modules.extend(found.modules)
        policies.extend(found.policies)
    if not modules and not policies:
        raise PolicyLoadError(
            "no policies found (.rego files" + (" or Gatekeeper templates" if hooks else "") + ")",
            file=", ".join(paths),
        )
    seen: set[str] = set()
    for policy in policies:
        if policy.id in seen:
            raise PolicyLoadError(f"two policies are named {policy.id}", file=policy.source)
        seen.add(policy.id)
    return PolicySet(
        modules=tuple(modules),
        policies=tuple(policies),
        data=load_data_files(data_files),
        tests=tuple(_tests(parsed)) if include_tests else (),
        hooks=hooks,
    )


def _reads_inventory(policy_set: PolicySet) -> bool:
    if any(p.kind != "rego" for p in policy_set.policies):
        return True
    return may_read(policy_set.modules, "inventory")


def _within_depth(objects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The objects the engine can hold in `data`. One nested deeper is left out, with a
    warning: its own evaluations fail on the same depth, so the run is never clean for it."""
    kept = []
    for obj in objects:
        depth = depth_over_limit(obj)
        if depth is None:
            kept.append(obj)
            continue
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        log.warning(
            "%s %s left out of data.inventory: it %s", obj.get("kind"), name, depth_error(depth)
        )
    return kept


def with_inventory(policy_set: PolicySet, objects: Sequence[Mapping[str, Any]]) -> PolicySet:
    """The policy set with `data.inventory` built from `objects` by the plug-ins that want one
    (Gatekeeper); unchanged when none does, or when nothing loaded can read it: no policy of a
    plug-in's kind (their hooks read `data` in Python) and no module that may read
    `data.inventory` (`datarefs.may_read`)."""
    if not any(h.inventory is not None for h in policy_set.hooks) or not _reads_inventory(
        policy_set
    ):
        return policy_set
    data = dict(policy_set.data)
    objects = _within_depth(objects)
    for hook in policy_set.hooks:
        if hook.inventory is not None:
            inventory = hook.inventory(objects)
            if "inventory" in data:
                merged = dict(data["inventory"]) if isinstance(data["inventory"], Mapping) else {}
                merge_data(merged, inventory, "--inventory", "data.inventory")
                inventory = merged
            data["inventory"] = inventory
    return dataclasses.replace(policy_set, data=data)


__all__ = [
    "POLICY_RULES",
    "DiscoveredPolicies",
    "ParsedModule",
    "PolicyKindHooks",
    "PolicySet",
    "PrepareInput",
    "TestRule",
    "find_policy_files",
    "load_data_files",
    "load_policy_files",
    "parse_module",
    "with_inventory",
]
