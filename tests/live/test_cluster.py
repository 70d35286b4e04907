"""Reading a cluster through the real `kubernetes` client, against the test API server."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from kubernetes import client

from auditor.config import ClusterSource, Limits
from auditor.errors import ConfigError
from auditor.live.cluster import read_cluster
from auditor.live.transport import RetryPolicy
from auditor.model import LiveRead, StageError
from auditor.scope import KindSelector, Scope
from tests.kubeapi.builders import configmap
from tests.kubeapi.server import Fault, KubeAPIServer


def names(read: LiveRead, kind: str) -> set[str]:
    return {
        f"{r.ref.namespace}/{r.ref.name}" if r.ref.namespace else r.ref.name
        for r in read.resources
        if r.ref.kind == kind
    }


ML_CONFIGMAPS = {f"ml/cm-{i}" for i in range(5)}


def do_read(source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy) -> LiveRead:
    return read_cluster(source, scope, limits=limits, retry=retry)


@pytest.fixture
def read(source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy) -> LiveRead:
    """A read of the seeded cluster; tests that inject faults first call `do_read` themselves."""
    return do_read(source, scope, limits, retry)


def only_error(read: LiveRead) -> StageError:
    assert len(read.errors) == 1, read.errors
    return read.errors[0]


# what is read


def test_reads_every_kind_in_scope_including_a_crd(read: LiveRead) -> None:
    assert read.errors == ()
    assert names(read, "ConfigMap") == ML_CONFIGMAPS
    assert names(read, "Deployment") == {"ml/fraud-scorer"}
    assert names(read, "InferenceService") == {"ml/churn", "ml/fraud-scorer"}
    assert names(read, "Secret") == {"ml/model-credentials"}
    isvc = next(r for r in read.resources if r.ref.kind == "InferenceService")
    assert isvc.body["spec"]["predictor"]["model"]["storageUri"].startswith("gs://acme-models/")
    assert {r.side for r in read.resources} == {"live"}
    assert {r.origin for r in read.resources} == {"prod"}
    assert {r.ref.cluster for r in read.resources} == {"prod"}


def test_only_kinds_and_namespaces_in_scope_are_requested(
    read: LiveRead, kube: KubeAPIServer
) -> None:
    lists = {r.path for r in kube.requests if "limit" in r.query}
    assert lists == {
        "/api/v1/namespaces/ml/configmaps",
        "/api/v1/namespaces/ml/secrets",
        "/apis/apps/v1/namespaces/ml/deployments",
        "/apis/serving.kserve.io/v1beta1/namespaces/ml/inferenceservices",
    }
    # groups with no kind in scope are not even discovered
    discovered = {r.path for r in kube.requests if r.path.startswith("/apis")} - lists
    assert discovered == {"/apis", "/apis/apps/v1", "/apis/serving.kserve.io/v1beta1"}


def test_lists_follow_continue_tokens_across_pages(read: LiveRead, kube: KubeAPIServer) -> None:
    pages = kube.list_requests("configmaps", "ml")
    assert [r.query.get("limit") for r in pages] == ["2", "2", "2"]
    assert [("continue" in r.query) for r in pages] == [False, True, True]
    assert names(read, "ConfigMap") == ML_CONFIGMAPS


def test_list_items_get_api_version_and_kind(read: LiveRead, kube: KubeAPIServer) -> None:
    raw = kube.list_requests("configmaps", "ml")
    assert raw  # the server dropped kind/apiVersion from these items, as a real one does
    for resource in read.resources:
        assert resource.body["apiVersion"] == resource.ref.api_version
        assert resource.body["kind"] == resource.ref.kind
    deployment = next(r for r in read.resources if r.ref.kind == "Deployment")
    assert deployment.ref.api_version == "apps/v1"
    assert deployment.body["metadata"]["uid"]


def test_secret_values_never_reach_a_resource(read: LiveRead, planted_secret: str) -> None:
    everything = json.dumps([dict(r.body) for r in read.resources])
    assert planted_secret not in everything
    assert base64.b64encode(planted_secret.encode()).decode() not in everything
    (secret,) = (r for r in read.resources if r.ref.kind == "Secret")
    assert secret.body["data"]["token"].startswith("hmac-sha256:")


def test_namespaced_comes_from_discovery(read: LiveRead) -> None:
    assert read.namespaced[("serving.kserve.io", "InferenceService")] is True
    assert read.namespaced[("", "Namespace")] is False
    assert read.namespaced[("apps", "Deployment")] is True


def test_cluster_identity_is_recorded(read: LiveRead, kube: KubeAPIServer) -> None:
    kube_system = kube.get("v1", "Namespace", "kube-system")
    assert read.info.name == "prod"
    assert read.info.server == kube.url
    assert read.info.context == "test"
    assert read.info.uid == kube_system["metadata"]["uid"]
    assert read.info.version == "v1.31.4"


def test_identity_that_cannot_be_read_is_left_blank_silently(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(path=r"^/version$", status=403))
    kube.inject(Fault(path=r"^/api/v1/namespaces/kube-system$", status=403))
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert (read.info.uid, read.info.version) == ("", "")
    assert names(read, "ConfigMap") == ML_CONFIGMAPS


def test_current_context_is_used_when_none_is_named(
    kubeconfig: Path, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    source = ClusterSource(name="prod", kubeconfig=str(kubeconfig))
    read = do_read(source, scope, limits, retry)
    assert read.info.context == "test"
    assert read.errors == ()


def test_cluster_scoped_kinds_are_listed_cluster_wide(
    kube: KubeAPIServer, source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    scope = Scope(kinds=(KindSelector("serving.kserve.io", "ClusterServingRuntime"),))
    read = do_read(source, scope, limits, retry)
    assert names(read, "ClusterServingRuntime") == {"kserve-sklearnserver"}
    assert [r.path for r in kube.list_requests("clusterservingruntimes")] == [
        "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes"
    ]


def test_namespace_objects_are_kept_only_for_namespaces_in_scope(
    source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    scope = Scope(kinds=(KindSelector("", "Namespace"),), namespaces=("ml*",))
    read = do_read(source, scope, limits, retry)
    assert names(read, "Namespace") == {"ml", "ml-canary"}


def test_all_namespaces_are_listed_once_and_exclusions_filtered(
    kube: KubeAPIServer, source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    scope = Scope(kinds=(KindSelector("", "ConfigMap"),), exclude_namespaces=("other",))
    read = do_read(source, scope, limits, retry)
    assert names(read, "ConfigMap") == ML_CONFIGMAPS | {"ml-canary/canary-config"}
    assert {r.path for r in kube.list_requests("configmaps")} == {"/api/v1/configmaps"}


def test_namespace_patterns_list_everything_once_and_keep_the_matches(
    kube: KubeAPIServer, source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    scope = Scope(kinds=(KindSelector("apps", "Deployment"),), namespaces=("ml*",))
    read = do_read(source, scope, limits, retry)
    assert names(read, "Deployment") == {"ml/fraud-scorer", "ml-canary/fraud-scorer-canary"}
    assert {r.path for r in kube.list_requests("deployments")} == {"/apis/apps/v1/deployments"}


def test_a_bare_kind_matches_its_group_and_versions_beyond_the_preferred_one(
    source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    # ClusterServingRuntime is served only by v1alpha1, not the preferred v1beta1
    scope = Scope(kinds=(KindSelector(None, "ClusterServingRuntime"),))
    read = do_read(source, scope, limits, retry)
    (runtime,) = read.resources
    assert runtime.ref.api_version == "serving.kserve.io/v1alpha1"
    assert read.errors == ()


def test_a_kind_the_cluster_does_not_serve_is_not_an_error(
    source: ClusterSource, limits: Limits, retry: RetryPolicy
) -> None:
    scope = Scope(
        kinds=(KindSelector("example.com", "Widget"), KindSelector("", "ConfigMap")),
        namespaces=("ml",),
    )
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert names(read, "ConfigMap") == ML_CONFIGMAPS


# faults: each becomes one exact StageError, and the other kinds are still read


def assert_others_read(read: LiveRead, *, but: str) -> None:
    expected = {
        "ConfigMap": ML_CONFIGMAPS,
        "Deployment": {"ml/fraud-scorer"},
        "InferenceService": {"ml/churn", "ml/fraud-scorer"},
        "Secret": {"ml/model-credentials"},
    }
    for kind, objects in expected.items():
        assert names(read, kind) == (set() if kind == but else objects), kind


def test_forbidden_kind_is_an_error_and_the_rest_is_read(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=403, plural="inferenceservices", namespace="ml"))
    read = do_read(source, scope, limits, retry)
    assert only_error(read) == StageError(
        stage="live",
        message="forbidden: cannot list inferenceservices.serving.kserve.io in namespace ml",
        target="inferenceservices.serving.kserve.io in ml",
        cluster="prod",
    )
    assert_others_read(read, but="InferenceService")


def test_server_error_is_retried_once_then_reported(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=500, plural="configmaps", message="etcdserver: leader changed"))
    read = do_read(source, scope, limits, retry)
    assert only_error(read).message == (
        "server error: cannot list configmaps in namespace ml: HTTP 500 InternalError: "
        "Internal error occurred: etcdserver: leader changed (2 attempts)"
    )
    assert only_error(read).target == "configmaps in ml"
    assert len(kube.list_requests("configmaps", "ml")) == 2
    assert_others_read(read, but="ConfigMap")


def test_unavailable_once_then_success_is_not_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=503, plural="configmaps", times=1))
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert_others_read(read, but="")
    first_pages = [r for r in kube.list_requests("configmaps", "ml") if "continue" not in r.query]
    assert len(first_pages) == 2


def test_a_response_slower_than_the_timeout_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="deployments", latency=1.0))
    started = time.monotonic()
    read = do_read(source, scope, limits, retry)
    assert time.monotonic() - started < 2.5  # two 0.3s timeouts, not two 1s waits
    assert only_error(read).message == (
        "timeout: cannot list deployments.apps in namespace ml: no response within 0.3s "
        "(2 attempts)"
    )
    assert_others_read(read, but="Deployment")


def test_a_dropped_connection_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="secrets", drop=True))
    read = do_read(source, scope, limits, retry)
    assert only_error(read).message == (
        "connection closed: cannot list secrets in namespace ml: the API server closed the "
        "connection without a response (2 attempts)"
    )
    assert len(kube.list_requests("secrets", "ml")) == 2  # one retry, no silent urllib3 ones
    assert_others_read(read, but="Secret")


def test_a_dropped_connection_once_is_retried(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="secrets", drop=True, times=1))
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert_others_read(read, but="")


def test_a_truncated_body_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="inferenceservices", truncate=True))
    read = do_read(source, scope, limits, retry)
    error = only_error(read)
    match = re.fullmatch(
        r"truncated response: cannot list inferenceservices\.serving\.kserve\.io in namespace "
        r"ml: the body ended after (\d+) of (\d+) bytes \(2 attempts\)",
        error.message,
    )
    assert match, error.message
    received, total = map(int, match.groups())
    assert received == total // 2
    assert_others_read(read, but="InferenceService")


def test_an_expired_continue_token_relists_from_scratch(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="configmaps", expire_continue_on_page=3, times=1))
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert names(read, "ConfigMap") == ML_CONFIGMAPS  # no duplicates from the first attempt
    assert len([r for r in read.resources if r.ref.kind == "ConfigMap"]) == 5
    pages = kube.list_requests("configmaps", "ml")
    assert [("continue" in r.query) for r in pages] == [False, True, True, False, True, True]


def test_a_continue_token_expiring_twice_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(plural="configmaps", expire_continue_on_page=2))
    read = do_read(source, scope, limits, retry)
    assert only_error(read).message == (
        "expired: cannot list configmaps in namespace ml: the continue token expired "
        "(410 Gone) again after a fresh relist"
    )
    assert_others_read(read, but="ConfigMap")


def test_throttling_honours_retry_after_then_succeeds(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits
) -> None:
    kube.inject(Fault(status=429, plural="deployments", retry_after=1, times=2))
    retry = RetryPolicy(max_retry_after_seconds=0.25)
    started = time.monotonic()
    read = do_read(source, scope, limits, retry)
    assert time.monotonic() - started >= 0.5  # two waits, each Retry-After capped at 0.25s
    assert read.errors == ()
    assert_others_read(read, but="")


def test_throttling_that_never_ends_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=429, plural="deployments", retry_after=1))
    read = do_read(source, scope, limits, retry)
    assert only_error(read).message == (
        "throttled: cannot list deployments.apps in namespace ml: HTTP 429 TooManyRequests: "
        "Too many requests, please try again later. (still throttled after 3 retries "
        "honouring Retry-After)"
    )
    assert len(kube.list_requests("deployments", "ml")) == 4
    assert_others_read(read, but="Deployment")


def test_a_list_404_for_a_resource_discovery_serves_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=404, path=r"/namespaces/ml/inferenceservices$"))
    read = do_read(source, scope, limits, retry)
    assert only_error(read).message == (
        "not found: cannot list inferenceservices.serving.kserve.io in namespace ml: HTTP 404 "
        "NotFound: the server could not find the requested resource, though discovery serves it"
    )


def test_a_list_404_for_a_crd_deleted_since_discovery_is_not_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=404, path=r"/namespaces/ml/inferenceservices$"))
    # discovery answers the first time, then the group version is gone
    kube.inject(Fault(status=404, path=r"^/apis/serving\.kserve\.io/v1beta1$", skip=1))
    read = do_read(source, scope, limits, retry)
    assert read.errors == ()
    assert_others_read(read, but="InferenceService")


def test_discovery_failure_of_a_group_names_the_group(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    kube.inject(Fault(status=503, path=r"^/apis/serving\.kserve\.io/v1beta1$"))
    read = do_read(source, scope, limits, retry)
    assert only_error(read) == StageError(
        stage="live",
        message=(
            "server error: cannot read discovery of API group serving.kserve.io "
            "(/apis/serving.kserve.io/v1beta1): HTTP 503 ServiceUnavailable: the server is "
            "currently unable to handle the request (2 attempts)"
        ),
        target="API group serving.kserve.io",
        cluster="prod",
    )
    assert_others_read(read, but="InferenceService")


def test_a_response_over_the_size_limit_is_an_error(
    kube: KubeAPIServer, source: ClusterSource, scope: Scope, retry: RetryPolicy
) -> None:
    big = configmap("feature-table")
    big["data"] = {"table": "x" * 40_000}
    kube.add(big)
    limits = Limits(page_size=100, request_timeout_seconds=0.3, max_response_bytes=30_000)
    read = do_read(source, scope, limits, retry)
    error = only_error(read)
    assert re.fullmatch(
        r"response too large: cannot list configmaps in namespace ml: \d+ bytes is over "
        r"limits\.max_response_bytes \(30000\); lower limits\.page_size or raise the limit",
        error.message,
    ), error.message
    assert len(kube.list_requests("configmaps", "ml")) == 1  # not worth retrying
    assert_others_read(read, but="ConfigMap")


def test_a_wrong_token_is_one_unauthorized_error(
    kube: KubeAPIServer, tmp_path: Path, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    path = kube.write_kubeconfig(tmp_path / "wrong", context="test", token="not-the-token")
    source = ClusterSource(name="prod", kubeconfig=str(path), context="test")
    read = do_read(source, scope, limits, retry)
    assert only_error(read) == StageError(
        stage="live",
        message=(
            f"unauthorized: the API server at {kube.url} rejected the credentials of context "
            "test (HTTP 401 Unauthorized: Unauthorized)"
        ),
        target="cluster",
        cluster="prod",
    )
    assert read.resources == ()
    assert len(kube.requests) == 1  # it stops at the first 401


def test_an_unreachable_cluster_is_one_error(
    tmp_path: Path, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    with KubeAPIServer() as server:
        path = server.write_kubeconfig(tmp_path / "gone")
        url = server.url
    source = ClusterSource(name="prod", kubeconfig=str(path))
    read = do_read(source, scope, limits, retry)
    error = only_error(read)
    assert error.message.startswith(
        f"connection error: cannot read discovery from the API server at {url}: cannot connect:"
    )
    assert error.target == "discovery"
    assert read.info.server == url


def test_many_objects_are_read_in_pages(
    kube: KubeAPIServer, source: ClusterSource, retry: RetryPolicy
) -> None:
    kube.add_all(configmap(f"bulk-{i:04d}", namespace="bulk") for i in range(2000))
    scope = Scope(kinds=(KindSelector("", "ConfigMap"),), namespaces=("bulk",))
    read = do_read(source, scope, Limits(page_size=500, request_timeout_seconds=5), retry)
    assert len(read.resources) == 2000
    assert len(kube.list_requests("configmaps", "bulk")) == 4


# configuration problems raise ConfigError (exit 2)


def test_a_missing_kubeconfig_is_a_config_error(
    tmp_path: Path, scope: Scope, limits: Limits
) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as info:
        read_cluster(ClusterSource(name="prod", kubeconfig=str(missing)), scope, limits=limits)
    assert info.value.file == str(missing)
    assert info.value.message == "cluster prod: kubeconfig file not found"


def test_an_unknown_context_is_a_config_error(
    kubeconfig: Path, scope: Scope, limits: Limits
) -> None:
    source = ClusterSource(name="prod", kubeconfig=str(kubeconfig), context="staging")
    with pytest.raises(ConfigError) as info:
        read_cluster(source, scope, limits=limits)
    assert info.value.message == (
        "cluster prod: context 'staging' not found in the kubeconfig (it has: test)"
    )
    assert info.value.file == str(kubeconfig)


def test_a_kubeconfig_that_is_not_one_is_a_config_error(
    tmp_path: Path, scope: Scope, limits: Limits
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("just: [a, list\n")
    with pytest.raises(ConfigError) as info:
        read_cluster(ClusterSource(name="prod", kubeconfig=str(path)), scope, limits=limits)
    assert info.value.file == str(path)
    assert info.value.message.startswith("cluster prod: kubeconfig is unusable:")


def test_in_cluster_outside_a_pod_is_a_config_error(
    scope: Scope, limits: Limits, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError) as info:
        read_cluster(ClusterSource(name="prod", in_cluster=True), scope, limits=limits)
    assert info.value.message.startswith("cluster prod: in-cluster configuration is unusable")


def test_a_kubeconfig_without_a_current_context_needs_one_named(
    kubeconfig: Path, scope: Scope, limits: Limits
) -> None:
    text = kubeconfig.read_text().replace("current-context: test", "current-context: ''")
    kubeconfig.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_cluster(ClusterSource(name="prod", kubeconfig=str(kubeconfig)), scope, limits=limits)
    assert info.value.message == "cluster prod: the kubeconfig has no current-context"


def test_reading_leaves_the_clients_global_configuration_alone(
    source: ClusterSource, scope: Scope, limits: Limits, retry: RetryPolicy
) -> None:
    before = client.Configuration.get_default_copy()
    assert do_read(source, scope, limits, retry).errors == ()
    after = client.Configuration.get_default_copy()
    assert (after.host, after.api_key) == (before.host, before.api_key)


@pytest.mark.parametrize(("git_version", "listed_at"), [("v1", "v1"), ("v2", "v2"), (None, "v2")])
def test_kinds_are_read_at_the_version_git_declares_when_served(
    kube: KubeAPIServer,
    source: ClusterSource,
    retry: RetryPolicy,
    git_version: str | None,
    listed_at: str,
) -> None:
    versions = (("autoscaling", "HorizontalPodAutoscaler", git_version),) if git_version else ()
    scope = Scope(
        kinds=(KindSelector("autoscaling", "HorizontalPodAutoscaler"),),
        namespaces=("ml",),
        versions=versions,
    )
    read_cluster(source, scope, limits=Limits(), retry=retry)
    paths = [r.path for r in kube.requests if r.path.endswith("/horizontalpodautoscalers")]
    assert paths == [f"/apis/autoscaling/{listed_at}/namespaces/ml/horizontalpodautoscalers"]


def test_a_version_the_cluster_does_not_serve_falls_back_to_the_preferred(
    kube: KubeAPIServer, source: ClusterSource, retry: RetryPolicy
) -> None:
    scope = Scope(
        kinds=(KindSelector("autoscaling", "HorizontalPodAutoscaler"),),
        namespaces=("ml",),
        versions=(("autoscaling", "HorizontalPodAutoscaler", "v2beta2"),),
    )
    read_cluster(source, scope, limits=Limits(), retry=retry)
    paths = [r.path for r in kube.requests if r.path.endswith("/horizontalpodautoscalers")]
    assert paths == ["/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers"]
