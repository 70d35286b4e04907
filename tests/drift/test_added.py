"""drift.added: a field Git does not set, added by hand; managedFields say who.

Argo CD and Flux compare only what Git sets, so `kubectl edit` adding an env var to a model
server goes unseen there (argoproj/argo-cd#4537, #7611). Here a field live has and Git does
not set is drift when a manager people drive owns it and no GitOps manager or controller
does. The objects are the real-world fixtures; the edits are recorded in managedFields the
way the API server records an Update (`edited`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

from auditor.config import (
    DEFAULT_GITOPS_MANAGERS,
    DEFAULT_HUMAN_MANAGERS,
    DriftSettings,
    IgnoreRule,
)
from auditor.model import DriftResult, Finding
from auditor.redact import LAST_APPLIED
from tests.conftest import GitRepo, run_cli
from tests.drift.fixtures import (
    EDITED_AT,
    REALWORLD,
    desired,
    drift,
    drift_cli,
    edited,
    find,
    live,
    snapshot_file,
    summary,
)

NGINX = "ingress-nginx-controller.yaml"
KUBECTL = "kubectl-create-fraud-scorer.yaml"
OVERRIDE = {"name": "MODEL_OVERRIDE", "value": "gs://scratch/models/fraud-v9"}
Objects = list[dict[str, Any]]


def added(result: DriftResult) -> list[Finding]:
    return [f for f in result.findings if f.check == "drift.added"]


def with_settings(want: Objects, have: Objects, **settings: Any) -> DriftResult:
    return drift(want, have, dataclasses.replace(DriftSettings(), **settings))


def container_fields(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fieldsV1 of an edit inside one container of a pod template."""
    container = {"k:" + json.dumps({"name": name}, separators=(",", ":")): fields}
    return {"f:spec": {"f:template": {"f:spec": {"f:containers": container}}}}


ENV_ELEMENT = {".": {}, "f:name": {}, "f:value": {}}


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


def env_added(manager: str, env: dict[str, str] = OVERRIDE) -> tuple[Objects, Objects]:
    """ingress-nginx's controller (Git sets its env) with `env` appended live by `manager`,
    recorded in managedFields as the API server records that Update."""
    want, have = desired(NGINX), live(NGINX)
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    pod(deployment)["containers"][0]["env"].append(dict(env))
    element = {"k:" + json.dumps({"name": env["name"]}, separators=(",", ":")): ENV_ELEMENT}
    edited(deployment, manager, container_fields("controller", {"f:env": element}))
    return want, have


# -- what people add by hand ----------------------------------------------------------------------


def test_env_var_added_with_kubectl_edit_is_drift_added() -> None:
    want, have = env_added("kubectl-edit")
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.added",
        "Deployment",
        "ingress-nginx-controller",
        "/spec/template/spec/containers/0/env/3",  # its index live: Git does not list it
        "config",
        "medium",
        None,
        OVERRIDE,
        ("kubectl-edit", "Update", EDITED_AT),
    )
    assert finding.details == {"key": {"name": "MODEL_OVERRIDE"}}
    assert finding.message == (
        "Deployment ingress-nginx/ingress-nginx-controller: "
        '/spec/template/spec/containers/0/env/3 (name "MODEL_OVERRIDE") is not set in Git; '
        'added live as {"name": "MODEL_OVERRIDE", "value": "gs://scratch/models/fraud-v9"} '
        f"(changed by kubectl-edit at {EDITED_AT})"
    )


def test_env_list_added_where_git_has_none_is_one_finding_at_the_list() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    pod(deployment)["containers"][0]["env"] = [dict(OVERRIDE)]
    element = {".": {}, 'k:{"name":"MODEL_OVERRIDE"}': ENV_ELEMENT}
    edited(deployment, "kubectl-set", container_fields("fraud-scorer", {"f:env": element}))
    [finding] = added(drift(want, have))
    assert (finding.path, finding.actual) == ("/spec/template/spec/containers/0/env", [OVERRIDE])
    assert finding.changed_by is not None and finding.changed_by.manager == "kubectl-set"


