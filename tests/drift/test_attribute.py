"""Attribution: the managedFields entry that owns a drifted field names who and when."""

from __future__ import annotations

from typing import Any

from auditor.drift.attribute import changed_by
from auditor.drift.managed_fields import ManagedEntry, managed_entries, owned_depth
from auditor.drift.pointer import ElementStep
from auditor.model import ChangedBy
from tests.drift.builders import (
    APPLIED_AT,
    EDITED_AT,
    deployment_desired,
    deployment_live,
    isvc_desired,
    isvc_live,
    managed,
    run,
)

GITOPS = ("argocd-controller", "kubectl-client-side-apply")


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


IMAGE_EDIT: dict[str, Any] = {
    "f:spec": {
        "f:template": {
            "f:spec": {"f:containers": {'k:{"name":"api"}': {"f:image": {}}}},
        }
    }
}


def test_kubectl_edit_of_an_image_is_attributed_with_its_time() -> None:
    have = deployment_live()
    pod(have)["containers"][0]["image"] = "ghcr.io/acme/fraud-api:debug"
    have["metadata"]["managedFields"].append(
        managed("kubectl-edit", IMAGE_EDIT, operation="Update", time=EDITED_AT)
    )
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.changed_by == ChangedBy("kubectl-edit", "Update", EDITED_AT)
    assert finding.message.endswith(f"(changed by kubectl-edit at {EDITED_AT})")


def test_storage_uri_message_names_object_values_and_editor() -> None:
    have = isvc_live()
    have["spec"]["predictor"]["model"]["storageUri"] = "gs://models/fraud/v4"
    have["metadata"]["managedFields"].append(
        managed(
            "kubectl-edit",
            {"f:spec": {"f:predictor": {"f:model": {"f:storageUri": {}}}}},
            operation="Update",
            time="2026-11-20T02:13:00Z",
        )
    )
    [finding] = run([isvc_desired()], [have]).findings
    assert finding.message == (
        "InferenceService ml/fraud-scorer: /spec/predictor/model/storageUri is "
        '"gs://models/fraud/v3" in Git, "gs://models/fraud/v4" live '
        "(changed by kubectl-edit at 2026-11-20T02:13:00Z)"
    )


def test_nearest_owned_ancestor_owns_a_field_inside_an_atomic_value() -> None:
    entry = ManagedEntry("helm", "Update", APPLIED_AT, {"f:spec": {"f:tolerations": {}}})
    steps = ("spec", "tolerations", ElementStep("0", {"key": "gpu"}, {"key": "gpu"}, ()), "effect")
    assert owned_depth(entry.fields, steps) == 1
    assert changed_by([entry], steps, GITOPS) == ChangedBy("helm", "Update", APPLIED_AT)


def test_deepest_owner_wins_over_an_owner_of_the_parent() -> None:
    element = {"name": "api", "image": "x"}
    steps = ("spec", "containers", ElementStep("0", element, element, ("name",)), "image")
    parent = ManagedEntry(
        "argocd-controller",
        "Apply",
        EDITED_AT,
        {"f:spec": {"f:containers": {'k:{"name":"api"}': {".": {}}}}},
    )
    leaf = ManagedEntry(
        "kubectl-set",
        "Update",
        APPLIED_AT,
        {"f:spec": {"f:containers": {'k:{"name":"api"}': {"f:image": {}}}}},
    )
    assert changed_by([parent, leaf], steps, GITOPS) == ChangedBy(
        "kubectl-set", "Update", APPLIED_AT
    )


def test_shared_ownership_prefers_non_gitops_then_latest() -> None:
    fields: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
    gitops = ManagedEntry("argocd-controller", "Apply", "2026-11-21T00:00:00Z", fields)
    early = ManagedEntry("scaler-a", "Update", "2026-11-01T00:00:00Z", fields)
    late = ManagedEntry("scaler-b", "Update", "2026-11-02T00:00:00Z", fields)
    assert changed_by([gitops, early, late], ("spec", "replicas"), GITOPS).manager == "scaler-b"  # type: ignore[union-attr]
    assert changed_by([gitops], ("spec", "replicas"), GITOPS).manager == "argocd-controller"  # type: ignore[union-attr]


def test_no_managed_fields_means_no_attribution() -> None:
    have = deployment_live()
    del have["metadata"]["managedFields"]
    pod(have)["containers"][0]["image"] = "x"
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.changed_by is None
    assert "changed by" not in finding.message


def test_container_port_keys_match_managed_fields_keys() -> None:
    have = deployment_live()
    ports = pod(have)["containers"][0]["ports"]
    ports[0]["name"] = "web"
    have["metadata"]["managedFields"].append(
        managed(
            "kubectl-patch",
            {
                "f:spec": {
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"api"}': {
                                    "f:ports": {
                                        'k:{"containerPort":8080,"protocol":"TCP"}': {"f:name": {}}
                                    }
                                }
                            }
                        }
                    }
                }
            },
            operation="Update",
            time=EDITED_AT,
        )
    )
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.path == "/spec/template/spec/containers/0/ports/0/name"
    assert finding.changed_by is not None and finding.changed_by.manager == "kubectl-patch"


def test_managed_entries_skip_malformed_items() -> None:
    body = {
        "metadata": {"managedFields": [{"manager": "x"}, "junk", managed("ok", {"f:spec": {}})]}
    }
    assert [e.manager for e in managed_entries(body)] == ["ok"]
