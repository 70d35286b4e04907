"""JSON pointers (RFC 6901) and the steps a walk takes to reach a drifted field.

A walk records where it is as a stack of steps: a plain `str` for a mapping field (the
common case, kept cheap) and an `ElementStep` for a list element, which also remembers
the live element (to find its owner in managedFields) and the merge key that matched it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple


class ElementStep(NamedTuple):
    """One list element on a path."""

    token: str  # the index in the pointer: desired index, or live index for removed elements
    live: Any  # the live element (None when live lacks it)
    element: Any  # the element the merge key is read from (desired, else live)
    key_fields: tuple[str, ...]  # merge key fields; () for positional lists


Step = str | ElementStep


def escape(token: str) -> str:
    """One reference token: `~` -> `~0`, `/` -> `~1` (in that order, per RFC 6901)."""
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def tokens_of(steps: Iterable[Step]) -> tuple[str, ...]:
    return tuple(s if isinstance(s, str) else s.token for s in steps)


def to_pointer(tokens: Iterable[str]) -> str:
    """`("spec", "a/b")` -> `/spec/a~1b`; no tokens -> `""` (the whole object)."""
    return "".join("/" + escape(t) for t in tokens)


def parse_pointer(text: str) -> tuple[str, ...]:
    """`/spec/a~1b` -> `("spec", "a/b")`; `""` -> `()`. A missing leading `/` is tolerated."""
    if not text:
        return ()
    body = text[1:] if text.startswith("/") else text
    return tuple(unescape(t) for t in body.split("/"))


def merge_key(steps: Sequence[Step]) -> dict[str, Any] | None:
    """The merge key of the innermost keyed list element on the path, e.g. `{"name": "x"}`."""
    for step in reversed(steps):
        if isinstance(step, ElementStep) and step.key_fields and isinstance(step.element, Mapping):
            return {f: step.element[f] for f in step.key_fields if f in step.element}
    return None
