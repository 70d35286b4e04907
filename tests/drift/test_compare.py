"""drift.changed: every field Git sets is compared; what only the server sets is not drift."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.drift.compare import compare_bodies
from auditor.drift.normalize import QUANTITY_PARENTS
from auditor.drift.pointer import to_pointer, tokens_of
from tests.drift.builders import (
    configmap_desired,
    configmap_live,
    deployment_desired,
    deployment_live,
    isvc_desired,
    isvc_live,
    run,
    service_desired,
    service_live,
)


def changed_paths(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    return [to_pointer(tokens_of(c.steps)) for c in compare_bodies(want, have, QUANTITY_PARENTS)]


def pod(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


# -- server defaults are not drift ------------------------------------------------------


@pytest.mark.parametrize(
    ("want", "have"),
    [
        (deployment_desired, deployment_live),
        (service_desired, service_live),
        (configmap_desired, configmap_live),
        (isvc_desired, isvc_live),
    ],
    ids=["Deployment", "Service", "ConfigMap", "InferenceService"],
)
def test_server_defaults_are_not_drift(want: Any, have: Any) -> None:
    result = run([want()], [have()])
    assert result.findings == ()
    assert result.summary.in_sync == 1


def test_canonicalized_quantities_are_not_drift() -> None:
    # Git says cpu "0.5" and memory "1024Mi"; the API server stores "500m" and "1Gi"
    have = deployment_live()
    assert pod(have)["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert run([deployment_desired()], [have]).findings == ()


def test_git_null_means_not_set() -> None:
    want = deployment_desired()
    want["spec"]["template"]["spec"]["nodeSelector"] = None
    assert want["metadata"]["creationTimestamp"] is None
    assert run([want], [deployment_live()]).findings == ()


@pytest.mark.parametrize("empty", [{}, [], ""])
def test_empty_in_git_and_absent_live_is_not_drift(empty: Any) -> None:
    want = deployment_desired()
    pod(want)["containers"][0]["workingDir"] = empty
    pod(want)["tolerations"] = empty
    assert run([want], [deployment_live(deployment_desired())]).findings == ()


def test_empty_string_in_git_against_a_live_value_is_drift() -> None:
    # "" only means "unset" when live has nothing there either
    want, have = {"spec": {"a": ""}}, {"spec": {"a": "x"}}
    assert changed_paths(want, have) == ["/spec/a"]


def test_server_owned_metadata_and_status_are_ignored() -> None:
    want = configmap_desired()
    want["metadata"].update({"uid": "other", "resourceVersion": "1", "generation": 9})
    want["status"] = {"phase": "whatever"}
    want["apiVersion"] = "v1"
    assert run([want], [configmap_live()]).findings == ()


def test_namespace_is_identity_not_a_compared_field() -> None:
    want, have = configmap_desired(), configmap_live()
    del want["metadata"]["namespace"]
    assert changed_paths(want, have) == []


def test_numbers_1_and_1_0_are_equal() -> None:
    assert changed_paths({"spec": {"weight": 1}}, {"spec": {"weight": 1.0}}) == []


def test_string_target_port_equals_int_target_port() -> None:
    have = service_live()
    assert have["spec"]["ports"][0]["targetPort"] == 8080
    assert service_desired()["spec"]["ports"][0]["targetPort"] == "8080"
    assert run([service_desired()], [have]).findings == ()


def test_quoted_container_port_equals_int() -> None:
    want = deployment_desired()
    pod(want)["containers"][0]["ports"][0]["containerPort"] = "8080"
    assert run([want], [deployment_live()]).findings == ()


# -- drift is reported at the leaf ------------------------------------------------------


def test_changed_image_is_reported_at_the_leaf() -> None:
    have = deployment_live()
    pod(have)["containers"][0]["image"] = "ghcr.io/acme/fraud-api:1.5.0-hotfix"
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.check == "drift.changed"
    assert finding.path == "/spec/template/spec/containers/0/image"
    assert finding.expected == "ghcr.io/acme/fraud-api:1.4.2"
    assert finding.actual == "ghcr.io/acme/fraud-api:1.5.0-hotfix"
    assert finding.details["key"] == {"name": "api"}


def test_quantity_that_really_changed_is_drift_with_original_values() -> None:
    have = deployment_live()
    pod(have)["containers"][0]["resources"]["limits"]["memory"] = "1G"
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.path == "/spec/template/spec/containers/0/resources/limits/memory"
    assert (finding.expected, finding.actual) == ("1Gi", "1G")


def test_field_absent_live_is_drift_with_actual_null() -> None:
    have = deployment_live()
    del pod(have)["containers"][0]["readinessProbe"]
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.path == "/spec/template/spec/containers/0/readinessProbe"
    assert finding.expected == {"httpGet": {"path": "/healthz", "port": "http"}}
    assert finding.actual is None


def test_label_changed_live() -> None:
    have = deployment_live()
    have["metadata"]["labels"]["team"] = "fraud"
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.path == "/metadata/labels/team"


def test_pointer_tokens_are_escaped() -> None:
    want = {"metadata": {"annotations": {"example.com/a~b": "1"}}}
    have = {"metadata": {"annotations": {"example.com/a~b": "2"}}}
    assert changed_paths(want, have) == ["/metadata/annotations/example.com~1a~0b"]


# -- lists --------------------------------------------------------------------------------


def test_keyed_list_reordering_is_not_drift() -> None:
    have = deployment_live()
    container = pod(have)["containers"][0]
    container["env"].reverse()
    pod(have)["volumes"].insert(0, {"name": "kube-api-access", "projected": {"sources": []}})
    container["volumeMounts"].insert(0, {"name": "kube-api-access", "mountPath": "/var/run/x"})
    assert run([deployment_desired()], [have]).findings == ()


def test_injected_sidecar_container_is_not_drift() -> None:
    have = deployment_live()
    pod(have)["containers"].insert(
        0,
        {
            "name": "istio-proxy",
            "image": "docker.io/istio/proxyv2:1.22.1",
            "args": ["proxy", "sidecar"],
        },
    )
    pod(have)["initContainers"] = [
        {"name": "istio-init", "image": "docker.io/istio/proxyv2:1.22.1"}
    ]
    assert run([deployment_desired()], [have]).findings == ()


def test_pointer_uses_the_desired_index_of_a_keyed_element() -> None:
    want, have = deployment_desired(), deployment_live()
    pod(have)["containers"].insert(0, {"name": "istio-proxy", "image": "proxy"})
    env = pod(have)["containers"][1]["env"]
    env.reverse()
    env[0]["value"] = "debug"  # MODEL_NAME went first; LOG_LEVEL is now env[1] live
    env[1]["value"] = "debug"
    paths = sorted(f.path for f in run([want], [have]).findings)
    assert paths == [
        "/spec/template/spec/containers/0/env/0/value",
        "/spec/template/spec/containers/0/env/1/value",
    ]


def test_keyed_element_missing_live_is_changed_at_the_element() -> None:
    have = deployment_live()
    pod(have)["containers"][0]["env"] = [{"name": "LOG_LEVEL", "value": "info"}]
    [finding] = run([deployment_desired()], [have]).findings
    assert finding.path == "/spec/template/spec/containers/0/env/1"
    assert finding.expected == {"name": "MODEL_NAME", "value": "fraud"}
    assert finding.actual is None
    assert finding.details["key"] == {"name": "MODEL_NAME"}
    assert '(name "MODEL_NAME")' in finding.message


def test_container_ports_are_keyed_by_port_and_protocol() -> None:
    want = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 9000}, {"containerPort": 8080}]}
            ]
        }
    }
    have: dict[str, Any] = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "ports": [
                        {"containerPort": 8080, "protocol": "TCP"},
                        {"containerPort": 9000, "protocol": "TCP"},
                    ],
                }
            ]
        }
    }
    assert changed_paths(want, have) == []
    have["spec"]["containers"][0]["ports"][1]["protocol"] = "UDP"
    assert changed_paths(want, have) == ["/spec/containers/0/ports/0"]


def test_service_ports_are_keyed_by_port() -> None:
    have = service_live()
    have["spec"]["ports"].reverse()
    assert run([service_desired()], [have]).findings == ()
    have["spec"]["ports"][0]["targetPort"] = 9001  # grpc, desired index 1
    [finding] = run([service_desired()], [have]).findings
    assert finding.path == "/spec/ports/1/targetPort"
    assert finding.details["key"] == {"port": 9000}


def test_crd_lists_of_uniquely_named_maps_are_keyed_by_name() -> None:
    want = {
        "spec": {"predictors": [{"name": "main", "replicas": 2}, {"name": "canary", "replicas": 1}]}
    }
    have = {
        "spec": {
            "predictors": [
                {"name": "canary", "replicas": 1, "traffic": 10},
                {"name": "main", "replicas": 2, "traffic": 90},
            ]
        }
    }
    assert changed_paths(want, have) == []


def test_positional_list_elements_are_compared_as_subsets() -> None:
    want = {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists"}]}}
    have = {"spec": {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}}
    assert changed_paths(want, have) == []
    have["spec"]["tolerations"][0]["operator"] = "Equal"
    assert changed_paths(want, have) == ["/spec/tolerations/0/operator"]


def test_positional_list_of_different_length_is_drift_on_the_list() -> None:
    want = {"spec": {"tolerations": [{"key": "gpu"}]}}
    have = {"spec": {"tolerations": [{"key": "gpu"}, {"key": "spot"}]}}
    assert changed_paths(want, have) == ["/spec/tolerations"]


@pytest.mark.parametrize(
    ("live_args", "drift"),
    [
        (["--port", "8080", "--workers", "4"], False),
        (["--port", "8080", "--workers", "8"], True),
        (["--workers", "4", "--port", "8080"], True),  # order matters in args
        (["--port", "8080"], True),
    ],
)
def test_lists_of_scalars_are_compared_exactly(live_args: list[str], drift: bool) -> None:
    have = deployment_live()
    pod(have)["containers"][0]["args"] = live_args
    findings = run([deployment_desired()], [have]).findings
    assert [f.path for f in findings] == (
        ["/spec/template/spec/containers/0/args"] if drift else []
    )


def test_type_mismatch_is_drift_at_the_field() -> None:
    assert changed_paths({"spec": {"a": {"b": 1}}}, {"spec": {"a": "text"}}) == ["/spec/a"]
    assert changed_paths({"spec": {"a": [1]}}, {"spec": {"a": {"b": 1}}}) == ["/spec/a"]


def test_desired_body_is_not_mutated() -> None:
    want, have = deployment_desired(), deployment_live()
    pod(have)["containers"][0]["image"] = "x"
    before = repr(want), repr(have)
    compare_bodies(want, have, QUANTITY_PARENTS)
    assert (repr(want), repr(have)) == before


@pytest.mark.parametrize(
    ("field", "elements"),
    [
        ("containers", [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
        ("initContainers", [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
        ("ephemeralContainers", [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
        ("env", [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
        ("volumes", [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]),
        ("volumeMounts", [{"name": "a", "mountPath": "/a"}, {"name": "a", "mountPath": "/b"}]),
        (
            "volumeDevices",
            [{"name": "a", "devicePath": "/dev/a"}, {"name": "b", "devicePath": "/dev/b"}],
        ),
        ("imagePullSecrets", [{"name": "a"}, {"name": "b"}]),
        (
            "hostAliases",
            [{"ip": "10.0.0.1", "hostnames": ["a"]}, {"ip": "10.0.0.2", "hostnames": ["b"]}],
        ),
        ("conditions", [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "True"}]),
        ("predictors", [{"name": "main", "replicas": 1}, {"name": "canary", "replicas": 1}]),
    ],
)
def test_keyed_lists_match_by_key_not_position(field: str, elements: list[dict[str, Any]]) -> None:
    want = {"spec": {field: elements}}
    # reversed, and each live element carrying a server default
    reordered = {"spec": {field: [dict(elements[1], extra=1), dict(elements[0], extra=1)]}}
    assert changed_paths(want, reordered) == []
    shortened = {"spec": {field: [elements[1]]}}
    assert changed_paths(want, shortened) == [f"/spec/{field}/0"]


def test_quantities_at_any_depth_and_in_other_kinds() -> None:
    want = {
        "spec": {
            "overhead": {"cpu": "0.25"},
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1024Mi"}}],
            "hard": {"requests.nvidia.com/gpu": "4", "limits.memory": "64Gi"},
            "resources": {"requests": {"storage": "10Gi"}},
        }
    }
    have = {
        "spec": {
            "overhead": {"cpu": "250m"},
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
            "hard": {"requests.nvidia.com/gpu": 4, "limits.memory": "65536Mi"},
            "resources": {"requests": {"storage": "10240Mi"}},
        }
    }
    assert changed_paths(want, have) == []


# -- typed objects drop omitempty zero values ----------------------------------------------


def test_zero_values_git_sets_are_not_drift_on_typed_objects_only() -> None:
    want = {"spec": {"minReadySeconds": 0, "paused": False, "replicas": 0}}
    have = {"spec": {"replicas": 0}}
    assert changed_paths(want, have) == ["/spec/minReadySeconds", "/spec/paused"]  # a CR
    typed = compare_bodies(want, have, QUANTITY_PARENTS, typed=True)
    assert typed == []


def test_allocated_service_fields_git_leaves_empty_are_not_drift() -> None:
    want = {"spec": {"clusterIP": "", "ports": [{"port": 80, "nodePort": 0}]}}
    have = {"spec": {"clusterIP": "10.96.3.4", "ports": [{"port": 80, "nodePort": 30080}]}}
    assert compare_bodies(want, have, QUANTITY_PARENTS, typed=True) == []
