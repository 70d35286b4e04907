"""drift.removed: Git stopped setting a field its GitOps manager set, and live still has it."""

from __future__ import annotations

import copy
from typing import Any

from auditor.drift.managed_fields import ManagedEntry
from auditor.drift.removed import find_removed
from auditor.redact import LAST_APPLIED
from tests.drift.builders import (
    EDITED_AT,
    configmap_desired,
    deployment_desired,
    deployment_live,
    fields_v1,
    isvc_desired,
    isvc_live,
    last_applied,
    managed,
    run,
    server_metadata,
    service_desired,
    service_live,
)


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


def removed(result: Any) -> list[Any]:
    return [f for f in result.findings if f.check == "drift.removed"]


def test_field_dropped_from_git_but_owned_by_argocd_is_removed() -> None:
    before = deployment_desired()
    pod(before)["containers"][0]["env"].append({"name": "DEBUG", "value": "1"})
    pod(before)["nodeSelector"] = {"pool": "gpu"}
    have = deployment_live(before)  # Argo CD applied `before`; Git then dropped both
    [env, selector] = removed(run([deployment_desired()], [have]))
    assert env.path == "/spec/template/spec/containers/0/env/2"  # the live index
    assert env.actual == {"name": "DEBUG", "value": "1"}
    assert env.expected is None
    assert env.details["key"] == {"name": "DEBUG"}
    assert env.changed_by is not None and env.changed_by.manager == "argocd-controller"
    assert selector.path == "/spec/template/spec/nodeSelector"
    assert selector.actual == {"pool": "gpu"}
    assert "no longer set in Git but still live" in selector.message


def test_handwritten_field_set_keyed_items_and_set_values() -> None:
    want = configmap_desired()
    have = server_metadata(copy.deepcopy(want))
    have["metadata"]["labels"] = {"tier": "gold"}
    have["metadata"]["finalizers"] = ["acme.io/keep"]
    have["metadata"]["managedFields"] = [
        managed(
            "kustomize-controller",
            {
                "f:data": {".": {}, "f:threshold": {}, "f:features.yaml": {}},
                "f:metadata": {
                    "f:labels": {"f:tier": {}},
                    "f:finalizers": {'v:"acme.io/keep"': {}},
                },
            },
        )
    ]
    [finding] = removed(run([want], [have]))
    assert finding.path == "/metadata/labels"
    assert finding.actual == {"tier": "gold"}


