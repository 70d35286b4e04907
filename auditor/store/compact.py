"""The compact forms of schema version 6, and when a value may take them.

A form is taken only when the views give back exactly what was recorded (see
`migrations/m0006_normalised_contents.py`); these functions decide that, and nothing else:

- a policy finding's details without `policy_title` and `source` (the `policies` row has
  them, and its id and category), its controls as NULL when they are the policy's, its path
  as NULL when it is the `path` of its details' message;
- a message that is `<Kind ns/name>: ` + the `msg` of its details (form 1) or that `msg`
  itself (form 2), as NULL;
- an evaluation message that a finding of the same run already holds: the message is built
  from that finding's details (`rule`, and `message`: the details, or the text when a rule
  gave a plain string).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.model import Finding, PolicyMessage
from auditor.store.jsonencode import encoder

# Canonical JSON for comparing two values as any reader of the store decodes them.
_CANONICAL = encoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))

_POLICY_KEYS = ("policy_title", "source")

# message_form values
PREFIXED_MSG = 1
MSG = 2


def canonical(value: Any) -> str | None:
    """`value` as canonical JSON; None when it is not JSON (the caller stores it as it is, and
    the writer's own check names what is wrong)."""
    try:
        return _CANONICAL(value)
    except (TypeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True, slots=True)
class PolicyText:
    """What a `policies` row gives every finding of its policy."""

    key: int
    title: str
    source: str
    controls: tuple[str, ...]


def policy_details(finding: Finding, policy: PolicyText) -> dict[str, Any] | None:
    """The details to store when the policy row can give back the rest, else None."""
    details = finding.details
    if finding.category != "policy" or tuple(details)[-2:] != _POLICY_KEYS:
        return None
    if details["policy_title"] != policy.title or details["source"] != policy.source:
        return None
    return {k: v for k, v in details.items() if k not in _POLICY_KEYS}


def path_in_details(finding: Finding) -> bool:
    """Whether the finding's path is the `path` of its details' message."""
    message = finding.details.get("message")
    return isinstance(message, Mapping) and message.get("path") == finding.path


def _display(object_key: tuple[str, str, str, str, str]) -> str:
    _, _, kind, namespace, name = object_key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def message_form(finding: Finding, object_key: tuple[str, str, str, str, str]) -> int | None:
    """PREFIXED_MSG or MSG when the message is made of its details' `message.msg`, else None."""
    message = finding.details.get("message")
    if not isinstance(message, Mapping):
        return None
    msg = message.get("msg")
    if not isinstance(msg, str):
        return None
    if finding.message == f"{_display(object_key)}: {msg}":
        return PREFIXED_MSG
    return MSG if finding.message == msg else None


def message_from_finding(finding: Finding) -> str | None:
    """The canonical JSON of the evaluation message the view builds from this finding's
    details, or None when it builds none."""
    if finding.category != "policy":
        return None
    rule, message = finding.details.get("rule"), finding.details.get("message")
    if not isinstance(rule, str):
        return None
    if isinstance(message, Mapping):
        msg = message.get("msg")
        if not isinstance(msg, str):
            return None
        return canonical({"rule": rule, "msg": msg, "details": message})
    if isinstance(message, str):
        return canonical({"rule": rule, "msg": message, "details": {}})
    return None


def message_text(message: PolicyMessage) -> str | None:
    """The canonical JSON of an evaluation message as the store records it."""
    return canonical({"rule": message.rule, "msg": message.msg, "details": dict(message.details)})
