"""Gatekeeper ConstraintTemplates and Constraints as auditor policies.

Teams that run Gatekeeper bring their library unchanged: the ConstraintTemplates and
Constraints under a policy path load as Rego modules plus one `Policy` per Constraint, and
evaluate with Gatekeeper's own input (`input.review`, `input.parameters`), match rules and
`data.inventory`.

What evaluating a Gatekeeper policy takes, per run and per resource:

    modules, policies = load_gatekeeper(paths)            # once per run
    data = {"inventory": build_inventory(resources)}      # once per run, into the engine
    namespaces = namespaces_from(resources)
    for each Gatekeeper policy and resource:
        if matches(policy, resource, namespaces):         # may raise MatchError (an error result)
            engine.evaluate(f"data.{policy.package}.violation", gatekeeper_input(policy, resource))

Each template's Rego is moved into its own package (`gatekeeper.templates.<Kind>`, its libs
under `gatekeeper.libs.<Kind>.lib...`) because Gatekeeper compiles every template in
isolation: libraries commonly ship two templates whose libs share `package lib.helpers` with
different bodies, and two templates may even share a package name. Merged into one engine
those would collide; isolated they behave as in the cluster. Line numbers are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from auditor.errors import InputError
from auditor.located import Lines
from auditor.model import EvaluationResult, Severity, api_group
from auditor.policy.applies import Kinds, kinds_from_entries
from auditor.policy.engine import Policy, PolicyEvalError, PolicyLoadError, RegoModule
from auditor.policy.gatekeeper_inventory import (
    ObjectLike,
    build_inventory,
    namespaces_from,
    namespaces_in_inventory,
    object_body,
)
from auditor.policy.gatekeeper_match import MatchError, match_any, selector_matches
from auditor.policy.loader import (
    DiscoveredPolicies,
    PolicyKindHooks,
    parse_module,
    read_policy_file,
)
from auditor.safeyaml import load_documents

__all__ = [
    "AUDIT",
    "GATOR",
    "HOOKS",
    "VALIDATION",
    "GatekeeperPolicies",
    "MatchError",
    "build_inventory",
    "enforcement_action",
    "gatekeeper_input",
    "hooks",
    "is_gatekeeper",
    "load_gatekeeper",
    "matches",
    "namespaces_from",
    "namespaces_in_inventory",
    "prepare_input",
    "unsupported_reason",
    "violation_result",
]

TEMPLATE_GROUP = "templates.gatekeeper.sh"
TEMPLATE_VERSIONS = ("v1", "v1beta1", "v1alpha1")
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
TARGET = "admission.k8s.gatekeeper.sh"

# Gatekeeper's enforcement points: which one auditor is standing in for decides the action of
# a constraint with `enforcementAction: scoped`.
AUDIT = "audit.gatekeeper.sh"  # `auditor audit`
VALIDATION = "validation.gatekeeper.sh"  # `auditor admission serve`
GATOR = "gator.gatekeeper.sh"  # `auditor policy eval`, like `gator test`

# deny blocks admission in Gatekeeper: a real violation, high like any deny rule. warn admits
# with a warning: medium, below the default --fail-on so it reports without failing a run.
# dryrun only records: info.
ACTION_SEVERITY: dict[str, Severity] = {"deny": "high", "warn": "medium", "dryrun": "info"}
_ACTION_RANK = {"dryrun": 0, "warn": 1, "deny": 2}

_YAML_SUFFIXES = (".yaml", ".yml", ".json")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PACKAGE = re.compile(r"^([ \t]*package[ \t]+)([A-Za-z_][\w.]*)", re.MULTILINE)
_REGO_V1 = re.compile(r"^[ \t]*import[ \t]+rego\.v1\b", re.MULTILINE)

# Gatekeeper evaluates templates with OPA, which still accepts its deprecated built-ins in v0
# Rego; regorus does not know them, and gatekeeper-library templates still call some
# (`re_match` in "unique ingress host"). Each call is pointed at its current equivalent, or at
# a tiny shim in COMPAT_PACKAGE, in place, so line numbers stay true.
COMPAT_PACKAGE = "gatekeeper.compat"
_DEPRECATED = {
    "re_match": "regex.match",
    "net.cidr_overlap": "net.cidr_contains",
    "all": f"data.{COMPAT_PACKAGE}.all_",
    "any": f"data.{COMPAT_PACKAGE}.any_",
    "set_diff": f"data.{COMPAT_PACKAGE}.set_diff",
    "cast_array": f"data.{COMPAT_PACKAGE}.cast_array",
    "cast_set": f"data.{COMPAT_PACKAGE}.cast_set",
}
_DEPRECATED_CALL = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(name) for name in _DEPRECATED) + r")(?=\s*\()"
)
_COMPAT_REGO = f"""package {COMPAT_PACKAGE}