def test_storage_uri_added_by_hand_is_a_model_drift() -> None:
    want, have = env_added("kubectl-patch", {"name": "STORAGE_URI", "value": "s3://x/m"})
    [finding] = drift(want, have).findings
    assert (finding.check, finding.drift_class, finding.severity) == (
        "drift.added",
        "model",
        "critical",
    )


def test_container_added_with_kubectl_edit_is_one_runtime_finding() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    debugger = {
        "name": "debug",
        "image": "busybox:1.36",
        "command": ["sleep", "infinity"],
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    pod(deployment)["containers"].append(debugger)
    owned = {f"f:{k}": {} for k in debugger}
    fields = {
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"debug"}': {".": {}, **owned}}}}
        }
    }
    edited(deployment, "kubectl-edit", fields)
    [finding] = drift(want, have).findings
    assert summary(finding)[:6] == (
        "drift.added",
        "Deployment",
        "fraud-scorer",
        "/spec/template/spec/containers/1",
        "runtime",
        "high",
    )
    assert finding.actual == debugger


def test_label_added_with_kubectl_label() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    deployment["metadata"]["labels"]["canary"] = "manual"
    edited(deployment, "kubectl-label", {"f:metadata": {"f:labels": {"f:canary": {}}}})
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.added",
        "Deployment",
        "fraud-scorer",
        "/metadata/labels/canary",
        "config",
        "medium",
        None,
        "manual",
        ("kubectl-label", "Update", EDITED_AT),
    )


def test_annotation_added_with_kubectl_annotate() -> None:
    # Git gives the ConfigMap no annotations: the finding is at the map, holding only the
    # annotation the person added (not Argo CD's tracking id, which live also has)
    want, have = desired(KUBECTL), live(KUBECTL)
    flags = find(have, "ConfigMap", "fraud-scorer-flags")
    flags["metadata"]["annotations"]["ops.acme.io/paused"] = "true"
    edited(
        flags, "kubectl-annotate", {"f:metadata": {"f:annotations": {"f:ops.acme.io/paused": {}}}}
    )
    [finding] = drift(want, have).findings
    assert (finding.check, finding.path, finding.actual) == (
        "drift.added",
        "/metadata/annotations",
        {"ops.acme.io/paused": "true"},
    )
    assert finding.changed_by is not None and finding.changed_by.manager == "kubectl-annotate"


