"""Drift on real manifests from other projects, against what a real cluster stores for them.

`realworld/desired/` holds public manifests (each cites its repository, path and commit);
`realworld/live/` what `kubectl get -o yaml` returns once Argo CD applied them: the API
server's defaults and canonical quantities, KServe's webhook rewrites, server metadata,
managedFields (server-side or client-side apply, annotation or label tracking), the
controllers' own writes and status. Argo CD reports none of it as drift, so neither may we;
then real drifts are planted (kubectl edit, set image, patch, scale) and must come out with
exact paths, classes and attribution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRepo
from tests.drift.fixtures import (
    EDITED_AT,
    FILES,
    NAMESPACE,
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

# -- in sync: what Argo CD shows as Synced --------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_real_manifest_in_sync_with_its_live_object(name: str) -> None:
    result = drift(desired(name), live(name))
    assert [f.message for f in result.findings] == []
    assert result.summary.in_sync == result.summary.resources == len(desired(name))


def test_all_real_manifests_in_one_run_are_in_sync() -> None:
    want = [b for name in FILES for b in desired(name)]
    have = [b for name in FILES for b in live(name)]
    result = drift(want, have)
    assert [f.message for f in result.findings] == []
    assert result.summary.resources == len(want) == 41


def test_every_live_fixture_carries_server_state() -> None:
    # the fixtures are only a test if the live side really differs from Git
    for name in FILES:
        have = live(name)
        assert len(have) == len(desired(name))
        for body in have:
            metadata = body["metadata"]
            assert {"uid", "resourceVersion", "creationTimestamp", "managedFields"} <= set(metadata)


# -- the server's and webhooks' rewrites that are not drift, one by one ----------------------------


def test_kserve_webhook_moves_a_framework_predictor_to_model() -> None:
    [want], [have] = desired("kserve-sklearn-iris.yaml"), live("kserve-sklearn-iris.yaml")
    assert "sklearn" in want["spec"]["predictor"] and "sklearn" not in have["spec"]["predictor"]
    assert have["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}
    assert drift([want], [have]).findings == ()


def test_kserve_webhook_fields_owned_by_the_applier_are_not_removed() -> None:
    # the API server may attribute the webhook's rewrite to the applier: Argo CD's Apply entry
    # then owns model (with `name: ""` and `resources: {}`), which Git never said
    [want], [have] = desired("kserve-sklearn-iris.yaml"), live("kserve-sklearn-iris.yaml")
    entry = have["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("argocd-controller", "Apply")
    entry["fieldsV1"]["f:spec"]["f:predictor"] = {
        ".": {},
        "f:model": {
            ".": {},
            "f:modelFormat": {".": {}, "f:name": {}},
            "f:name": {},
            "f:resources": {},
            "f:storageUri": {},
        },
    }
    assert drift([want], [have]).findings == ()


def test_kserve_webhook_renames_the_transformer_container() -> None:
    [want] = desired("kserve-torchserve-transformer.yaml")
    [have] = live("kserve-torchserve-transformer.yaml")
    assert want["spec"]["transformer"]["containers"][0]["name"] == "kfserving-container"
    assert have["spec"]["transformer"]["containers"][0]["name"] == "kserve-container"
    assert drift([want], [have]).findings == ()


def test_a_framework_key_kept_live_is_compared_as_is() -> None:
    # KServe before 0.8, or ModelMesh: no rewrite, so a changed storageUri stays visible there
    [want], [have] = desired("kserve-sklearn-iris.yaml"), live("kserve-sklearn-iris.yaml")
    have["spec"]["predictor"] = {"sklearn": {"storageUri": "gs://kfserving-samples/models/other"}}
    [finding] = drift([want], [have]).findings
    assert (finding.path, finding.drift_class) == ("/spec/predictor/sklearn/storageUri", "model")


def test_aggregated_cluster_role_rules_belong_to_the_aggregation_controller() -> None:
    want, have = desired("kubeflow-roles.yaml"), live("kubeflow-roles.yaml")
    assert find(want, "ClusterRole", "kubeflow-admin")["rules"] == []
    assert len(find(have, "ClusterRole", "kubeflow-admin")["rules"]) == 3
    assert drift(want, have).findings == ()


def test_rules_of_a_plain_cluster_role_are_still_compared() -> None:
    want, have = desired("kubeflow-roles.yaml"), live("kubeflow-roles.yaml")
    role = find(have, "ClusterRole", "kubeflow-kubernetes-admin")
    role["rules"][0]["verbs"] = ["create", "delete"]
    [finding] = drift(want, have).findings
    assert (finding.ref.name, finding.path) == ("kubeflow-kubernetes-admin", "/rules/0/verbs")


def test_omitempty_zero_values_are_dropped_by_the_api_server() -> None:
    want = desired("ingress-nginx-controller.yaml")
    assert find(want, "Deployment", "ingress-nginx-controller")["spec"]["minReadySeconds"] == 0
    deployment = find(
        live("ingress-nginx-controller.yaml"), "Deployment", "ingress-nginx-controller"
    )
    assert "minReadySeconds" not in deployment["spec"]
    assert drift(want, live("ingress-nginx-controller.yaml")).findings == ()


def test_argo_cd_label_tracking_overwrites_the_instance_label() -> None:
    # Argo CD's label tracking sets app.kubernetes.io/instance to the app's name ("ingress")
    want, have = desired("ingress-nginx-admission.yaml"), live("ingress-nginx-admission.yaml")
    labels = find(have, "IngressClass", "nginx")["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "ingress"
    assert drift(want, have).findings == ()


def test_the_instance_label_edited_by_someone_else_is_drift() -> None:
    want, have = desired("ingress-nginx-admission.yaml"), live("ingress-nginx-admission.yaml")
    ingress_class = find(have, "IngressClass", "nginx")
    ingress_class["metadata"]["labels"]["app.kubernetes.io/instance"] = "manual"
    labels_owned: dict[str, Any] = {
        "f:metadata": {"f:labels": {"f:app.kubernetes.io/instance": {}}}
    }
    edited(ingress_class, "kubectl-label", labels_owned)
    # client-side apply: the last-applied annotation still holds Argo CD's value
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.changed",
        "IngressClass",
        "nginx",
        "/metadata/labels/app.kubernetes.io~1instance",
        "config",
        "medium",
        "ingress-nginx",
        "manual",
        ("kubectl-label", "Update", EDITED_AT),
    )


def test_hpa_in_autoscaling_v1_against_a_v2_read() -> None:
    # the autoscaling/v1 spelling of content/en/examples/application/hpa/php-apache.yaml
    # (kubernetes/website), read back as autoscaling/v2 by `kubectl get hpa -o yaml`
    have = find(live("k8s-php-apache-hpa.yaml"), "HorizontalPodAutoscaler", "php-apache")
    want: dict[str, Any] = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "php-apache"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "php-apache"},
            "minReplicas": 1,
            "maxReplicas": 10,
            "targetCPUUtilizationPercentage": 50,
        },
    }
    assert drift([want], [have]).findings == ()
    want["spec"]["targetCPUUtilizationPercentage"] = 70
    [finding] = drift([want], [have]).findings
    assert (finding.path, finding.drift_class, finding.expected, finding.actual) == (
        "/spec/metrics/0/resource/target/averageUtilization",
        "scale",
        70,
        50,
    )


# -- planted drifts: exact findings ----------------------------------------------------------------


def test_model_storage_uri_changed_with_kubectl_edit() -> None:
    # Git says the per-framework `sklearn:`; live holds KServe's `model:`
    [want], [have] = desired("kserve-sklearn-iris.yaml"), live("kserve-sklearn-iris.yaml")
    have["spec"]["predictor"]["model"]["storageUri"] = "gs://attacker/models/iris"
    fields: dict[str, Any] = {"f:spec": {"f:predictor": {"f:model": {"f:storageUri": {}}}}}
    edited(have, "kubectl-edit", fields)
    [finding] = drift([want], [have]).findings
    assert summary(finding) == (
        "drift.changed",
        "InferenceService",
        "sklearn-iris",
        "/spec/predictor/model/storageUri",
        "model",
        "critical",
        "gs://kfserving-samples/models/sklearn/iris",
        "gs://attacker/models/iris",
        ("kubectl-edit", "Update", EDITED_AT),
    )


def test_image_changed_with_kubectl_set_image() -> None:
    # client-side apply: Argo CD's Update entry owned the image until kubectl set took it
    want, have = desired("argocd-guestbook.yaml"), live("argocd-guestbook.yaml")
    deployment = find(have, "Deployment", "guestbook-ui")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/guestbook:0.3"
    container: dict[str, Any] = {"k:" + json.dumps({"name": "guestbook-ui"}): {"f:image": {}}}
    fields = {"f:spec": {"f:template": {"f:spec": {"f:containers": container}}}}
    edited(deployment, "kubectl-set", fields)
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.changed",
        "Deployment",
        "guestbook-ui",
        "/spec/template/spec/containers/0/image",
        "runtime",
        "high",
        "gcr.io/heptio-images/ks-guestbook-demo:0.2",
        "evil/guestbook:0.3",
        ("kubectl-set", "Update", EDITED_AT),
    )
    assert finding.details["key"] == {"name": "guestbook-ui"}


def test_canary_traffic_percent_patched() -> None:
    [want], [have] = desired("kserve-flower-canary.yaml"), live("kserve-flower-canary.yaml")
    have["spec"]["predictor"]["canaryTrafficPercent"] = 100
    edited(have, "kubectl-patch", {"f:spec": {"f:predictor": {"f:canaryTrafficPercent": {}}}})
    [finding] = drift([want], [have]).findings
    assert summary(finding) == (
        "drift.changed",
        "InferenceService",
        "flower-sample",
        "/spec/predictor/canaryTrafficPercent",
        "traffic",
        "high",
        20,
        100,
        ("kubectl-patch", "Update", EDITED_AT),
    )


def test_replicas_edited_without_an_hpa() -> None:
    want, have = desired("k8s-zookeeper.yaml"), live("k8s-zookeeper.yaml")
    statefulset = find(have, "StatefulSet", "zk")
    statefulset["spec"]["replicas"] = 1
    edited(statefulset, "kubectl-edit", {"f:spec": {"f:replicas": {}}})
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.changed",
        "StatefulSet",
        "zk",
        "/spec/replicas",
        "scale",
        "medium",
        3,
        1,
        ("kubectl-edit", "Update", EDITED_AT),
    )


def test_replicas_of_an_hpa_target_are_the_hpas() -> None:
    want, have = desired("k8s-php-apache-hpa.yaml"), live("k8s-php-apache-hpa.yaml")
    deployment = find(have, "Deployment", "php-apache")
    deployment["spec"]["replicas"] = 7
    edited(deployment, "kube-controller-manager", {"f:spec": {"f:replicas": {}}})
    assert drift(want, have).findings == ()


def test_config_map_key_edited() -> None:
    want, have = desired("k8s-mysql-configmap.yaml"), live("k8s-mysql-configmap.yaml")
    [configmap] = have
    configmap["data"]["primary.cnf"] = "[mysqld]\nlog-bin\nskip-grant-tables\n"
    edited(configmap, "kubectl-edit", {"f:data": {"f:primary.cnf": {}}})
    [finding] = drift(want, have).findings
    assert summary(finding)[:6] == (
        "drift.changed",
        "ConfigMap",
        "mysql",
        "/data/primary.cnf",
        "config",
        "medium",
    )
    assert summary(finding)[8] == ("kubectl-edit", "Update", EDITED_AT)


def test_env_var_removed_from_git_still_owned_by_argo_cd() -> None:
    # server-side apply: the Apply entry still owns LD_PRELOAD, which the new commit dropped
    want, have = desired("ingress-nginx-controller.yaml"), live("ingress-nginx-controller.yaml")
    container = find(want, "Deployment", "ingress-nginx-controller")["spec"]["template"]["spec"][
        "containers"
    ][0]
    container["env"] = [e for e in container["env"] if e["name"] != "LD_PRELOAD"]
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.removed",
        "Deployment",
        "ingress-nginx-controller",
        "/spec/template/spec/containers/0/env/2",
        "config",
        "medium",
        None,
        {"name": "LD_PRELOAD", "value": "/usr/local/lib/libmimalloc.so"},
        ("argocd-controller", "Apply", "2026-11-19T18:00:00Z"),
    )
    assert finding.details == {"source": "managedFields", "key": {"name": "LD_PRELOAD"}}


def test_runtime_annotation_removed_from_git_still_owned_by_argo_cd() -> None:
    want = desired("kserve-sklearnserver-runtime.yaml")
    have = live("kserve-sklearnserver-runtime.yaml")
    del want[0]["spec"]["annotations"]["prometheus.kserve.io/path"]
    [finding] = drift(want, have).findings
    assert summary(finding) == (
        "drift.removed",
        "ClusterServingRuntime",
        "kserve-sklearnserver",
        "/spec/annotations/prometheus.kserve.io~1path",
        "config",
        "medium",
        None,
        "/metrics",
        ("argocd-controller", "Apply", "2026-11-19T18:00:00Z"),
    )


def test_annotation_removed_from_git_after_client_side_apply() -> None:
    # client-side apply: the last-applied annotation is the witness
    want, have = desired("argocd-guestbook.yaml"), live("argocd-guestbook.yaml")
    del find(want, "Deployment", "guestbook-ui")["metadata"]["annotations"][
        "app.komodor.com/guestbook.ref"
    ]
    [finding] = drift(want, have).findings
    assert summary(finding)[:8] == (
        "drift.removed",
        "Deployment",
        "guestbook-ui",
        "/metadata/annotations/app.komodor.com~1guestbook.ref",
        "config",
        "medium",
        None,
        "e513b3ba0fee5ddae7c46323a04e86b659b3c456",
    )
    assert finding.details == {"source": "last-applied"}
    assert summary(finding)[8] == ("argocd-controller", "Update", "2026-11-19T18:00:00Z")


# -- the CLI on a real Git repository --------------------------------------------------------------


def test_cli_on_real_manifests_in_sync_then_with_planted_drift(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    for name in FILES:
        git_repo.write(f"apps/{name}", (REALWORLD / "desired" / name).read_text())
    commit = git_repo.commit("real-world manifests")
    items = [b for name in FILES for b in live(name)]
    snapshot = tmp_path / "live.json"

    def run(objects: list[dict[str, Any]]) -> tuple[int, dict[str, Any], str]:
        result = drift_cli(git_repo.path, snapshot_file(snapshot, objects), "-o", "json")
        return result.code, json.loads(result.out) if result.out.strip() else {}, result.err

    code, doc, err = run(items)
    assert code == 0, err
    assert (doc["commit"], doc["status"], doc["findings"]) == (commit, "in_sync", [])
    assert doc["summary"]["in_sync"] == doc["summary"]["resources"] == 41

    isvc = find(items, "InferenceService", "torchserve-transformer")
    isvc["spec"]["transformer"]["containers"][0]["image"] = (
        "kserve/torchserve-image-transformer:dev"
    )
    container: dict[str, Any] = {"k:" + json.dumps({"name": "kserve-container"}): {"f:image": {}}}
    edited(isvc, "kubectl-edit", {"f:spec": {"f:transformer": {"f:containers": container}}})
    code, doc, err = run(items)
    assert code == 1, err
    assert doc["status"] == "drifted"
    assert doc["summary"] == {
        "resources": 41,
        "in_sync": 40,
        "drifted": 1,
        "missing": 0,
        "unmanaged": 0,
    }
    [finding] = doc["findings"]
    assert {
        k: finding[k] for k in ("check", "class", "severity", "path", "expected", "actual")
    } == {
        "check": "drift.changed",
        "class": "runtime",
        "severity": "high",
        "path": "/spec/transformer/containers/0/image",
        "expected": "kserve/torchserve-image-transformer:latest",
        "actual": "kserve/torchserve-image-transformer:dev",
    }
    assert finding["resource"] == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "namespace": NAMESPACE,
        "name": "torchserve-transformer",
    }
    assert finding["changed_by"] == {
        "manager": "kubectl-edit",
        "operation": "Update",
        "time": EDITED_AT,
    }