all_(xs) = r {{ r := count([x | x := xs[_]; x != true]) == 0 }}

any_(xs) = r {{ r := count([x | x := xs[_]; x == true]) > 0 }}

set_diff(a, b) = r {{ r := a - b }}

cast_array(x) = r {{ r := [v | v := x[_]] }}

cast_set(x) = r {{ r := {{v | v := x[_]}} }}
"""
COMPAT_MODULE = RegoModule(
    source="<auditor gatekeeper compat>", package=COMPAT_PACKAGE, text=_COMPAT_REGO, v0=True
)


class GatekeeperPolicies(NamedTuple):
    """What a policy path's Gatekeeper YAML loads to: `modules, policies = load_gatekeeper(...)`."""

    modules: tuple[RegoModule, ...]
    policies: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    kind: str
    name: str
    source: str
    line: int
    package: str  # the isolated package its violation rule lives in
    modules: tuple[RegoModule, ...]
    title: str
    description: str
    unsupported: str | None  # why auditor cannot evaluate it (a CEL-only template)


# --- finding the YAML ---------------------------------------------------------------------


def _yaml_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    for root in paths:
        root = Path(root)
        if root.is_file():
            if root.suffix in _YAML_SUFFIXES:
                yield root
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root).parts
            if any(part.startswith(".") for part in relative):
                continue  # .git, editor droppings
            if path.suffix in _YAML_SUFFIXES and path.is_file():
                yield path


def _scalar_at(lines: Lines, path: tuple[Any, ...]) -> tuple[int, str | None] | None:
    """(0-based line, style) of the scalar at `path` of a template, from the file's one parse."""
    node = lines.exact(path)
    if not isinstance(node, yaml.ScalarNode):
        return None
    return node.start_mark.line, node.style


# --- templates ----------------------------------------------------------------------------


