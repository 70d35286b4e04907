"""Label and field selectors with the API server's grammar and error messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A selector the API server would answer with 400 BadRequest."""


_SET_OP = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_.\-/]+)\s+(in|notin)\s*\((.*)\)\s*$", re.S)
_EQ_OP = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=|=)\s*([A-Za-z0-9_.\-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_.\-/]+)\s*$")


def _split_requirements(text: str) -> list[str]:
    """Splits on commas that are not inside the parentheses of `in (...)`."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Predicate:
    match = _SET_OP.match(text)
    if match:
        negated, key, op, values_text = match.groups()
        if negated:
            raise SelectorError(f"unable to parse requirement: found '{op}', expected: ','")
        values = {v.strip() for v in values_text.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _EQ_OP.match(text)
    if match:
        key, op, value = match.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    match = _EXISTS.match(text)
    if match:
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {text.strip()!r} is not a valid requirement")


def label_selector(text: str) -> Predicate:
    """A predicate over an object's labels: `=`, `==`, `!=`, `in`, `notin`, `key`, `!key`."""
    requirements = [_requirement(part) for part in _split_requirements(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


FIELD_SELECTABLE = ("metadata.name", "metadata.namespace")


def field_selector(text: str) -> Predicate:
    """metadata.name and metadata.namespace, as every resource supports them."""
    checks: list[Predicate] = []
    for part in _split_requirements(text):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not match:
            raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in FIELD_SELECTABLE:
            raise SelectorError(
                f'"{field}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
        attr = field.split(".", 1)[1]

        def check(
            obj: Mapping[str, Any], attr: str = attr, op: str = op, value: str = value
        ) -> bool:
            actual = (obj.get("metadata") or {}).get(attr, "")
            return actual != value if op == "!=" else actual == value

        checks.append(check)
    return lambda obj: all(c(obj) for c in checks)