def test_resource_limits_added_under_the_empty_map_git_applied() -> None:
    # kubectl create wrote `resources: {}`: Argo CD owns the empty map, not what was added
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    pod(deployment)["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    fields = {"f:resources": {"f:limits": {".": {}, "f:nvidia.com/gpu": {}}}}
    edited(deployment, "kubectl-set", container_fields("fraud-scorer", fields))
    [finding] = drift(want, have).findings
    assert (finding.check, finding.path, finding.actual) == (
        "drift.added",
        "/spec/template/spec/containers/0/resources/limits",
        {"nvidia.com/gpu": "1"},
    )


# -- what is not drift.added ---------------------------------------------------------------------


def test_a_field_added_by_a_controller_is_not_drift() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    deployment["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] = "3"
    fields = {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/max-replicas": {}}}}
    edited(deployment, "kube-controller-manager", fields)
    assert drift(want, have).findings == ()


def test_a_value_a_controller_rewrote_stays_added_by_the_person_who_added_it() -> None:
    # the operator's Update takes the value; the env var itself is still the person's
    want, have = env_added("kubectl-edit")
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    value = {'k:{"name":"MODEL_OVERRIDE"}': {"f:value": {}}}
    edited(deployment, "model-rollout-operator", container_fields("controller", {"f:env": value}))
    [finding] = drift(want, have).findings
    assert (finding.check, finding.actual) == ("drift.added", {"name": "MODEL_OVERRIDE"})
    assert finding.changed_by is not None and finding.changed_by.manager == "kubectl-edit"


def test_a_field_a_person_and_a_controller_both_own_is_the_controllers() -> None:
    # server-side apply shares a field between managers that set the same value
    want, have = env_added("kubectl-edit")
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    element = {'k:{"name":"MODEL_OVERRIDE"}': {"f:value": {}}}
    fields = container_fields("controller", {"f:env": element})
    edited(deployment, "model-rollout-operator", fields, steal=False)
    assert drift(want, have).findings == ()


def test_a_field_git_sets_that_a_person_changed_stays_drift_changed() -> None:
    want, have = desired(NGINX), live(NGINX)
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    ld_preload = pod(deployment)["containers"][0]["env"][2]
    assert ld_preload["name"] == "LD_PRELOAD"
    ld_preload["value"] = "/tmp/evil.so"
    value = {'k:{"name":"LD_PRELOAD"}': {"f:value": {}}}
    edited(deployment, "kubectl-edit", container_fields("controller", {"f:env": value}))
    [finding] = drift(want, have).findings
    assert (finding.check, finding.path, finding.actual) == (
        "drift.changed",
        "/spec/template/spec/containers/0/env/2/value",
        "/tmp/evil.so",
    )


def test_git_tracking_metadata_written_by_a_person_is_not_drift_added() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    deployment["metadata"]["labels"]["app.kubernetes.io/instance"] = "models"
    edited(
        deployment,
        "kubectl-label",
        {"f:metadata": {"f:labels": {"f:app.kubernetes.io/instance": {}}}},
    )
    assert drift(want, have).findings == ()


def test_an_ignore_rule_covers_drift_added_too() -> None:
    want, have = desired(KUBECTL), live(KUBECTL)
    deployment = find(have, "Deployment", "fraud-scorer")
    deployment["metadata"]["labels"]["canary"] = "manual"
    edited(deployment, "kubectl-label", {"f:metadata": {"f:labels": {"f:canary": {}}}})
    rule = IgnoreRule(kind="Deployment", pointers=("/metadata/labels/canary",))
    assert with_settings(want, have, ignore=(rule,)).findings == ()


# -- which list a manager is in -------------------------------------------------------------------


def hand_applied() -> tuple[Objects, Objects]:
    """Someone ran `kubectl apply -f` (client-side) with their own copy of the manifest,
    MODEL_OVERRIDE added: kubectl-client-side-apply owns it and the last-applied annotation,
    which now holds their copy."""
    want, have = desired(NGINX), live(NGINX)
    theirs = copy.deepcopy(find(want, "Deployment", "ingress-nginx-controller"))
    pod(theirs)["containers"][0]["env"].append(dict(OVERRIDE))
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    pod(deployment)["containers"][0]["env"].append(dict(OVERRIDE))
    deployment["metadata"]["annotations"][LAST_APPLIED] = json.dumps(theirs)
    fields = container_fields("controller", {"f:env": {'k:{"name":"MODEL_OVERRIDE"}': ENV_ELEMENT}})
    fields["f:metadata"] = {"f:annotations": {f"f:{LAST_APPLIED}": {}}}
    edited(deployment, "kubectl-client-side-apply", fields)
    return want, have


def test_kubectl_client_side_apply_counts_as_a_gitops_applier_by_default() -> None:
    # it is in both default lists; the GitOps list wins, so it never makes drift.added (an
    # applier that created the object owns every server default in its Update entry). What
    # it applied is still reported: the last-applied annotation holds it, so drift.removed
    assert "kubectl-client-side-apply" in DEFAULT_HUMAN_MANAGERS
    assert "kubectl-client-side-apply" in DEFAULT_GITOPS_MANAGERS
    want, have = hand_applied()
    [finding] = drift(want, have).findings
    assert (finding.check, finding.path, finding.actual) == (
        "drift.removed",
        "/spec/template/spec/containers/0/env/3",
        OVERRIDE,
    )
    assert finding.changed_by is not None
    assert finding.changed_by.manager == "kubectl-client-side-apply"


def test_kubectl_client_side_apply_is_a_person_once_it_is_not_a_gitops_manager() -> None:
    want, have = hand_applied()
    gitops = tuple(m for m in DEFAULT_GITOPS_MANAGERS if m != "kubectl-client-side-apply")
    [finding] = with_settings(want, have, gitops_managers=gitops).findings
    assert finding.check == "drift.added"
    assert finding.changed_by is not None
    assert finding.changed_by.manager == "kubectl-client-side-apply"


def test_server_defaults_owned_by_a_client_side_applier_are_not_drift_added() -> None:
    # objects Argo CD created before 2.5 carry a kubectl-client-side-apply Update entry that
    # owns every default (imagePullPolicy, dnsPolicy, ...): with the default lists, no finding
    want, have = desired("argocd-guestbook.yaml"), live("argocd-guestbook.yaml")
    for body in have:
        for entry in body["metadata"]["managedFields"]:
            if entry["manager"] == "argocd-controller":
                entry["manager"] = "kubectl-client-side-apply"
    assert drift(want, have).findings == ()


def test_human_managers_are_configurable() -> None:
    want, have = env_added("k9s")
    assert drift(want, have).findings == ()  # not a manager people drive, by default
    [finding] = with_settings(want, have, human_managers=(*DEFAULT_HUMAN_MANAGERS, "k9s")).findings
    assert (finding.check, finding.changed_by and finding.changed_by.manager) == (
        "drift.added",
        "k9s",
    )


def test_removed_wins_over_added_for_a_field_the_gitops_tool_applied() -> None:
    # Argo CD applied LD_PRELOAD (server-side); Git dropped it; someone then edited its value:
    # Git's tool is the witness that Git had it, so it is drift.removed, reported once
    want, have = desired(NGINX), live(NGINX)
    container = find(want, "Deployment", "ingress-nginx-controller")["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["env"] = [e for e in container["env"] if e["name"] != "LD_PRELOAD"]
    deployment = find(have, "Deployment", "ingress-nginx-controller")
    value = {'k:{"name":"LD_PRELOAD"}': {"f:value": {}}}
    edited(
        deployment, "kubectl-edit", container_fields("controller", {"f:env": value}), steal=False
    )
    [finding] = drift(want, have).findings
    assert (finding.check, finding.path) == (
        "drift.removed",
        "/spec/template/spec/containers/0/env/2",
    )


def test_config_file_sets_human_managers(tmp_path: Path) -> None:
    from auditor.config import load_config

    config = tmp_path / "auditor.yaml"
    config.write_text(
        "git: {repo: .}\n"
        "clusters: [{name: prod, snapshot: [live.yaml]}]\n"
        "drift: {human_managers: [kubectl-edit, k9s, Mozilla]}\n"
    )
    assert load_config(str(config)).drift.human_managers == ("kubectl-edit", "k9s", "Mozilla")


def test_human_managers_of_the_wrong_shape_are_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "git: {repo: .}\n"
        "clusters: [{name: prod, snapshot: [live.yaml]}]\n"
        "drift:\n"
        "  human_managers: kubectl-edit\n"
    )
    result = run_cli("audit", "--config", str(config))
    assert result.code == 2
    assert "auditor.yaml:4" in result.err and "human_managers" in result.err
    assert "Traceback" not in result.err


# -- through the CLI ------------------------------------------------------------------------------


def test_cli_reports_drift_added_with_class_and_who(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write(f"apps/{NGINX}", (REALWORLD / "desired" / NGINX).read_text())
    git_repo.commit("ingress-nginx")
    want, have = env_added("kubectl-edit")
    snapshot = snapshot_file(tmp_path / "live.json", have)
    result = drift_cli(git_repo.path, snapshot, "-o", "json")
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    assert (doc["status"], doc["summary"]["resources"]) == ("drifted", len(want))
    [finding] = doc["findings"]
    assert {
        k: finding[k] for k in ("check", "class", "severity", "path", "expected", "actual")
    } == {
        "check": "drift.added",
        "class": "config",
        "severity": "medium",
        "path": "/spec/template/spec/containers/0/env/3",
        "expected": None,
        "actual": OVERRIDE,
    }
    assert finding["changed_by"] == {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": EDITED_AT,
    }
    text = drift_cli(git_repo.path, snapshot)
    assert text.code == 1
    assert "/spec/template/spec/containers/0/env/3: not in Git, added live" in text.out
    assert f"(changed by kubectl-edit Update at {EDITED_AT})" in text.out
