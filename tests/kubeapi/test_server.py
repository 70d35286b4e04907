"""The test API server is faithful enough for the unmodified `kubernetes` client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config

from tests.kubeapi.builders import configmap, deployment, inference_service
from tests.kubeapi.registry import ResourceType
from tests.kubeapi.server import EXPIRED_MESSAGE, Denial, Fault, KubeAPIServer

TOKEN = "server-test-token"


@pytest.fixture
def server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token=TOKEN) as kube:
        kube.add_all(
            [
                configmap("a", app="scorer", tier="web"),
                configmap("b", app="scorer"),
                configmap("c", app="ranker", tier="batch"),
                configmap("d"),
                configmap("e", namespace="other", app="scorer"),
                deployment("fraud-scorer"),
                deployment("ranker", namespace="other"),
                inference_service("fraud-scorer"),
            ]
        )
        yield kube


def new_client(kube: KubeAPIServer, tmp_path: Path, token: str | None = None) -> client.ApiClient:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", context="test", token=token)
    configuration: client.Configuration = type.__call__(client.Configuration)
    configuration.retries = False  # urllib3 would hide dropped connections behind retries
    return config.new_client_from_config(
        config_file=str(path), context="test", client_configuration=configuration
    )


@pytest.fixture
def api(server: KubeAPIServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    api_client = new_client(server, tmp_path)
    yield api_client
    api_client.close()


# The client's models mark every field Optional; these tests read fields they know are set.


def core_api(api: client.ApiClient) -> Any:
    return client.CoreV1Api(api)


def apps_api(api: client.ApiClient) -> Any:
    return client.AppsV1Api(api)


def custom_api(api: client.ApiClient) -> Any:
    return client.CustomObjectsApi(api)


def status_of(exc: client.ApiException) -> dict[str, Any]:
    body = json.loads(exc.body or "")
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["code"] == exc.status
    return dict(body)


# discovery


def test_version(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version == "v1.31.4"


def test_groups_list_their_versions_preferred_first(api: client.ApiClient) -> None:
    apis: Any = client.ApisApi(api)
    groups = {g.name: g for g in apis.get_api_versions().groups}
    kserve = groups["serving.kserve.io"]
    assert kserve.preferred_version.group_version == "serving.kserve.io/v1beta1"
    assert [v.version for v in kserve.versions] == ["v1beta1", "v1alpha1"]
    assert groups["autoscaling"].preferred_version.version == "v2"
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]


def test_resource_lists_describe_kinds_and_subresources(api: client.ApiClient) -> None:
    resources = {r.name: r for r in apps_api(api).get_api_resources().resources}
    deployments = resources["deployments"]
    assert (deployments.kind, deployments.namespaced, deployments.singular_name) == (
        "Deployment",
        True,
        "deployment",
    )
    assert "list" in deployments.verbs and deployments.short_names == ["deploy"]
    scale = resources["deployments/scale"]
    assert (scale.kind, scale.group, scale.version) == ("Scale", "autoscaling", "v1")
    assert "list" not in scale.verbs and "deployments/status" in resources
    core = {r.name: r for r in core_api(api).get_api_resources().resources}
    assert core["namespaces"].namespaced is False
    assert core["bindings"].verbs == ["create"]


# reads


def test_core_list_and_get_with_server_side_metadata(api: client.ApiClient) -> None:
    core = core_api(api)
    listed = core.list_namespaced_config_map("ml")
    assert sorted(cm.metadata.name for cm in listed.items) == ["a", "b", "c", "d"]
    got = core.read_namespaced_config_map("a", "ml")
    assert got.data == {"model": "a"}
    assert got.metadata.uid and got.metadata.resource_version and got.metadata.creation_timestamp
    assert core.read_namespace("kube-system").metadata.uid


def test_apps_lists_across_namespaces(api: client.ApiClient) -> None:
    listed = apps_api(api).list_deployment_for_all_namespaces()
    assert {(d.metadata.namespace, d.metadata.name) for d in listed.items} == {
        ("ml", "fraud-scorer"),
        ("other", "ranker"),
    }


def test_custom_objects_list_and_get(api: client.ApiClient) -> None:
    custom = custom_api(api)
    listed = custom.list_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", "ml", "inferenceservices"
    )
    assert listed["kind"] == "InferenceServiceList"
    (item,) = listed["items"]
    got = custom.get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", "ml", "inferenceservices", "fraud-scorer"
    )
    assert got["spec"] == item["spec"]
    assert got["metadata"]["uid"] == item["metadata"]["uid"]


def test_built_in_list_items_carry_no_type_but_custom_ones_do(api: client.ApiClient) -> None:
    raw = core_api(api).list_namespaced_config_map("ml", _preload_content=False)
    listed = json.loads(raw.data)
    assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1")
    assert all("kind" not in i and "apiVersion" not in i for i in listed["items"])
    custom = custom_api(api).list_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", "ml", "inferenceservices"
    )
    assert custom["items"][0]["kind"] == "InferenceService"


def test_pagination_with_limit_and_continue(api: client.ApiClient, server: KubeAPIServer) -> None:
    core = core_api(api)
    seen: list[str] = []
    token = None
    remaining = []
    while True:
        page = core.list_namespaced_config_map("ml", limit=3, _continue=token)
        seen.extend(cm.metadata.name for cm in page.items)
        remaining.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert seen == ["a", "b", "c", "d"]
    assert remaining == [1, None]
    assert [r.query.get("continue") is None for r in server.list_requests("configmaps")] == [
        True,
        False,
    ]


def test_compaction_expires_continue_tokens(api: client.ApiClient, server: KubeAPIServer) -> None:
    core = core_api(api)
    token = core.list_namespaced_config_map("ml", limit=1).metadata._continue
    server.add(configmap("f"))
    server.compact()
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map("ml", limit=1, _continue=token)
    body = status_of(info.value)
    assert (info.value.status, body["reason"], body["message"]) == (410, "Expired", EXPIRED_MESSAGE)
    assert core.list_namespaced_config_map("ml", limit=1).metadata._continue  # a new list works


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=scorer", ["a", "b"]),
        ("app==scorer", ["a", "b"]),
        ("app!=scorer", ["c", "d"]),
        ("app in (scorer, ranker)", ["a", "b", "c"]),
        ("app notin (scorer)", ["c", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
        ("app=scorer,tier=web", ["a"]),
        ("app in (scorer,ranker),!tier", ["b"]),
    ],
)
def test_label_selectors(api: client.ApiClient, selector: str, expected: list[str]) -> None:
    listed = core_api(api).list_namespaced_config_map("ml", label_selector=selector)
    assert [cm.metadata.name for cm in listed.items] == expected


def test_field_selectors(api: client.ApiClient) -> None:
    core = core_api(api)
    by_name = core.list_config_map_for_all_namespaces(field_selector="metadata.name=e")
    assert [(c.metadata.namespace, c.metadata.name) for c in by_name.items] == [("other", "e")]
    not_ml = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace!=ml")
    assert [c.metadata.name for c in not_ml.items] == ["e"]
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map("ml", field_selector="spec.nodeName=x")
    assert info.value.status == 400
    assert "is not a known field selector" in status_of(info.value)["message"]


# errors, as metav1.Status bodies


def test_forbidden_is_a_status_naming_user_resource_and_namespace(
    api: client.ApiClient, server: KubeAPIServer
) -> None:
    server.inject(Fault(status=403, plural="inferenceservices", namespace="ml"))
    with pytest.raises(client.ApiException) as info:
        custom_api(api).list_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "ml", "inferenceservices"
        )
    body = status_of(info.value)
    assert info.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'inferenceservices.serving.kserve.io is forbidden: User "system:serviceaccount:auditor:'
        'auditor" cannot list resource "inferenceservices" in API group "serving.kserve.io" in '
        'the namespace "ml"'
    )
    assert body["details"] == {"group": "serving.kserve.io", "kind": "inferenceservices"}


def test_not_found_names_the_object(api: client.ApiClient) -> None:
    with pytest.raises(client.ApiException) as info:
        apps_api(api).read_namespaced_deployment("nope", "ml")
    body = status_of(info.value)
    assert (info.value.status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'deployments.apps "nope" not found',
    )
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_too_many_requests_sends_retry_after(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(status=429, plural="configmaps", retry_after=7, times=1))
    core = core_api(api)
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map("ml")
    assert info.value.status == 429
    assert (info.value.headers or {})["Retry-After"] == "7"
    assert status_of(info.value)["reason"] == "TooManyRequests"
    assert len(core.list_namespaced_config_map("ml").items) == 4  # `times` ran out


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (404, "NotFound")],
)
def test_injected_status_codes(
    api: client.ApiClient, server: KubeAPIServer, code: int, reason: str
) -> None:
    server.inject(Fault(status=code, path=r"/deployments$"))
    with pytest.raises(client.ApiException) as info:
        apps_api(api).list_namespaced_deployment("ml")
    assert (info.value.status, status_of(info.value)["reason"]) == (code, reason)


def test_a_wrong_or_missing_token_is_unauthorized(server: KubeAPIServer, tmp_path: Path) -> None:
    for token in ("wrong", ""):
        api_client = new_client(server, tmp_path, token=token)
        with pytest.raises(client.ApiException) as info:
            core_api(api_client).list_namespaced_config_map("ml")
        assert info.value.status == 401
        assert status_of(info.value)["reason"] == "Unauthorized"
        api_client.close()


def test_unknown_paths_answer_like_the_go_mux(api: client.ApiClient) -> None:
    response = api.call_api(
        "GET",
        api.configuration.host + "/apis/example.com/v1",
        header_params={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status == 404
    assert response.read() == b"404 page not found\n"


# transport faults


def test_a_dropped_connection(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(plural="configmaps", drop=True))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        core_api(api).list_namespaced_config_map("ml")


def test_a_truncated_body(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(plural="configmaps", truncate=True))
    with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
        core_api(api).list_namespaced_config_map("ml")


def test_latency_delays_the_answer(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(plural="configmaps", latency=0.3, times=1))
    started = time.monotonic()
    assert len(core_api(api).list_namespaced_config_map("ml").items) == 4
    assert time.monotonic() - started >= 0.3


def test_expired_continue_on_the_nth_page(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(plural="configmaps", expire_continue_on_page=3))
    core = core_api(api)
    first = core.list_namespaced_config_map("ml", limit=1)
    second = core.list_namespaced_config_map("ml", limit=1, _continue=first.metadata._continue)
    with pytest.raises(client.ApiException) as info:
        core.list_namespaced_config_map("ml", limit=1, _continue=second.metadata._continue)
    assert status_of(info.value)["message"] == EXPIRED_MESSAGE


def test_skip_and_times_bound_a_fault(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.inject(Fault(status=500, plural="configmaps", skip=1, times=1))
    core = core_api(api)
    core.list_namespaced_config_map("ml")
    with pytest.raises(client.ApiException):
        core.list_namespaced_config_map("ml")
    core.list_namespaced_config_map("ml")
    server.inject(Fault(status=500, plural="configmaps"))
    server.clear_faults()
    core.list_namespaced_config_map("ml")


def test_requests_are_recorded(api: client.ApiClient, server: KubeAPIServer) -> None:
    core_api(api).list_namespaced_config_map("ml", limit=2, label_selector="app")
    assert server.requests[-1] == (
        "GET",
        "/api/v1/namespaces/ml/configmaps",
        {"labelSelector": "app", "limit": "2"},
    )


def test_extra_types_can_be_registered(api: client.ApiClient, server: KubeAPIServer) -> None:
    server.register(ResourceType("example.com", "v1", "Widget", "widgets", custom=True))
    server.add({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert "example.com" in groups
    listed = custom_api(api).list_cluster_custom_object("example.com", "v1", "widgets")
    assert [(w["metadata"]["namespace"], w["metadata"]["name"]) for w in listed["items"]] == [
        ("default", "w")
    ]


def review(
    api: client.ApiClient, verb: str, resource: str, group: str = "", namespace: str = ""
) -> Any:
    body = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, namespace=namespace or None
            )
        )
    )
    return client.AuthorizationV1Api(api).create_self_subject_access_review(body)


def test_a_self_subject_access_review_answers_what_the_authorizer_allows(
    server: KubeAPIServer, api: client.ApiClient
) -> None:
    server.deny(Denial(resource="secrets", namespace="ml", verbs=("list", "watch")))
    allowed = review(api, "list", "configmaps", namespace="ml")
    assert allowed.status.allowed is True and "RBAC" in allowed.status.reason
    assert allowed.spec.resource_attributes.resource == "configmaps"  # the spec is echoed
    assert review(api, "list", "secrets", namespace="ml").status.allowed is False
    assert review(api, "get", "secrets", namespace="ml").status.allowed is True
    assert review(api, "list", "secrets", namespace="other").status.allowed is True


def test_a_denied_kind_is_forbidden_as_rbac_forbids_it(
    server: KubeAPIServer, api: client.ApiClient
) -> None:
    server.deny(Denial(resource="inferenceservices", group="serving.kserve.io"))
    with pytest.raises(client.ApiException) as raised:
        client.CustomObjectsApi(api).list_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "ml", "inferenceservices"
        )
    assert raised.value.status == 403
    body = json.loads(raised.value.body)
    assert body["reason"] == "Forbidden"
    assert (
        'cannot list resource "inferenceservices" in API group "serving.kserve.io"'
        in body["message"]
    )
    assert core_api(api).list_namespaced_config_map("ml").items  # other kinds still served


def test_a_review_without_attributes_is_invalid(
    server: KubeAPIServer, api: client.ApiClient
) -> None:
    body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec())
    with pytest.raises(client.ApiException) as raised:
        client.AuthorizationV1Api(api).create_self_subject_access_review(body)
    assert raised.value.status == 422