def test_whole_map_dropped_is_reported_once_at_the_map() -> None:
    before = deployment_desired()
    pod(before)["containers"][0]["securityContext"] = {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    [finding] = removed(run([deployment_desired()], [deployment_live(before)]))
    assert finding.path == "/spec/template/spec/containers/0/securityContext"
    assert finding.actual["capabilities"] == {"drop": ["ALL"]}


def test_removed_via_last_applied() -> None:
    before, want = deployment_desired(), deployment_desired()
    before["metadata"]["annotations"] = {"acme.io/owner": "risk-team", "acme.io/tier": "1"}
    want["metadata"]["annotations"] = {"acme.io/tier": "1"}
    have = last_applied(before, deployment_live(before))
    have["metadata"]["annotations"].update(before["metadata"]["annotations"])
    [finding] = removed(run([want], [have]))
    assert finding.path == "/metadata/annotations/acme.io~1owner"
    assert finding.actual == "risk-team"
    assert finding.details["source"] == "last-applied"
    assert finding.changed_by is not None
    assert finding.changed_by.manager == "kubectl-client-side-apply"


def test_annotations_dropped_altogether_are_reported_at_the_map() -> None:
    before = deployment_desired()
    before["metadata"]["annotations"] = {"acme.io/owner": "risk-team"}
    have = last_applied(before, deployment_live(before))
    have["metadata"]["annotations"].update(before["metadata"]["annotations"])
    [finding] = removed(run([deployment_desired()], [have]))
    assert finding.path == "/metadata/annotations"
    # only what was applied, not the server's or kubectl's own annotations
    assert finding.actual == {"acme.io/owner": "risk-team"}


def test_removed_keyed_element_via_last_applied_uses_live_index() -> None:
    before = deployment_desired()
    pod(before)["containers"][0]["env"].insert(0, {"name": "OLD_FLAG", "value": "on"})
    have = last_applied(before, deployment_live(before))
    [finding] = removed(run([deployment_desired()], [have]))
    assert finding.path == "/spec/template/spec/containers/0/env/0"
    assert finding.details["key"] == {"name": "OLD_FLAG"}


def test_removed_reported_once_when_both_sources_say_so() -> None:
    before = deployment_desired()
    pod(before)["nodeSelector"] = {"pool": "gpu"}
    have = deployment_live(before)
    argocd = have["metadata"]["managedFields"]
    last_applied(before, have)
    have["metadata"]["managedFields"] = argocd + have["metadata"]["managedFields"]
    [finding] = removed(run([deployment_desired()], [have]))
    assert finding.path == "/spec/template/spec/nodeSelector"
    assert finding.details["source"] == "last-applied+managedFields"


def test_field_gone_live_too_is_not_removed() -> None:
    before = deployment_desired()
    pod(before)["nodeSelector"] = {"pool": "gpu"}
    have = deployment_live(before)
    del pod(have)["nodeSelector"]
    assert run([deployment_desired()], [have]).findings == ()


def test_update_entries_do_not_witness_removal() -> None:
    # an Update entry written at create time owns every server default too
    have = deployment_live()
    have["metadata"]["managedFields"] = [
        managed("argocd-controller", fields_v1(have), operation="Update")
    ]
    assert run([deployment_desired()], [have]).findings == ()


def test_fields_owned_by_other_managers_are_not_removed() -> None:
    have = deployment_live()
    have["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = EDITED_AT
    have["metadata"]["managedFields"].append(
        managed(
            "kubectl-rollout",
            {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/restartedAt": {}}}},
            operation="Update",
            time=EDITED_AT,
        )
    )
    assert run([deployment_desired()], [have]).findings == ()


def test_gitops_tracking_metadata_is_not_removed() -> None:
    want = deployment_desired()
    applied = copy.deepcopy(want)
    applied["metadata"]["labels"]["app.kubernetes.io/instance"] = "fraud"
    applied["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "fraud:apps/Deployment:ml/fraud-api"
    }
    have = deployment_live(applied)
    have["metadata"]["annotations"].update(applied["metadata"]["annotations"])
    assert run([want], [have]).findings == ()


def test_last_applied_annotation_itself_is_never_compared_or_removed() -> None:
    want = deployment_desired()
    have = last_applied(want, deployment_live())
    assert LAST_APPLIED in have["metadata"]["annotations"]
    assert run([want], [have]).findings == ()


def test_service_port_dropped_from_git_is_removed_by_its_ssa_key() -> None:
    before = service_desired()
    before["spec"]["ports"].append({"name": "metrics", "port": 9090, "targetPort": 9090})
    have = service_live(before)
    ports = have["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"]
    assert 'k:{"port":9090,"protocol":"TCP"}' in ports
    [finding] = removed(run([service_desired()], [have]))
    assert finding.path == "/spec/ports/2"
    assert finding.details["key"] == {"port": 9090, "protocol": "TCP"}
    assert finding.actual["name"] == "metrics"


def test_canary_dropped_from_git_is_removed_traffic_drift() -> None:
    before = isvc_desired()
    before["spec"]["predictor"]["canaryTrafficPercent"] = 10
    [finding] = removed(run([isvc_desired()], [isvc_live(before)]))
    assert finding.path == "/spec/predictor/canaryTrafficPercent"
    assert (finding.drift_class, finding.severity, finding.actual) == ("traffic", "high", 10)


def test_empty_strings_a_webhook_wrote_are_not_removed() -> None:
    # Go structs without omitempty write `name: ""`; an applier may own it, Git never said it
    want = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1}}
    have = {
        "apiVersion": "v1",
        "kind": "X",
        "metadata": {"name": "x"},
        "spec": {"a": 1, "name": ""},
    }
    entries = [
        ManagedEntry("argocd-controller", "Apply", None, {"f:spec": {"f:a": {}, "f:name": {}}})
    ]
    assert find_removed(want, have, entries, ["argocd-controller"]) == []
