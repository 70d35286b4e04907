"""OPA `# METADATA` annotations: read from the comment blocks of a Rego module.

OPA's rules, which we follow: a block starts with a line that is exactly `# METADATA` at
column 1 and runs over the comment lines right below it (all at column 1); the rest is YAML.
It annotates the next statement: a block before `package` has package scope, a block before a
rule has rule scope, unless the block says `scope:` (`package`, `subpackages`, `rule`,
`document`). We parse the blocks ourselves rather than through an engine so that the embedded
engine and an OPA server give a policy the same severity, title and controls.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from auditor.errors import InputError
from auditor.model import SEVERITIES, RuleName, Severity
from auditor.policy.applies import Kinds, kinds_from_entries, union
from auditor.policy.engine import PolicyLoadError
from auditor.safeyaml import load_documents

Scope = Literal["package", "subpackages", "rule", "document"]
SCOPES: tuple[Scope, ...] = ("package", "subpackages", "rule", "document")

_START = re.compile(r"^#\s*METADATA\s*$")
# Rules whose messages carry the policy's deny severity; `warn` has its own.
_DENY_RULES: tuple[RuleName, ...] = ("deny", "violation")


@dataclass(frozen=True, slots=True)
class Annotation:
    """One METADATA block, validated."""

    scope: Scope
    line: int  # the `# METADATA` line in its file
    source: str
    title: str = ""
    description: str = ""
    severity: Severity | None = None
    controls: tuple[str, ...] = ()
    custom: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    target: str = ""  # the rule name for rule/document scope; "" for package scopes


@dataclass(frozen=True, slots=True)
class _Block:
    start: int  # 1-based line of `# METADATA` within the text
    end: int  # last comment line of the block
    yaml_text: str


@dataclass(frozen=True, slots=True)
class PolicyMetadata:
    """What a Policy takes from its annotations."""

    title: str = ""
    description: str = ""
    severity: Severity = "high"
    warn_severity: Severity = "low"
    controls: tuple[str, ...] = ()
    kinds: Kinds = None  # custom.matchers.kinds of the package (or an enclosing one)


def _blocks(text: str) -> list[_Block]:
    lines = text.splitlines()
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        if not _START.match(lines[i]):
            i += 1
            continue
        start = i
        body: list[str] = []
        i += 1
        # Only comment lines at column 1 belong to the block: OPA ignores indented ones.
        while i < len(lines) and lines[i].startswith("#") and not _START.match(lines[i]):
            content = lines[i][1:]
            body.append(content[1:] if content.startswith(" ") else content)
            i += 1
        blocks.append(_Block(start=start + 1, end=i, yaml_text="\n".join(body)))
    return blocks


def _fail(message: str, source: str, line: int, key: str | None = None) -> PolicyLoadError:
    return PolicyLoadError(f"METADATA: {message}", file=source, line=line, key=key)


def _severity(value: Any, source: str, line: int) -> Severity:
    if isinstance(value, str) and value.strip().lower() in SEVERITIES:
        normalized: Severity = value.strip().lower()  # type: ignore[assignment]
        return normalized
    raise PolicyLoadError(
        f"METADATA: custom.severity {value!r} is not one of {', '.join(SEVERITIES)}",
        file=source,
        line=line,
        key="custom.severity",
    )


def _controls(value: Any, source: str, line: int) -> tuple[str, ...]:
    # A single control may be written as a plain string; anything else must be a list of them.
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail("custom.controls must be a list of control ids such as SLSA-L3", source, line)
    return tuple(dict.fromkeys(v.strip() for v in value))


def _check_matchers(custom: Mapping[str, Any], source: str, line: int) -> None:
    """`custom.matchers.kinds` as Konstraint and Gatekeeper write kinds: a list of
    `{apiGroups: [...], kinds: [...]}`; refused here when malformed rather than read as "every
    kind", which would hide the author's mistake."""
    matchers = custom.get("matchers")
    if matchers is None:
        return
    entries = matchers.get("kinds") if isinstance(matchers, dict) else None
    well_formed = isinstance(entries, list) and all(
        isinstance(e, dict)
        and set(e) <= {"apiGroups", "kinds"}
        and all(
            isinstance(e.get(k, []), list) and all(isinstance(v, str) for v in e.get(k, []))
            for k in ("apiGroups", "kinds")
        )
        for e in entries
    )
    if not isinstance(matchers, dict) or set(matchers) != {"kinds"} or not well_formed:
        raise _fail(
            "custom.matchers must be {kinds: [{apiGroups: [...], kinds: [...]}]}",
            source,
            line,
            "custom.matchers",
        )


