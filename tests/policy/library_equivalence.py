"""The shipped policies with the shipped lib/serving.rego against the same policies with the
reference library (`tests/policy/reference/`): every evaluation (result, messages and their
details) and every rule of the library, input by input.

Used by `test_library_equivalence.py` on a generated corpus and by
`bench/policy/equivalence.py` on the benchmark's 10,000 audit inputs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.evaluate import evaluate_policies
from auditor.policy.loader import PolicySet, load_policy_files

PROJECT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT / "policies"
REFERENCE = Path(__file__).resolve().parent / "reference"
LIBRARY = "data.auditor.lib.serving"

# A rule (not a function) defined at the start of a line: `name :=`, `name contains`,
# `name if`, `name[key] :=`.
_RULE = re.compile(r"^([a-z_][a-z0-9_]*)\s*(?::=|=|contains\b|if\b|\[)", re.MULTILINE)


def library_rules() -> list[str]:
    """Every rule the reference library defines (functions excluded), sorted."""
    text = (REFERENCE / "lib" / "serving.rego").read_text()
    names = set(_RULE.findall(text)) - {"package", "import", "default", "else"}
    return sorted(names)


def reference_tree(directory: Path) -> Path:
    """The shipped policy folder, copied, with the reference files in place of theirs."""
    tree = directory / "policies"
    shutil.copytree(SHIPPED, tree)
    for source in REFERENCE.rglob("*.rego"):
        shutil.copyfile(source, tree / source.relative_to(REFERENCE))
    return tree


def policy_set(folder: Path, data: Mapping[str, Any]) -> PolicySet:
    """The policies of `folder` with `data`, each applying to every kind (so each is also
    compared on kinds its METADATA would spare it)."""
    loaded = load_policy_files([str(folder)], hooks=())
    return dataclasses.replace(
        loaded,
        policies=tuple(dataclasses.replace(p, kinds=None) for p in loaded.policies),
        data={**loaded.data, **data},
    )


def _evaluations(folder: Path, data: Mapping[str, Any], docs: Sequence[Any]) -> list[Any]:
    """Per input: [(policy, result, error, [(rule, msg, details)])], and the library's rules."""
    policies = policy_set(folder, data)
    engine = EmbeddedEngine()
    engine.load(policies.modules, policies.data)
    outcome = evaluate_policies(policies, [(None, d) for d in docs], engine=engine)
    per_input = len(policies.policies)
    assert len(outcome.evaluations) == per_input * len(docs)
    rules = [f"{LIBRARY}.{name}" for name in library_rules()]
    out = []
    for i, doc in enumerate(docs):
        evaluations = outcome.evaluations[i * per_input : (i + 1) * per_input]
        summary = [
            (
                e.policy,
                e.result,
                e.error is not None,
                sorted(_canonical((m.rule, m.msg, m.details)) for m in e.messages),
            )
            for e in evaluations
        ]
        library = dict(zip(rules, engine.evaluate_many(rules, doc), strict=True))
        out.append((summary, {k: _canonical(v) for k, v in library.items()}))
    return out


def _canonical(value: Any) -> str:
    """A value as comparable text: sets come back from the engine as lists in its own order."""
    if isinstance(value, BaseException):
        return f"error: {type(value).__name__}"
    return json.dumps(_sorted(value), sort_keys=True)


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def mismatches(
    reference: Path, docs: Sequence[Any], data: Mapping[str, Any], *, limit: int = 20
) -> list[str]:
    """Where the shipped library and the one in `reference` (a `reference_tree`) disagree:
    one line per policy evaluation or library rule that differs, at most `limit`."""
    shipped = _evaluations(SHIPPED, data, docs)
    expected = _evaluations(reference, data, docs)
    out: list[str] = []
    for i, (ours, theirs) in enumerate(zip(shipped, expected, strict=True)):
        out.extend(_differences(i, docs[i], ours, theirs))
        if len(out) >= limit:
            break
    return out[:limit]


def _differences(i: int, doc: Any, ours: Any, theirs: Any) -> Iterable[str]:
    resource = doc.get("resource") if isinstance(doc, Mapping) else None
    kind = resource.get("kind") if isinstance(resource, Mapping) else None
    for mine, want in zip(ours[0], theirs[0], strict=True):
        if mine != want:
            yield f"input {i} ({kind}): {want[0]}: reference {want[1:]}, shipped {mine[1:]}"
    for rule, want in theirs[1].items():
        if ours[1][rule] != want:
            yield f"input {i} ({kind}): {rule}: reference {want}, shipped {ours[1][rule]}"


__all__ = ["library_rules", "mismatches", "policy_set", "reference_tree"]
