"""Git's object in the API version the live object was read at.

Objects match by group and kind, not version, so Git may say `autoscaling/v1` while
`kubectl get hpa -o yaml` (and a cluster read at the preferred version) returns
`autoscaling/v2`, where the same spec is spelled differently. Argo CD reads live at Git's
version and sees no difference; comparing the two spellings field by field would report
every such HPA as drifted. Only conversions that rename fields are needed here: most
version pairs (batch/v1beta1 and v1 CronJob, policy/v1beta1 and v1 PDB) spell fields alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The target autoscaling/v1 means when it names none (SetDefaults_HorizontalPodAutoscaler).
DEFAULT_CPU_UTILIZATION = 80


def served_view(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Mapping[str, Any]:
    """`desired` converted to the live object's apiVersion, when a known conversion applies."""
    if (
        desired.get("kind") == "HorizontalPodAutoscaler"
        and desired.get("apiVersion") == "autoscaling/v1"
        and live.get("apiVersion") == "autoscaling/v2"
    ):
        return _hpa_v1_to_v2(desired)
    return desired


def _hpa_v1_to_v2(desired: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = desired.get("spec")
    if not isinstance(spec, Mapping):
        return desired
    converted = {k: v for k, v in spec.items() if k != "targetCPUUtilizationPercentage"}
    target = spec.get("targetCPUUtilizationPercentage")
    converted["metrics"] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {
                    "type": "Utilization",
                    "averageUtilization": DEFAULT_CPU_UTILIZATION if target is None else target,
                },
            },
        }
    ]
    return {**desired, "apiVersion": "autoscaling/v2", "spec": converted}