def _annotation(data: Any, source: str, line: int) -> tuple[Annotation, bool]:
    """The validated annotation and whether its scope was given explicitly."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail("the block must be a YAML mapping", source, line)
    scope = data.get("scope")
    if scope is not None and scope not in SCOPES:
        raise _fail(f"scope {scope!r} is not one of {', '.join(SCOPES)}", source, line, "scope")
    for key in ("title", "description"):
        if key in data and not isinstance(data[key], str):
            raise _fail(f"{key} must be a string", source, line, key)
    custom = data.get("custom") or {}
    if not isinstance(custom, dict):
        raise _fail("custom must be a mapping", source, line, "custom")
    severity = _severity(custom["severity"], source, line) if "severity" in custom else None
    controls = _controls(custom["controls"], source, line) if "controls" in custom else ()
    _check_matchers(custom, source, line)
    annotation = Annotation(
        scope=scope or "rule",
        line=line,
        source=source,
        title=data.get("title", "").strip(),
        description=data.get("description", "").strip(),
        severity=severity,
        controls=controls,
        custom=custom,
    )
    return annotation, scope is not None


def parse_annotations(
    text: str,
    source: str,
    *,
    package_line: int,
    rule_lines: Sequence[tuple[str, int]],
    line_offset: int = 0,
) -> tuple[Annotation, ...]:
    """Every METADATA block of a module, attached to the statement it precedes.

    `package_line` and `rule_lines` ((name, line) of each rule) are 1-based lines in `text`,
    as a parser reports them; errors and `Annotation.line` are lines in `source`, shifted by
    `line_offset` (a template's Rego starts part-way through its YAML file).
    Raises PolicyLoadError naming the file and line for a block that is not valid YAML or
    whose severity, controls or scope are malformed.
    """
    statements = sorted([(package_line, ""), *((line, name) for name, line in rule_lines)])
    out: list[Annotation] = []
    for block in _blocks(text):
        line = block.start + line_offset
        try:
            docs = load_documents(block.yaml_text, source)
        except InputError as exc:
            # The YAML starts on the line after `# METADATA`.
            yaml_line = line + exc.line if exc.line is not None else line
            raise PolicyLoadError(f"METADATA: {exc.message}", file=source, line=yaml_line) from None
        if len(docs) > 1:
            raise _fail("expected one YAML document", source, line)
        annotation, explicit = _annotation(docs[0].data if docs else None, source, line)
        # The statement the block annotates: the first one after it (OPA lets a blank line
        # and other comments sit in between).
        target = next(((ln, name) for ln, name in statements if ln > block.end), None)
        if target is None:
            raise _fail("the block annotates nothing (no package or rule follows it)", source, line)
        _, name = target
        scope = annotation.scope
        if not explicit:
            scope = "package" if name == "" else "rule"
        if scope in ("rule", "document") and name == "":
            raise _fail(f"scope {scope} must precede a rule, not the package", source, line)
        if scope in ("rule", "document") and "matchers" in annotation.custom:
            # the policy is evaluated as a whole (all its rules in one call): kinds belong
            # to it, not to one of its rules
            raise _fail("custom.matchers belongs on the package, not a rule", source, line)
        target_name = name if scope in ("rule", "document") else ""
        out.append(dataclasses.replace(annotation, scope=scope, target=target_name))
    return tuple(out)


def policy_metadata(
    package: Iterable[Annotation], rules: Iterable[Annotation], inherited: Iterable[Annotation] = ()
) -> PolicyMetadata:
    """A policy's title, description, severity and controls.

    Precedence, most specific first: a rule- or document-scoped annotation on `deny` or
    `violation`, then the package's annotations, then `subpackages` annotations of enclosing
    packages (`inherited`), then the defaults (`high`). `warn` messages take their severity only
    from an annotation on `warn` (default `low`): a package severity describes its denials.
    Controls are the union over all of them, in order of appearance.
    """
    package = list(package)
    rules = list(rules)
    inherited = list(inherited)
    deny_rules = [a for a in rules if a.target in _DENY_RULES]
    warn_rules = [a for a in rules if a.target == "warn"]
    ordered = [*deny_rules, *package, *inherited]

    def first(attr: str, candidates: Sequence[Annotation]) -> Any:
        return next((getattr(a, attr) for a in candidates if getattr(a, attr)), None)

    controls = tuple(dict.fromkeys(c for a in [*package, *inherited, *rules] for c in a.controls))
    title_order = [*package, *deny_rules, *warn_rules, *inherited]
    # the package's own declarations, else its enclosing packages' (together: a union only
    # widens, never narrows what the author wrote)
    declared = [a for a in package if "matchers" in a.custom] or [
        a for a in inherited if "matchers" in a.custom
    ]
    return PolicyMetadata(
        title=first("title", title_order) or "",
        description=first("description", title_order) or "",
        severity=first("severity", ordered) or "high",
        warn_severity=first("severity", warn_rules) or "low",
        controls=controls,
        kinds=union(kinds_from_entries(a.custom["matchers"]["kinds"]) for a in declared)
        if declared
        else None,
    )


__all__ = ["Annotation", "PolicyMetadata", "parse_annotations", "policy_metadata"]
