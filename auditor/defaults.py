"""Constants that command-line options show in `--help`, in a module that imports nothing:
`auditor --help` lists every command without loading the model (30 dataclasses) or the
config schema. `model.py` and `config.py` re-export them under their usual names."""

from typing import Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
DEFAULT_POLICY_TIMEOUT_SECONDS = 5.0  # policy.timeout_seconds
DEFAULT_POLICY_MEMORY_BYTES = 2 * 1024**3  # policy.memory_bytes
# allow / deny: evaluated; skip: outside the scope, allowed without evaluation; error: the
# decision could not be made (internal error, time budget) and was denied (fail closed);
# fail_open: the same, allowed because its namespace is configured fail-open.
DecisionResult = Literal["allow", "deny", "skip", "error", "fail_open"]
DECISION_RESULTS: tuple[DecisionResult, ...] = ("allow", "deny", "skip", "error", "fail_open")
