"""Compatibility: model-signing verification now lives in `auditor.provenance.signing`.

Kept so that `auditor/provenance/stage.py`, rewritten in parallel, keeps importing
`model_signing as ms` unchanged; new code imports `auditor.provenance.signing`. Delete this
module once nothing imports it.
"""

from __future__ import annotations

from auditor import checks
from auditor.model import Severity
from auditor.provenance import signing

# Re-exports the signing package's API exactly, whatever it grows to, until this module goes.
from auditor.provenance.signing import *  # noqa: F403

# stage.py reads default severities from here; the registry is their one source.
SEVERITY: dict[str, Severity] = {
    check: checks.default_severity(check) for check in signing.SIGNATURE_CHECKS
}

__all__ = [*signing.__all__, "SEVERITY"]
