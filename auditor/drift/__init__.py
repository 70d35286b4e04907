"""The drift stage: a pure function of desired and live `Resource`s.

Compares every field Git sets (server defaults are not drift), normalizes quantities,
int-or-string ports and keyed lists, finds fields Git stopped setting that are still
live, attributes each drift to the field manager that wrote it, classifies it
(model, runtime, traffic, scale, config) and applies the ignore rules.
"""

from auditor.drift.engine import compute_drift

__all__ = ["compute_drift"]
