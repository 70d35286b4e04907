"""Gatekeeper's `spec.match`: which objects a Constraint sees.

A faithful port of Gatekeeper's `pkg/mutation/match` (the matcher constraints use since
v3.8): every criterion must pass; an absent criterion passes. The details that surprise
people are Gatekeeper's, kept on purpose so a library behaves here as in the cluster:

- `namespaces` / `excludedNamespaces` never exclude a cluster-scoped object (other than a
  Namespace, which is matched by its own name);
- `namespaceSelector` passes cluster-scoped objects, selects a Namespace on its own labels,
  and needs the Namespace object of anything namespaced (an error when it is not in scope);
- globs are a single `*` at the front, the end or both (`kube-*`, `*-system`, `*sys*`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from auditor.model import api_group
from auditor.policy.engine import PolicyEvalError


class MatchError(PolicyEvalError):
    """The match criteria cannot be decided for an object (a bad selector, a Namespace that is
    not in scope): Gatekeeper reports these as errors, never as "no match", so it is a
    PolicyEvalError and that policy's evaluation becomes `error`."""


def wildcard_matches(pattern: str, candidate: str) -> bool:
    """Gatekeeper's `util.Wildcard`: exact, or a `*` prefix/suffix/infix glob."""
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in candidate  # "*" alone: "" is in every name
    if pattern.startswith("*"):
        return candidate.endswith(pattern[1:])
    if pattern.endswith("*"):
        return candidate.startswith(pattern[:-1])
    return pattern == candidate


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not obj:
        return {}
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatchError(f"{what} must be a list of strings")
    return value


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Kubernetes `LabelSelector` (matchLabels AND matchExpressions); `{}` selects all."""
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise MatchError("matchLabels must be a map of strings")
    for key, value in match_labels.items():
        if key not in labels or str(labels[key]) != str(value):
            return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise MatchError("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping) or not isinstance(expr.get("key"), str):
            raise MatchError("each matchExpressions entry needs a key")
        key, operator = expr["key"], expr.get("operator")
        values = _str_list(expr.get("values"), f"matchExpressions {key!r} values")
        present = key in labels
        # Same validation as metav1.LabelSelectorAsSelector: a malformed requirement is an
        # error, not a silent non-match, so a typo in a constraint is seen.
        if operator in ("In", "NotIn"):
            if not values:
                raise MatchError(f"matchExpressions {key!r}: {operator} needs values")
            inside = present and str(labels[key]) in values
            if inside != (operator == "In"):
                return False
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                raise MatchError(f"matchExpressions {key!r}: {operator} takes no values")
            if present != (operator == "Exists"):
                return False
        else:
            raise MatchError(f"matchExpressions {key!r}: unknown operator {operator!r}")
    return True


def _gvk(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    return api_group(api_version if isinstance(api_version, str) else ""), (
        kind if isinstance(kind, str) else ""
    )


def is_namespace(obj: Mapping[str, Any]) -> bool:
    return _gvk(obj) == ("", "Namespace")


def _meta(obj: Mapping[str, Any], key: str) -> str:
    metadata = obj.get("metadata")
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else ""


def _kinds_match(match: Mapping[str, Any], obj: Mapping[str, Any], _ns: Any) -> bool:
    kinds = match.get("kinds")
    if not kinds:
        return True
    if not isinstance(kinds, list):
        raise MatchError("match.kinds must be a list of {apiGroups, kinds}")
    group, kind = _gvk(obj)
    for entry in kinds:
        if not isinstance(entry, Mapping):
            raise MatchError("match.kinds must be a list of {apiGroups, kinds}")
        names = _str_list(entry.get("kinds"), "match.kinds[].kinds")
        groups = _str_list(entry.get("apiGroups"), "match.kinds[].apiGroups")
        if (not names or "*" in names or kind in names) and (
            not groups or "*" in groups or group in groups
        ):
            return True
    return False


def _effective_namespace(obj: Mapping[str, Any], ns_obj: Mapping[str, Any] | None) -> str | None:
    """The namespace name the namespace criteria test, None for a cluster-scoped object."""
    if is_namespace(obj):
        return _meta(obj, "name")
    if ns_obj is not None:
        return _meta(ns_obj, "name")
    return _meta(obj, "namespace") or None


def _namespaces_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Any) -> bool:
    patterns = _str_list(match.get("namespaces"), "match.namespaces")
    if not patterns:
        return True
    name = _effective_namespace(obj, ns)
    if name is None:  # cluster-scoped, not a Namespace: namespace lists cannot disqualify it
        return True
    return any(wildcard_matches(p, name) for p in patterns)


def _excluded_namespaces_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Any) -> bool:
    patterns = _str_list(match.get("excludedNamespaces"), "match.excludedNamespaces")
    if not patterns:
        return True
    name = _effective_namespace(obj, ns)
    if name is None:
        return True
    return not any(wildcard_matches(p, name) for p in patterns)


def _label_selector_match(match: Mapping[str, Any], obj: Mapping[str, Any], _ns: Any) -> bool:
    selector = match.get("labelSelector")
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        raise MatchError("match.labelSelector must be a label selector")
    return selector_matches(selector, _labels(obj))


def _namespace_selector_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Any) -> bool:
    selector = match.get("namespaceSelector")
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        raise MatchError("match.namespaceSelector must be a label selector")
    if is_namespace(obj):
        return selector_matches(selector, _labels(obj))
    if ns is None and not _meta(obj, "namespace"):
        return True  # cluster-scoped objects pass, as in Gatekeeper
    if ns is None:
        raise MatchError(
            f"namespaceSelector needs Namespace {_meta(obj, 'namespace')!r}, which is not among "
            "the resources in scope (add it to Git, or pass it with --inventory)"
        )
    return selector_matches(selector, _labels(ns))


def _name_match(match: Mapping[str, Any], obj: Mapping[str, Any], _ns: Any) -> bool:
    pattern = match.get("name")
    if not pattern:  # blank or absent: any name
        return True
    if not isinstance(pattern, str):
        raise MatchError("match.name must be a string")
    return wildcard_matches(pattern, _meta(obj, "name"))


def _scope_match(match: Mapping[str, Any], obj: Mapping[str, Any], ns: Any) -> bool:
    scope = match.get("scope")
    has_namespace = bool(_meta(obj, "namespace")) or ns is not None
    if scope == "Cluster":
        return is_namespace(obj) or not has_namespace
    if scope == "Namespaced":
        return not is_namespace(obj) and has_namespace
    return True  # "*", absent, and (as Gatekeeper does) unknown values such as typos


# What auditor's objects are: read from Git or the cluster, never expanded from a generator.
OBJECT_SOURCE = "Original"


def _source_match(match: Mapping[str, Any], _obj: Mapping[str, Any], _ns: Any) -> bool:
    source = match.get("source")
    if not source or source == "All":
        return True
    if source not in ("Original", "Generated"):
        raise MatchError(f"match.source must be All, Original or Generated, not {source!r}")
    return bool(source == OBJECT_SOURCE)


_CRITERIA = (
    _kinds_match,
    _scope_match,
    _namespaces_match,
    _excluded_namespaces_match,
    _label_selector_match,
    _namespace_selector_match,
    _name_match,
    _source_match,
)


def match_object(
    match: Mapping[str, Any] | None,
    obj: Mapping[str, Any],
    namespace: Mapping[str, Any] | None = None,
) -> bool:
    """Whether `obj` (in the Namespace object `namespace`, when known) meets every criterion of
    a constraint's `spec.match`; raises MatchError where Gatekeeper would report an error."""
    if not match:
        return True
    if not isinstance(match, Mapping):
        raise MatchError("spec.match must be a mapping")
    return all(criterion(match, obj, namespace) for criterion in _CRITERIA)


def match_any(
    match: Mapping[str, Any] | None,
    objects: Sequence[Mapping[str, Any] | None],
    namespace: Mapping[str, Any] | None = None,
) -> bool:
    """Gatekeeper matches a review when its object or its oldObject matches (a DELETE has only
    the old one); None entries are skipped."""
    return any(match_object(match, obj, namespace) for obj in objects if obj)
