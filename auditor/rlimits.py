"""Resource limits for the child processes auditor starts (a kustomize render, a policy
worker): lowered to what the work may use, never raised above what auditor itself runs under."""

from __future__ import annotations

import resource


def lowered(kind: int, value: int) -> tuple[int, int]:
    """(soft, hard) at `value`, never above the limit auditor itself already runs under."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    return value, value


__all__ = ["lowered"]
