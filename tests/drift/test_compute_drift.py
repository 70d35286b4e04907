"""compute_drift end to end: statuses, missing, unmanaged, Secrets, severity, order, identity."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from auditor.checks import apply_overrides
from auditor.config import DriftSettings
from auditor.drift import compute_drift
from auditor.model import DriftSummary
from auditor.scope import KindSelector, Scope
from tests.drift.builders import (
    b64,
    configmap_desired,
    configmap_live,
    deployment_desired,
    deployment_live,
    desired,
    isvc_desired,
    isvc_live,
    last_applied,
    live,
    run,
    server_metadata,
    service_desired,
    service_live,
)


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


def stray(body: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    out = server_metadata(copy.deepcopy(body))
    out["metadata"]["name"] = name
    out.update(extra)
    return out


# -- missing and unmanaged --------------------------------------------------------------------


def test_declared_but_not_live_is_missing() -> None:
    result = run([isvc_desired(), configmap_desired()], [configmap_live()])
    [finding] = result.findings
    assert finding.check == "drift.missing"
    assert finding.path == ""
    assert finding.drift_class == "model"  # an InferenceService
    assert finding.severity == "high"  # DEFAULT_CHECK_SEVERITY
    assert finding.message.startswith("InferenceService ml/fraud-scorer: declared in Git (")
    assert finding.details["origin"] == "apps/ml/manifests.yaml@3f1c2a9"
    assert result.summary == DriftSummary(resources=2, in_sync=1, drifted=0, missing=1, unmanaged=0)


def test_live_not_declared_and_not_owned_is_unmanaged() -> None:
    manual = stray(deployment_desired(), "fraud-api-manual")
    result = run([deployment_desired()], [deployment_live(), manual])
    [finding] = result.findings
    assert finding.check == "drift.unmanaged"
    assert finding.ref.name == "fraud-api-manual"
    assert finding.drift_class == "config"
    assert "not declared in Git" in finding.message
    assert result.summary == DriftSummary(resources=2, in_sync=1, drifted=0, missing=0, unmanaged=1)
    assert [s.status for s in result.statuses] == ["in_sync", "unmanaged"]
    assert result.statuses[1].desired_origin is None


def test_unmanaged_inference_service_is_model_class() -> None:
    manual = stray(isvc_desired(), "shadow-scorer")
    [finding] = run([isvc_desired()], [isvc_live(), manual]).findings
    assert (finding.check, finding.drift_class) == ("drift.unmanaged", "model")


def test_owned_objects_are_not_unmanaged() -> None:
    owned = stray(deployment_desired(), "fraud-scorer-predictor-00002-deployment")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "name": "x",
            "uid": "1",
            "controller": True,
        }
    ]
    assert run([deployment_desired()], [deployment_live(), owned]).findings == ()


def test_cluster_made_objects_are_not_unmanaged() -> None:
    root_ca = stray(configmap_desired(), "kube-root-ca.crt", data={"ca.crt": "-----BEGIN..."})
    token = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "builder-token-x", "namespace": "ml"},
        "type": "kubernetes.io/service-account-token",
        "data": {"token": b64("eyJhbGciOi")},
    }
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": "ml"},
    }
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "fraud-api", "namespace": "ml"},
    }
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "fraud-api-x7k2p", "namespace": "ml"},
    }
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "fraud-api.17f", "namespace": "ml"},
    }
    live = [configmap_live(), root_ca, token, sa, endpoints, slice_, event]
    scope = Scope(
        kinds=tuple(
            KindSelector.parse(k)
            for k in (
                "ConfigMap",
                "Secret",
                "ServiceAccount",
                "Endpoints",
                "EndpointSlice",
                "Event",
            )
        ),
        namespaces=("ml",),
    )
    result = run([configmap_desired()], live, scope=scope)
    assert result.findings == ()


def test_objects_out_of_scope_are_not_unmanaged() -> None:
    other_ns = stray(configmap_desired(), "cfg")
    other_ns["metadata"]["namespace"] = "kube-system"
    other_kind = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "p", "namespace": "ml"},
    }
    assert run([configmap_desired()], [configmap_live(), other_ns, other_kind]).findings == ()


# -- identity -------------------------------------------------------------------------------


def test_api_version_difference_is_not_drift_and_findings_carry_the_live_ref() -> None:
    want = deployment_desired()
    want["apiVersion"] = "apps/v1beta2"  # an old manifest; the cluster serves apps/v1
    have = deployment_live()
    pod(have)["containers"][0]["image"] = "x"
    [finding] = run([want], [have]).findings
    assert finding.ref.api_version == "apps/v1"
    assert finding.ref.cluster == "prod-eu"


def test_statuses_name_every_resource_with_its_origin() -> None:
    have = deployment_live()
    have["spec"]["replicas"] = 3
    result = run([deployment_desired(), service_desired(), isvc_desired()], [have, service_live()])
    statuses = {(s.ref.kind, s.status, s.desired_origin) for s in result.statuses}
    origin = "apps/ml/manifests.yaml@3f1c2a9"
    assert statuses == {
        ("Deployment", "drifted", origin),
        ("Service", "in_sync", origin),
        ("InferenceService", "missing", origin),
    }
    assert result.summary == DriftSummary(resources=3, in_sync=1, drifted=1, missing=1, unmanaged=0)


# -- Secrets --------------------------------------------------------------------------------

PLAINTEXT_GIT = "s3cr3t-in-git-do-not-leak"
PLAINTEXT_LIVE = "s3cr3t-edited-live-do-not-leak"


def secret(value_b64: str | None = None, string_value: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-store", "namespace": "ml"},
        "type": "Opaque",
    }
    if value_b64 is not None:
        body["data"] = {"AWS_SECRET_ACCESS_KEY": value_b64}
    if string_value is not None:
        body["stringData"] = {"AWS_SECRET_ACCESS_KEY": string_value}
    return body


def test_changed_secret_value_is_reported_with_digests_only() -> None:
    want = secret(string_value=PLAINTEXT_GIT)
    have = last_applied(want, server_metadata(secret(value_b64=b64(PLAINTEXT_LIVE))))
    result = run([want], [have])
    [finding] = result.findings
    assert finding.path == "/data/AWS_SECRET_ACCESS_KEY"
    assert finding.drift_class == "config"
    assert str(finding.expected).startswith("hmac-sha256:") and str(finding.actual).startswith(
        "hmac-sha256:"
    )
    text = json.dumps([f.to_json() for f in result.findings])
    for planted in (PLAINTEXT_GIT, PLAINTEXT_LIVE, b64(PLAINTEXT_GIT), b64(PLAINTEXT_LIVE)):
        assert planted not in text


def test_same_secret_from_string_data_and_data_is_in_sync() -> None:
    want = secret(string_value=PLAINTEXT_GIT)
    have = server_metadata(secret(value_b64=b64(PLAINTEXT_GIT)))
    assert run([want], [have]).findings == ()


# -- severity -------------------------------------------------------------------------------


def image_and_replicas_drift() -> tuple[dict[str, Any], dict[str, Any]]:
    have = deployment_live()
    have["spec"]["replicas"] = 9
    pod(have)["containers"][0]["image"] = "x"
    return deployment_desired(), have


def test_severity_follows_the_class_by_default() -> None:
    want, have = image_and_replicas_drift()
    assert {f.drift_class: f.severity for f in run([want], [have]).findings} == {
        "scale": "medium",
        "runtime": "high",
    }


def test_class_severity_override() -> None:
    want, have = image_and_replicas_drift()
    settings = DriftSettings(class_severity={"runtime": "critical", "scale": "info"})
    assert {f.drift_class: f.severity for f in run([want], [have], settings).findings} == {
        "scale": "info",
        "runtime": "critical",
    }


def test_check_severity_override_wins_over_class() -> None:
    want, have = image_and_replicas_drift()
    changed = apply_overrides(run([want], [have]).findings, {"drift.changed": "low"})
    assert {f.severity for f in changed} == {"low"}
    missing = run([isvc_desired()], [])
    assert missing.findings[0].severity == "high"
    overridden = apply_overrides(missing.findings, {"drift.missing": "critical"})
    assert overridden[0].severity == "critical"


# -- determinism ----------------------------------------------------------------------------


def many() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    want, have = [], []
    for i in range(6):
        for ns in ("ml", "ab", "zz"):
            d = deployment_desired()
            d["metadata"].update(name=f"api-{i}", namespace=ns)
            lv = deployment_live(d)
            lv["spec"]["replicas"] = 5
            pod(lv)["containers"][0]["image"] = "x"
            c = configmap_desired()
            c["metadata"].update(name=f"cfg-{i}", namespace=ns)
            want += [d, c]
            have += [lv] if i % 3 else []
            have += [stray(c, f"manual-{i}")]
    return want, have


def test_findings_are_sorted_by_namespace_kind_name_path_whatever_the_input_order() -> None:
    want, have = many()
    first = run(want, have)
    keys = [(f.ref.namespace, f.ref.kind, f.ref.name, f.path) for f in first.findings]
    assert keys == sorted(keys)
    rng = random.Random(7)
    for _ in range(3):
        rng.shuffle(want)
        rng.shuffle(have)
        again = run(want, have)
        assert [f.to_json() for f in again.findings] == [f.to_json() for f in first.findings]
        assert again.statuses == first.statuses


def test_fingerprints_are_stable_across_runs() -> None:
    want, have = image_and_replicas_drift()
    one = [f.fingerprint for f in run([want], [have]).findings]
    have["metadata"]["resourceVersion"] = "999999"  # a later run, same drift
    pod(have)["containers"][0]["image"] = "y"  # even with another wrong value
    two = [f.fingerprint for f in run([want], [have]).findings]
    assert one == two
    assert len(set(one)) == 2


def test_inputs_are_not_mutated() -> None:
    want, have = image_and_replicas_drift()
    d, lv = desired(want), live(last_applied(want, have))
    before = (copy.deepcopy(dict(d.body)), copy.deepcopy(dict(lv.body)))
    compute_drift([d], [lv], scope=Scope.from_desired([d]), settings=DriftSettings())
    assert (d.body, lv.body) == before
