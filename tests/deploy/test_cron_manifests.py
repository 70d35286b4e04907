"""deploy/cron as `kubectl apply -k` would send it: every manifest valid against the Kubernetes
API schemas (kubernetes-validate, offline), the pod hardened, the RBAC least-privilege (read
verbs on exactly the kinds in scope, bound only in the namespaces in scope) and equal to what
`auditor deploy rbac` derives from the shipped config."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from auditor.config import load_config
from auditor.pipeline import read_access
from auditor.rbac import READ_VERBS, rbac_manifests
from tests.conftest import PROJECT, run_cli

CRON = PROJECT / "deploy" / "cron"
# the oldest release the CronJob's fields need (podFailurePolicy is GA in 1.31), and the newest
# the validator knows
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def build(folder: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return build(CRON)


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [m for m in manifests if m["kind"] == kind]
    return found


def test_the_kustomization_builds_every_part(manifests: list[dict[str, Any]]) -> None:
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "RoleBinding",
            "RoleBinding",
            "PersistentVolumeClaim",
            "CronJob",
            "ConfigMap",
        ]
    )
    for manifest in manifests:
        if manifest["kind"] not in ("Namespace", "ClusterRole", "RoleBinding"):
            assert manifest["metadata"]["namespace"] == "auditor", manifest["kind"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_api_schema(
    manifests: list[dict[str, Any]], version: str
) -> None:
    for manifest in manifests:
        # strict: a misspelt field is an error, as `kubectl apply --validate=strict` makes it
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_rejects_what_the_api_server_would(
    manifests: list[dict[str, Any]],
) -> None:
    # guards the test above: a misplaced field must fail it
    cronjob = copy.deepcopy(one(manifests, "CronJob"))
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["runAsUser"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, VERSIONS[0], strict=True)


def test_the_cronjob_runs_a_cron_audit_once_at_a_time(manifests: list[dict[str, Any]]) -> None:
    spec = one(manifests, "CronJob")["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0
    [container] = job["template"]["spec"]["containers"]
    assert container["args"][:3] == [
        "audit",
        "--config=/etc/auditor/auditor.yaml",
        "--trigger=cron",
    ]
    # findings (1), a config error (2) and a bug (4) are answers a retry would repeat
    [fail] = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail["onExitCodes"]["values"] == [1, 2, 4]


def test_the_pod_is_non_root_read_only_and_limited(manifests: list[dict[str, Any]]) -> None:
    pod = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["serviceAccountName"] == one(manifests, "ServiceAccount")["metadata"]["name"]


def test_the_store_and_report_live_on_the_claim(manifests: list[dict[str, Any]]) -> None:
    pod = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    claim = one(manifests, "PersistentVolumeClaim")["metadata"]["name"]
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    config = yaml.safe_load(one(manifests, "ConfigMap")["data"]["auditor.yaml"])
    for path in (config["store"], config["report"]):
        assert Path(path).parent == Path(mount["mountPath"]), path


def test_the_clusterrole_only_reads(manifests: list[dict[str, Any]]) -> None:
    rules = one(manifests, "ClusterRole")["rules"]
    for rule in rules:
        assert tuple(rule["verbs"]) == READ_VERBS
        assert "*" not in rule["apiGroups"] + rule["resources"]
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule
    resources = {r for rule in rules for r in rule["resources"]}
    assert "secrets" not in resources  # the shipped config leaves Secrets out of scope


def test_the_role_is_bound_only_in_the_namespaces_in_scope(
    manifests: list[dict[str, Any]],
) -> None:
    config = yaml.safe_load(one(manifests, "ConfigMap")["data"]["auditor.yaml"])
    bindings = [m for m in manifests if m["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    # every kind in scope is namespaced: no cluster-wide grant at all
    assert {b["kind"] for b in bindings} == {"RoleBinding"}
    assert sorted(b["metadata"]["namespace"] for b in bindings) == config["scope"]["namespaces"]
    role = one(manifests, "ClusterRole")["metadata"]["name"]
    account = one(manifests, "ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]


def test_the_shipped_rbac_is_what_the_shipped_config_needs() -> None:
    shipped = [d for d in yaml.safe_load_all((CRON / "rbac.yaml").read_text()) if d]
    scope, access = read_access(load_config(CRON / "auditor.yaml"))
    assert shipped == rbac_manifests(access, scope.namespaces_to_list())


def test_deploy_rbac_prints_the_shipped_rbac() -> None:
    result = run_cli("deploy", "rbac", "--config", str(CRON / "auditor.yaml"))
    assert result.code == 0, result.err
    assert result.out == (CRON / "rbac.yaml").read_text()


def test_the_image_is_pinned_to_a_release(manifests: list[dict[str, Any]]) -> None:
    pod = one(manifests, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    name, _, tag = container["image"].rpartition(":")
    assert name and tag and tag != "latest"


def test_without_scope_kinds_the_role_covers_what_git_declares() -> None:
    # the example names no scope.kinds: Git's kinds are read, a Secret among them, and its
    # trust policy verifies models, so Pods join
    _, access = read_access(load_config(PROJECT / "examples" / "auditor.yaml"))
    resources = {(a.group, a.resource) for a in access}
    assert {("", "secrets"), ("", "pods"), ("serving.kserve.io", "inferenceservices")} <= resources
    assert ("", "pods") not in {
        (a.group, a.resource)
        for a in read_access(load_config(CRON / "auditor.yaml"))[1]  # no trust: section
    }
