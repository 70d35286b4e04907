"""Rego policies: loading, the engines that evaluate them, and the input they see.

The library API: `load_policy_files` reads policies once, `load_engine` compiles them into an
engine, `evaluate_policies` runs them over input documents built by `build_input`;
`run_policy_tests` is `auditor policy test`.

Imported lazily (PEP 562): a command that needs one stage module (`auditor drift` needs none,
the pipeline `policy.stage`) does not pay for regorus, the loader and Gatekeeper support.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.model import Evaluation, PolicyMessage
    from auditor.policy.embedded import EmbeddedEngine
    from auditor.policy.engine import (
        Policy,
        PolicyEngine,
        PolicyEvalError,
        PolicyLoadError,
        RegoModule,
    )
    from auditor.policy.evaluate import (
        PolicyOutcome,
        evaluate_files,
        evaluate_policies,
        load_engine,
        outcome_document,
    )
    from auditor.policy.inputs import build_input, object_input
    from auditor.policy.loader import (
        DiscoveredPolicies,
        PolicyKindHooks,
        PolicySet,
        load_data_files,
        load_policy_files,
        parse_module,
        with_inventory,
    )
    from auditor.policy.testing import TestReport, format_report, run_policy_tests

_WHERE = {
    "DiscoveredPolicies": "auditor.policy.loader",
    "EmbeddedEngine": "auditor.policy.embedded",
    "Evaluation": "auditor.model",
    "Policy": "auditor.policy.engine",
    "PolicyEngine": "auditor.policy.engine",
    "PolicyEvalError": "auditor.policy.engine",
    "PolicyKindHooks": "auditor.policy.loader",
    "PolicyLoadError": "auditor.policy.engine",
    "PolicyMessage": "auditor.model",
    "PolicyOutcome": "auditor.policy.evaluate",
    "PolicySet": "auditor.policy.loader",
    "RegoModule": "auditor.policy.engine",
    "TestReport": "auditor.policy.testing",
    "build_input": "auditor.policy.inputs",
    "evaluate_files": "auditor.policy.evaluate",
    "evaluate_policies": "auditor.policy.evaluate",
    "format_report": "auditor.policy.testing",
    "load_data_files": "auditor.policy.loader",
    "load_engine": "auditor.policy.evaluate",
    "load_policy_files": "auditor.policy.loader",
    "object_input": "auditor.policy.inputs",
    "outcome_document": "auditor.policy.evaluate",
    "parse_module": "auditor.policy.loader",
    "run_policy_tests": "auditor.policy.testing",
    "with_inventory": "auditor.policy.loader",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DiscoveredPolicies",
    "EmbeddedEngine",
    "Evaluation",
    "Policy",
    "PolicyEngine",
    "PolicyEvalError",
    "PolicyKindHooks",
    "PolicyLoadError",
    "PolicyMessage",
    "PolicyOutcome",
    "PolicySet",
    "RegoModule",
    "TestReport",
    "build_input",
    "evaluate_files",
    "evaluate_policies",
    "format_report",
    "load_data_files",
    "load_engine",
    "load_policy_files",
    "object_input",
    "outcome_document",
    "parse_module",
    "run_policy_tests",
    "with_inventory",
]