def _group_version(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return "", ""
    return api_group(api_version), api_version.rpartition("/")[2]


def _get(obj: Any, *path: Any) -> Any:
    for key in path:
        if isinstance(obj, Mapping):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and 0 <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def _isolate(text: str, *, own_package: str | None, new_package: str, lib_root: str) -> str:
    """Moves a module into `new_package` and points its `data.lib` references at `lib_root`
    (and references to its own old package at the new one). Text only, so lines keep their
    numbers for error messages."""
    text = _PACKAGE.sub(lambda m: m.group(1) + new_package, text, count=1)
    text = _DEPRECATED_CALL.sub(lambda m: _DEPRECATED[m.group(1)], text)
    text = re.sub(r"(?<![\w.])data\.lib(?![\w])", f"data.{lib_root}", text)
    if own_package and own_package != "lib" and not own_package.startswith("lib."):
        text = re.sub(
            rf"(?<![\w.])data\.{re.escape(own_package)}(?![\w])", f"data.{new_package}", text
        )
    return text


def _module_line(lines: Lines, path: tuple[Any, ...]) -> int:
    """0-based line where a rego block's text starts: a `|` block's text begins on the line
    after its indicator; a quoted or plain scalar on its own line."""
    line, style = _scalar_at(lines, path) or (0, None)
    return line + 1 if style in ("|", ">") else line


def _checked_module(
    source: str, package: str, text: str, *, v0: bool, line_offset: int
) -> tuple[RegoModule, tuple[str, ...]]:
    """The module after a syntax check (a PolicyLoadError naming the YAML file and the line
    inside it), with the names of the rules it defines."""
    parsed = parse_module(source, text, line_offset=line_offset, v0=v0)
    module = RegoModule(source=source, package=package, text=text, v0=v0, line_offset=line_offset)
    return module, tuple(name for name, _ in parsed.rules)


def _template_modules(
    kind: str,
    source: str,
    rego: str,
    libs: Sequence[Any],
    lines: Lines,
    base: tuple[Any, ...],
    force_v1: bool,
) -> tuple[str, tuple[RegoModule, ...]]:
    package = f"gatekeeper.templates.{kind}"
    lib_root = f"gatekeeper.libs.{kind}.lib"
    rego_line = _module_line(lines, (*base, "rego"))
    found = _PACKAGE.search(rego)
    if found is None:
        raise PolicyLoadError(
            f"ConstraintTemplate {kind}: its rego has no package declaration",
            file=source,
            line=rego_line + 1,
        )
    module, rules = _checked_module(
        source,
        package,
        _isolate(rego, own_package=found.group(2), new_package=package, lib_root=lib_root),
        v0=not force_v1 and not _REGO_V1.search(rego),
        line_offset=rego_line,
    )
    if "violation" not in rules:
        raise PolicyLoadError(
            f"ConstraintTemplate {kind}: its rego defines no `violation` rule, which is what "
            "Gatekeeper evaluates",
            file=source,
            line=rego_line + 1,
        )
    modules = [module]
    for index, lib in enumerate(libs):
        lib_line = _module_line(lines, (*base, "libs", index))
        if not isinstance(lib, str):
            raise PolicyLoadError(
                f"ConstraintTemplate {kind}: libs[{index}] is not Rego text",
                file=source,
                line=lib_line + 1,
            )
        lib_package = _PACKAGE.search(lib)
        # Gatekeeper only accepts libraries under `lib`, the one data path templates may import.
        if lib_package is None or not (
            lib_package.group(2) == "lib" or lib_package.group(2).startswith("lib.")
        ):
            raise PolicyLoadError(
                f"ConstraintTemplate {kind}: libs[{index}] must declare a package under `lib` "
                "(Gatekeeper's rule for template libraries)",
                file=source,
                line=lib_line + 1,
            )
        new_package = f"gatekeeper.libs.{kind}." + lib_package.group(2)
        lib_module, _ = _checked_module(
            source,
            new_package,
            _isolate(lib, own_package=None, new_package=new_package, lib_root=lib_root),
            v0=not force_v1 and not _REGO_V1.search(lib),
            line_offset=lib_line,
        )
        modules.append(lib_module)
    return package, tuple(modules)


def _parse_template(
    doc: Mapping[str, Any],
    source: str,
    line: int,
    lines: Lines,
) -> _Template:
    def fail(message: str, *path: Any) -> PolicyLoadError:
        at = _scalar_at(lines, path)
        return PolicyLoadError(
            f"ConstraintTemplate {name or '?'}: {message}",
            file=source,
            line=at[0] + 1 if at else line,
        )

    name = _get(doc, "metadata", "name")
    kind = _get(doc, "spec", "crd", "spec", "names", "kind")
    if not isinstance(kind, str) or not _IDENTIFIER.fullmatch(kind):
        raise fail("spec.crd.spec.names.kind must name the constraint kind (letters, digits)")
    targets = _get(doc, "spec", "targets")
    if not isinstance(targets, list) or not targets or not isinstance(targets[0], Mapping):
        raise fail("spec.targets must hold one target", "spec", "targets")
    if len(targets) > 1:
        raise fail("Gatekeeper supports exactly one target per template", "spec", "targets")
    target = targets[0]
    annotations = _get(doc, "metadata", "annotations") or {}
    title = str(annotations.get("metadata.gatekeeper.sh/title") or kind)
    description = str(annotations.get("description") or "").strip()

    def unsupported(reason: str) -> _Template:
        return _Template(kind, str(name or kind), source, line, "", (), title, reason, reason)

    if target.get("target") not in (None, TARGET):
        return unsupported(
            f"ConstraintTemplate {kind} targets {target.get('target')!r}; auditor evaluates "
            f"only Gatekeeper's admission target {TARGET!r}"
        )
    code = target.get("code") or []
    if not isinstance(code, list):
        raise fail("spec.targets[0].code must be a list", "spec", "targets", 0, "code")
    engines = [str(_get(entry, "engine")) for entry in code]
    rego_at = engines.index("Rego") if "Rego" in engines else None
    if rego_at is not None:
        base: tuple[Any, ...] = ("spec", "targets", 0, "code", rego_at, "source")
        body = _get(code[rego_at], "source") or {}
        if target.get("rego"):
            raise fail(
                "set either spec.targets[0].rego or a code entry with engine Rego, not both",
                "spec",
                "targets",
                0,
                "rego",
            )
    else:
        base = ("spec", "targets", 0)
        body = target
    rego = _get(body, "rego")
    if not rego:
        if engines:
            # Gatekeeper evaluates these with Kubernetes CEL; auditor has no CEL engine, and a
            # template it cannot evaluate must say so rather than pass everything.
            return unsupported(
                f"ConstraintTemplate {kind} has only {', '.join(engines)} code (CEL); auditor "
                "evaluates Rego templates only"
            )
        raise fail("spec.targets[0] has no rego", *base)
    if not isinstance(rego, str):
        raise fail("rego must be Rego text", *base, "rego")
    libs = _get(body, "libs") or []
    if not isinstance(libs, list):
        raise fail("libs must be a list of Rego texts", *base, "libs")
    force_v1 = str(_get(body, "version") or "") == "v1"
    package, modules = _template_modules(kind, source, rego, libs, lines, base, force_v1)
    return _Template(
        kind, str(name or kind), source, line, package, modules, title, description, None
    )


# --- constraints --------------------------------------------------------------------------


def enforcement_action(spec: Mapping[str, Any], point: str = AUDIT) -> str | None:
    """The action (`deny`, `warn`, `dryrun`) a constraint's spec takes at an enforcement point;
    None when a `scoped` constraint is not enforced there. Several scoped actions for one
    point: the strictest wins, as Gatekeeper reports the constraint under each."""
    action = spec.get("enforcementAction") or "deny"
    if action != "scoped":
        return str(action)
    chosen: str | None = None
    for entry in spec.get("scopedEnforcementActions") or []:
        points = [_get(p, "name") for p in _get(entry, "enforcementPoints") or []]
        candidate = _get(entry, "action")
        applies = ("*" in points or point in points) and candidate in _ACTION_RANK
        if applies and (chosen is None or _ACTION_RANK[candidate] > _ACTION_RANK[chosen]):
            chosen = candidate
    return chosen


def _validate_constraint(
    doc: Mapping[str, Any], kind: str, name: str, source: str, line: int, point: str
) -> str | None:
    spec = doc.get("spec") or {}
    where = f"{kind} {name}"
    if not isinstance(spec, Mapping):
        raise PolicyLoadError(f"{where}: spec must be a mapping", file=source, line=line)
    action = spec.get("enforcementAction") or "deny"
    if action not in (*_ACTION_RANK, "scoped"):
        raise PolicyLoadError(
            f"{where}: enforcementAction {action!r} is not deny, warn, dryrun or scoped",
            file=source,
            line=line,
            key="spec.enforcementAction",
        )
    if action == "scoped":
        for entry in spec.get("scopedEnforcementActions") or []:
            if _get(entry, "action") not in _ACTION_RANK:
                raise PolicyLoadError(
                    f"{where}: scopedEnforcementActions action {_get(entry, 'action')!r} is not "
                    "deny, warn or dryrun",
                    file=source,
                    line=line,
                    key="spec.scopedEnforcementActions",
                )
    parameters = spec.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise PolicyLoadError(f"{where}: spec.parameters must be a mapping", file=source, line=line)
    match = spec.get("match")
    if match is not None:
        if not isinstance(match, Mapping):
            raise PolicyLoadError(f"{where}: spec.match must be a mapping", file=source, line=line)
        # A malformed selector is refused when the constraint is created in Gatekeeper; refuse
        # it at load here, rather than as an error on every resource.
        for key in ("labelSelector", "namespaceSelector"):
            if match.get(key) is not None:
                try:
                    if not isinstance(match[key], Mapping):
                        raise MatchError(f"match.{key} must be a label selector")
                    selector_matches(match[key], {})
                except MatchError as exc:
                    raise PolicyLoadError(
                        f"{where}: {exc}", file=source, line=line, key=f"spec.match.{key}"
                    ) from None
    return enforcement_action(spec, point)


def _policy(
    template: _Template, name: str, spec: Mapping[str, Any], source: str, action: str
) -> Policy:
    severity = ACTION_SEVERITY[action]
    return Policy(
        id=f"{template.kind}/{name}",
        kind="gatekeeper",
        package=template.package,
        # A CEL-only template keeps its `violation` rule name but no package: evaluating it
        # then goes through prepare_input, which reports why it cannot be evaluated (an
        # `error` evaluation), never an empty rule list that would read as a pass.
        rules=("violation",),
        source=source,
        title=template.title,
        description=template.description,
        severity=severity,
        warn_severity=severity,
        constraint=spec,
        kinds=_match_kinds(spec),
    )


def _match_kinds(spec: Mapping[str, Any]) -> Kinds:
    """The kinds `spec.match.kinds` names (None: every kind, also when malformed: the match
    then reports it on each evaluation, as before)."""
    match = spec.get("match")
    return kinds_from_entries(match.get("kinds")) if isinstance(match, Mapping) else None


# --- loading ------------------------------------------------------------------------------


def _documents(path: Path) -> Iterator[tuple[Mapping[str, Any], int, str, Lines]]:
    """Each Gatekeeper object in a YAML file: (object, line, source, where its values are)."""
    source = str(path)
    raw = read_policy_file(path)
    if b"gatekeeper.sh" not in raw:  # cheap skip: most YAML on a policy path is not Gatekeeper
        return
    try:
        docs = load_documents(raw, source, keep_nodes=True)
    except InputError as exc:
        raise PolicyLoadError(exc.message, file=exc.file, line=exc.line) from None
    for doc in docs:
        lines = Lines(doc.node)
        items = doc.data.get("items") if isinstance(doc.data, Mapping) else None
        if isinstance(items, list):  # a List, as `kubectl get -o yaml` writes
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    yield item, doc.line, source, Lines(lines.exact(("items", index)))
        elif isinstance(doc.data, Mapping):
            yield doc.data, doc.line, source, lines


def is_gatekeeper(policy: Policy) -> bool:
    return policy.kind == "gatekeeper"


def load_gatekeeper(
    paths: Iterable[str | Path], *, enforcement_point: str = AUDIT
) -> GatekeeperPolicies:
    """Every ConstraintTemplate (v1, v1beta1, v1alpha1) and Constraint in the YAML under
    `paths`: the templates' Rego modules, and one Policy per Constraint whose action applies at
    `enforcement_point`. A template without constraints loads but evaluates nothing. Raises
    PolicyLoadError naming the file and line for anything Gatekeeper would refuse."""
    templates: dict[str, _Template] = {}
    constraints: list[tuple[Mapping[str, Any], int, str]] = []
    for path in _yaml_files(paths):
        for obj, line, source, lines in _documents(path):
            group, version = _group_version(obj)
            if group == TEMPLATE_GROUP and obj.get("kind") == "ConstraintTemplate":
                if version not in TEMPLATE_VERSIONS:
                    raise PolicyLoadError(
                        f"ConstraintTemplate apiVersion {obj.get('apiVersion')} is not one of "
                        f"{', '.join(TEMPLATE_GROUP + '/' + v for v in TEMPLATE_VERSIONS)}",
                        file=source,
                        line=line,
                    )
                template = _parse_template(obj, source, line, lines)
                if template.kind in templates:
                    other = templates[template.kind]
                    raise PolicyLoadError(
                        f"ConstraintTemplate for kind {template.kind} is defined twice "
                        f"(also at {other.source}:{other.line})",
                        file=source,
                        line=line,
                    )
                templates[template.kind] = template
            elif group == CONSTRAINT_GROUP:
                constraints.append((obj, line, source))

    modules = [module for t in templates.values() for module in t.modules]
    if any(f"data.{COMPAT_PACKAGE}." in module.text for module in modules):
        modules.append(COMPAT_MODULE)
    policies: list[Policy] = []
    seen: dict[str, str] = {}
    for obj, line, source in constraints:
        kind = str(obj.get("kind") or "")
        name = _get(obj, "metadata", "name")
        if not isinstance(name, str) or not name:
            raise PolicyLoadError(f"{kind} constraint has no metadata.name", file=source, line=line)
        found = templates.get(kind)
        if found is None:
            raise PolicyLoadError(
                f"{kind} {name}: no ConstraintTemplate defines kind {kind} under the policy paths",
                file=source,
                line=line,
                hint="put the template next to its constraints, or add its folder with --policy",
            )
        policy_id = f"{kind}/{name}"
        if policy_id in seen:
            raise PolicyLoadError(
                f"{kind} {name} is defined twice (also at {seen[policy_id]})",
                file=source,
                line=line,
            )
        seen[policy_id] = f"{source}:{line}"
        action = _validate_constraint(obj, kind, name, source, line, enforcement_point)
        if action is None:
            continue  # scoped to other enforcement points: Gatekeeper would not report it here
        policies.append(_policy(found, name, dict(obj.get("spec") or {}), source, action))
    return GatekeeperPolicies(tuple(modules), tuple(policies))


# --- evaluating ---------------------------------------------------------------------------


def unsupported_reason(policy: Policy) -> str | None:
    """Why a Gatekeeper policy cannot be evaluated (its template is CEL-only), else None: the
    caller records an `error` evaluation with this text instead of a silent pass."""
    if is_gatekeeper(policy) and not policy.package:
        return policy.description
    return None


def _namespace_of(obj: Mapping[str, Any]) -> str:
    namespace = _get(obj, "metadata", "namespace")
    return namespace if isinstance(namespace, str) else ""


def matches(
    policy: Policy,
    obj: ObjectLike,
    namespaces: Mapping[str, Mapping[str, Any]],
    *,
    old_object: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the constraint's `spec.match` selects `obj` (or, at admission, its old object).
    `namespaces` maps names to Namespace objects, which `namespaceSelector` needs; raises
    MatchError (a PolicyEvalError) where Gatekeeper reports a matching error."""
    body = object_body(obj)
    namespace = namespaces.get(_namespace_of(body) or _namespace_of(old_object or {}))
    try:
        return match_any(policy.constraint.get("match"), [body, old_object], namespace)
    except MatchError as exc:
        raise MatchError(f"{policy.id}: {exc}") from None


def gatekeeper_input(
    policy: Policy,
    obj: ObjectLike | None,
    *,
    operation: str = "",
    old_object: Mapping[str, Any] | None = None,
    user_info: Mapping[str, Any] | None = None,
    uid: str = "",
    dry_run: bool | None = None,
) -> dict[str, Any]:
    """`{"review": ..., "parameters": ...}` exactly as Gatekeeper hands a template.

    The review is the AdmissionRequest Gatekeeper builds: at audit time (and in `gator`) it has
    no operation, userInfo or oldObject, so the defaults mirror that; admission passes the
    request's own. Raises PolicyEvalError for a template auditor cannot evaluate."""
    reason = unsupported_reason(policy)
    if reason:
        raise PolicyEvalError(reason)
    body = object_body(obj) if obj is not None else None
    subject = body if body is not None else dict(old_object or {})
    group, version = _group_version(subject)
    review: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": str(subject.get("kind") or "")},
        "resource": {"group": "", "version": "", "resource": ""},
    }
    # name and namespace are omitempty in AdmissionRequest: absent, not "", when unset.
    name = _get(subject, "metadata", "name")
    if name:
        review["name"] = name
    if _namespace_of(subject):
        review["namespace"] = _namespace_of(subject)
    review.update(
        {
            "operation": operation,
            "userInfo": dict(user_info or {}),
            "object": body,
            "oldObject": dict(old_object) if old_object is not None else None,
            "options": None,
        }
    )
    if dry_run is not None:
        review["dryRun"] = dry_run
    parameters = policy.constraint.get("parameters")
    return {"review": review, "parameters": dict(parameters) if parameters else {}}


# --- the loader's plug-in -----------------------------------------------------------------


def _subject(input_doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    resource = input_doc.get("resource")
    return resource if isinstance(resource, Mapping) else None


def prepare_input(
    policy: Policy, input_doc: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The loader's `prepare_input`: Gatekeeper's input for the resource of a DESIGN input
    document, or None when the constraint's match leaves it out. Namespace objects for
    `namespaceSelector` come from `data.inventory` (the resources in scope)."""
    reason = unsupported_reason(policy)
    if reason:
        raise PolicyEvalError(reason)
    subject = _subject(input_doc)
    if subject is None:
        return None
    inventory = data.get("inventory")
    namespaces = namespaces_in_inventory(inventory) if isinstance(inventory, Mapping) else {}
    request = input_doc.get("request")
    if not isinstance(request, Mapping):  # audit: Gatekeeper's audit review has no request
        request = {}
    old_object = request.get("oldObject")
    old_object = old_object if isinstance(old_object, Mapping) else None
    if not matches(policy, subject, namespaces, old_object=old_object):
        return None
    return gatekeeper_input(
        policy,
        subject if request.get("object") is not None or not request else None,
        operation=str(request.get("operation") or ""),
        old_object=old_object,
        user_info=request.get("userInfo") if isinstance(request.get("userInfo"), Mapping) else None,
        uid=str(request.get("uid") or ""),
        dry_run=request.get("dryRun") if isinstance(request.get("dryRun"), bool) else None,
    )


def violation_result(policy: Policy, enforcement_point: str = AUDIT) -> EvaluationResult:
    """deny constraints fail; warn and dryrun ones only warn, as Gatekeeper admits them."""
    action = enforcement_action(policy.constraint, enforcement_point) or "deny"
    return "fail" if action == "deny" else "warn"


def hooks(enforcement_point: str = AUDIT) -> PolicyKindHooks:
    """The loader plug-in for one enforcement point (which `scoped` actions apply)."""
    return PolicyKindHooks(
        kind="gatekeeper",
        discover=lambda files: DiscoveredPolicies(
            *load_gatekeeper(files, enforcement_point=enforcement_point)
        ),
        prepare_input=prepare_input,
        inventory=build_inventory,
        violation_result=lambda policy: violation_result(policy, enforcement_point),
    )


HOOKS = hooks(AUDIT)
