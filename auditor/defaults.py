"""Constants that command-line options show in `--help`, in a module that imports nothing:
`auditor --help` lists every command without loading the model (30 dataclasses) or the
config schema. `model.py` and `config.py` re-export them under their usual names."""

from typing import Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
DEFAULT_POLICY_TIMEOUT_SECONDS = 5.0  # policy.timeout_seconds
