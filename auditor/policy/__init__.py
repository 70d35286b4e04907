"""Rego policies: loading, the engines that evaluate them, and the input they see.

The library API: `load_policy_files` reads policies once, `load_engine` compiles them into an
engine, `evaluate_policies` runs them over input documents built by `build_input`;
`run_policy_tests` is `auditor policy test`.
"""

from auditor.model import Evaluation, PolicyMessage
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import Policy, PolicyEngine, PolicyEvalError, PolicyLoadError, RegoModule
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
