"""The `opa` engine against an OPA-REST server: upload, evaluate, errors that say who must act.

The server is tests/opaserver (OPA's REST API evaluated with regorus), so every request goes
through the unmodified opa-python-client and real HTTP.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import requests

from auditor.errors import ConfigError, SourceError
from auditor.policy.engine import PolicyEvalError, PolicyLoadError, RegoModule
from auditor.policy.opa_server import OpaServerEngine, PolicyServerError, rule_path
from tests.opaserver.server import Fault, OpaTestServer

TOKEN = "s3cr3t-opa-token"

SERVING = RegoModule(
    source="policies/serving/replicas.rego",
    package="acme.serving.replicas",
    text="""\
# METADATA
# title: Enough replicas
package acme.serving.replicas

deny contains msg if {
	input.resource.spec.replicas < data.acme.params.min_replicas
	msg := sprintf("%s: %d replica(s), at least %d", [
		input.resource.metadata.name, input.resource.spec.replicas, data.acme.params.min_replicas,
	])
}

warn contains {"msg": "no team label", "path": "/metadata/labels/team"} if {
	not input.resource.metadata.labels.team
}

level := "low" if input.resource.spec.replicas > 3
""",
)
TEMPLATE = RegoModule(
    source="policies/gatekeeper/required-labels.yaml",
    package="k8srequiredlabels",
    text="""\
package k8srequiredlabels

violation[{"msg": msg}] {
	not input.review.object.metadata.labels.team
	msg := "team label is required"
}
""",
    v0=True,
    line_offset=9,
)
DATA = {"acme": {"params": {"min_replicas": 2}}}
ONE_REPLICA = {"resource": {"metadata": {"name": "scorer", "labels": {}}, "spec": {"replicas": 1}}}
FIVE_REPLICAS = {
    "resource": {
        "metadata": {"name": "scorer", "labels": {"team": "risk"}},
        "spec": {"replicas": 5},
    }
}


@pytest.fixture
def server() -> Iterator[OpaTestServer]:
    with OpaTestServer() as opa:
        yield opa


@pytest.fixture
def engine(server: OpaTestServer) -> Iterator[OpaServerEngine]:
    with OpaServerEngine(server.url, retries=0, timeout=2) as opa:
        opa.load([SERVING, TEMPLATE], DATA)
        yield opa


# -- upload and evaluation -----------------------------------------------------------------


def test_load_puts_every_module_under_the_prefix_and_every_data_key(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    assert server.policy_ids() == [
        "auditor/policies/serving/replicas.rego",
        "auditor/policies/gatekeeper/required-labels.yaml",
    ]
    assert server.data() == DATA
    assert [r.path for r in server.requests_to("PUT", "/v1/data")] == ["/v1/data/acme"]


def test_a_v1_module_gets_import_rego_v1_and_a_v0_module_goes_as_it_is(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    # the import makes v1 parse on OPA 0.x and `--v0-compatible` servers; it is a no-op on 1.x
    sent = {r.path: r.body for r in server.requests_to("PUT", "/v1/policies/")}
    v1 = sent["/v1/policies/auditor/policies/serving/replicas.rego"]
    assert v1.splitlines()[2:4] == ["package acme.serving.replicas", "import rego.v1"]
    assert sent["/v1/policies/auditor/policies/gatekeeper/required-labels.yaml"] == TEMPLATE.text


def test_evaluate_posts_the_input_to_the_rules_data_path(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    assert engine.evaluate("data.acme.serving.replicas.deny", ONE_REPLICA) == [
        "scorer: 1 replica(s), at least 2"
    ]
    (request,) = server.requests_to("POST", "/v1/data/")
    assert request.path == "/v1/data/acme/serving/replicas/deny"
    assert request.body == {"input": ONE_REPLICA}
    # built-in errors must fail as they do in regorus, not turn into OPA's silent undefined
    assert request.query == {"strict-builtin-errors": "true"}


def test_deny_warn_and_violation_come_back_as_strings_and_objects(
    engine: OpaServerEngine,
) -> None:
    assert engine.evaluate("data.acme.serving.replicas.warn", ONE_REPLICA) == [
        {"msg": "no team label", "path": "/metadata/labels/team"}
    ]
    review: dict[str, Any] = {"review": {"object": {"metadata": {"labels": {}}}}}
    assert engine.evaluate("data.k8srequiredlabels.violation", review) == [
        {"msg": "team label is required"}
    ]
    assert engine.evaluate("data.acme.serving.replicas.deny", FIVE_REPLICAS) == []


@pytest.mark.parametrize(
    "rule",
    [
        "data.acme.serving.replicas.level",  # a complete rule whose body fails
        "data.acme.serving.replicas.violation",  # a rule the package does not define
        "data.nowhere.deny",  # a package nobody uploaded
    ],
)
def test_an_undefined_rule_is_none(engine: OpaServerEngine, rule: str) -> None:
    assert engine.evaluate(rule, ONE_REPLICA) is None


def test_a_frozen_input_from_the_typed_model_is_sent_as_json(engine: OpaServerEngine) -> None:
    frozen = MappingProxyType(
        {"resource": MappingProxyType({"metadata": {"name": "x"}, "spec": {"replicas": 0}})}
    )
    assert engine.evaluate("data.acme.serving.replicas.deny", frozen) == [
        "x: 0 replica(s), at least 2"
    ]


def test_evaluate_many_asks_once_per_input_through_one_generated_module(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    rules = [
        "data.acme.serving.replicas.deny",
        "data.acme.serving.replicas.warn",
        "data.acme.serving.replicas.level",
        "data.k8srequiredlabels.violation",
    ]
    server.clear_requests()
    first = engine.evaluate_many(rules, ONE_REPLICA)
    second = engine.evaluate_many(rules, FIVE_REPLICAS)
    assert first == [
        ["scorer: 1 replica(s), at least 2"],
        [{"msg": "no team label", "path": "/metadata/labels/team"}],
        None,
        [{"msg": "team label is required"}],
    ]
    assert second == [[], [], "low", [{"msg": "team label is required"}]]
    assert len(server.requests_to("PUT", "/v1/policies/auditor/_batch/")) == 1  # uploaded once
    posts = server.requests_to("POST", "/v1/data/auditor_batch/")
    assert len(posts) == 2


def test_evaluate_many_tells_which_rule_failed_and_answers_the_others(
    server: OpaTestServer,
) -> None:
    conflict = RegoModule(
        "policies/conflict.rego",
        "acme.conflict",
        'package acme.conflict\n\nmode := "a" if input.a\n\nmode := "b" if input.b\n\n'
        'deny contains "x" if input.a\n',
    )
    with OpaServerEngine(server.url, retries=0) as engine:
        engine.load([conflict], {})
        values = engine.evaluate_many(
            ["data.acme.conflict.mode", "data.acme.conflict.deny"], {"a": True, "b": True}
        )
    assert isinstance(values[0], PolicyEvalError)
    assert "eval_conflict_error" in str(values[0])
    assert "policies/conflict.rego:5" in str(values[0])  # its own file, the line after the import
    assert values[1] == ["x"]


def test_with_upload_false_evaluate_many_asks_rule_by_rule_and_writes_nothing(
    server: OpaTestServer,
) -> None:
    server.put_policy("bundle/replicas.rego", SERVING.text)
    server.put_data("acme", DATA["acme"])
    server.clear_requests()
    with OpaServerEngine(server.url, retries=0, upload=False) as engine:
        engine.load([SERVING], {"ignored": True})
        values = engine.evaluate_many(
            ["data.acme.serving.replicas.deny", "data.acme.serving.replicas.level"], FIVE_REPLICAS
        )
    assert values == [[], "low"]
    assert [r.method for r in server.requests] == ["GET", "POST", "POST"]  # list, then 2 rules
    assert server.policy_ids() == ["bundle/replicas.rego"]  # and close() deleted nothing
    assert server.data() == DATA


def test_with_upload_false_a_package_the_server_lacks_is_a_server_error(
    server: OpaTestServer,
) -> None:
    # evaluating it would answer undefined for every rule: every resource would pass
    engine = OpaServerEngine(server.url, retries=0, upload=False)
    with pytest.raises(PolicyServerError, match=r"acme\.serving\.replicas") as caught:
        engine.load([SERVING], {})
    assert caught.value.exit_code == 3


def test_a_module_calling_a_function_of_a_later_one_is_uploaded_after_it(
    server: OpaTestServer,
) -> None:
    user = RegoModule(
        "policies/uses.rego",
        "acme.uses",
        "package acme.uses\n\nimport data.acme.lib\n\ndeny contains lib.label(1) if true\n",
    )
    lib = RegoModule(
        "policies/lib.rego", "acme.lib", 'package acme.lib\n\nlabel(n) := sprintf("#%d", [n])\n'
    )
    with OpaServerEngine(server.url, retries=0) as engine:
        engine.load([user, lib], {})
        assert engine.evaluate("data.acme.uses.deny", {}) == ["#1"]
    puts = [r.path.rsplit("/", 1)[-1] for r in server.requests_to("PUT", "/v1/policies/")]
    assert puts == ["uses.rego", "lib.rego", "uses.rego"]  # refused once, then accepted


def test_close_deletes_the_policies_the_generated_modules_and_the_data(
    server: OpaTestServer,
) -> None:
    server.put_policy("someone-else", "package other\n\nimport rego.v1\n\np := 1\n")
    engine = OpaServerEngine(server.url, retries=0)
    engine.load([SERVING, TEMPLATE], DATA)
    engine.evaluate_many(
        ["data.acme.serving.replicas.deny", "data.k8srequiredlabels.violation"], {}
    )
    assert len(server.policy_ids()) == 4
    engine.close()
    assert server.policy_ids() == ["someone-else"]
    assert server.data() == {}


def test_loading_again_replaces_what_was_uploaded(server: OpaTestServer) -> None:
    with OpaServerEngine(server.url, retries=0) as engine:
        engine.load([SERVING, TEMPLATE], DATA)
        engine.load([TEMPLATE], {})
        assert server.policy_ids() == ["auditor/policies/gatekeeper/required-labels.yaml"]
        assert server.data() == {}


def test_policies_lost_by_a_server_restart_are_uploaded_again(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    rules = ["data.acme.serving.replicas.deny", "data.acme.serving.replicas.warn"]
    assert engine.evaluate_many(rules, ONE_REPLICA)[0]
    for policy_id in server.policy_ids():  # what an OPA restart does to its in-memory store
        server.delete_policy(policy_id)
    assert engine.evaluate_many(rules, ONE_REPLICA)[0] == ["scorer: 1 replica(s), at least 2"]
    for policy_id in server.policy_ids():
        server.delete_policy(policy_id)
    assert engine.evaluate("data.acme.serving.replicas.warn", ONE_REPLICA)  # not a silent pass


# -- load errors ---------------------------------------------------------------------------


def test_a_syntax_error_is_a_load_error_naming_the_modules_file_and_line(
    server: OpaTestServer,
) -> None:
    broken = RegoModule(
        "policies/broken.rego",
        "acme.broken",
        "# METADATA\n# title: Broken\npackage acme.broken\n\ndeny contains msg if {\n\tmsg :=\n}\n",
    )
    with OpaServerEngine(server.url, retries=0) as engine, pytest.raises(PolicyLoadError) as caught:
        engine.load([SERVING, broken], {})
    # line 6 of the file, though line 7 of the text sent (after the inserted import)
    assert (caught.value.file, caught.value.line) == ("policies/broken.rego", 6)
    assert "rego_parse_error" in caught.value.message
    assert caught.value.exit_code == 2


def test_a_load_error_in_a_template_counts_lines_from_the_file(server: OpaTestServer) -> None:
    broken = RegoModule(
        TEMPLATE.source,
        TEMPLATE.package,
        TEMPLATE.text.replace("msg := ", 'msg := "'),
        v0=True,
        line_offset=9,
    )
    with OpaServerEngine(server.url, retries=0) as engine, pytest.raises(PolicyLoadError) as caught:
        engine.load([broken], {})
    assert caught.value.file == TEMPLATE.source
    assert caught.value.line == 9 + 5


def test_a_compile_error_reported_by_the_server_names_the_module(server: OpaTestServer) -> None:
    unsafe = RegoModule(
        "policies/unsafe.rego",
        "acme.unsafe",
        "package acme.unsafe\n\ndeny contains msg if {\n\ttrue\n}\n",
    )
    with OpaServerEngine(server.url, retries=0) as engine, pytest.raises(PolicyLoadError) as caught:
        engine.load([unsafe], {})
    assert caught.value.file == "policies/unsafe.rego"
    assert caught.value.line == 3
    assert "rego_unsafe_var_error" in caught.value.message


def test_a_v0_module_on_a_v1_only_server_says_to_run_it_v0_compatible() -> None:
    with (
        OpaTestServer(rego_version="v1") as server,
        OpaServerEngine(server.url, retries=0) as engine,
        pytest.raises(PolicyLoadError) as caught,
    ):
        engine.load([TEMPLATE], {})
    assert "`if` keyword is required" in caught.value.message
    assert caught.value.hint is not None and "--v0-compatible" in caught.value.hint
    assert (caught.value.file, caught.value.line) == (TEMPLATE.source, 9 + 3)


# -- run-time errors -----------------------------------------------------------------------


def test_a_runtime_error_is_a_policy_eval_error_for_that_policy(server: OpaTestServer) -> None:
    ratio = RegoModule(
        "policies/ratio.rego",
        "acme.ratio",
        'package acme.ratio\n\ndeny contains "low" if {\n\t12 / input.replicas > 5\n}\n',
    )
    with OpaServerEngine(server.url, retries=0) as engine:
        engine.load([ratio], {})
        assert engine.evaluate("data.acme.ratio.deny", {"replicas": 1}) == ["low"]
        with pytest.raises(PolicyEvalError, match="eval_builtin_error: divide by zero") as caught:
            engine.evaluate("data.acme.ratio.deny", {"replicas": 0})
    assert "policies/ratio.rego:4" in str(caught.value)
    assert not isinstance(caught.value, PolicyServerError)


def test_a_rule_that_is_not_a_reference_is_a_policy_eval_error(engine: OpaServerEngine) -> None:
    with pytest.raises(PolicyEvalError, match="not a reference"):
        engine.evaluate("data.acme.serving.replicas.deny[0] + 1", {})


# -- the server cannot answer: incomplete, never a pass ------------------------------------


def test_policy_server_error_makes_the_run_incomplete() -> None:
    assert issubclass(PolicyServerError, SourceError)
    assert PolicyServerError("x").exit_code == 3


def test_an_unreachable_server_is_a_server_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # closed again: nothing listens there
    engine = OpaServerEngine(f"http://127.0.0.1:{port}", retries=0)
    with pytest.raises(PolicyServerError, match="unreachable: Connection refused"):
        engine.load([SERVING], DATA)
    with pytest.raises(PolicyServerError, match="unreachable"):
        engine.evaluate("data.acme.serving.replicas.deny", ONE_REPLICA)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_failure_status_is_a_server_error_not_a_policy_error(
    server: OpaTestServer, engine: OpaServerEngine, status: int
) -> None:
    server.inject(Fault(path="/v1/data/", method="POST", status=status, message="boom"))
    with pytest.raises(PolicyServerError, match=f"{status} internal_error: boom"):
        engine.evaluate("data.acme.serving.replicas.deny", ONE_REPLICA)
    with pytest.raises(PolicyServerError):  # evaluate_many does not turn it into an entry
        engine.evaluate_many(
            ["data.acme.serving.replicas.deny", "data.k8srequiredlabels.violation"], {}
        )


def test_a_timeout_is_a_server_error(server: OpaTestServer) -> None:
    with OpaServerEngine(server.url, retries=0, timeout=0.2) as engine:
        engine.load([SERVING], DATA)
        server.inject(Fault(path="/v1/data/", method="POST", latency=2, times=1))
        with pytest.raises(PolicyServerError, match=r"did not answer within 0.2s"):
            engine.evaluate("data.acme.serving.replicas.deny", ONE_REPLICA)


def test_a_dropped_connection_is_a_server_error(
    server: OpaTestServer, engine: OpaServerEngine
) -> None:
    server.inject(Fault(path="/v1/data/", method="POST", drop=True, times=1))
    with pytest.raises(PolicyServerError, match="closed connection without response"):
        engine.evaluate("data.acme.serving.replicas.deny", ONE_REPLICA)
    assert engine.evaluate("data.acme.serving.replicas.deny", FIVE_REPLICAS) == []  # recovers


def test_a_failed_upload_is_a_server_error(server: OpaTestServer) -> None:
    server.inject(Fault(path="/v1/policies/", method="PUT", status=500))
    with OpaServerEngine(server.url, retries=0) as engine, pytest.raises(PolicyServerError):
        engine.load([SERVING], {})


# -- bearer token --------------------------------------------------------------------------


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "opa-token"
    path.write_text(TOKEN + "\n")  # a trailing newline, as `echo` and Secrets leave it
    return path


def test_the_bearer_token_from_the_file_is_sent_and_accepted(token_file: Path) -> None:
    with OpaTestServer(token=TOKEN) as server:
        with OpaServerEngine(server.url, retries=0, token_file=str(token_file)) as engine:
            engine.load([SERVING], DATA)
            assert engine.evaluate("data.acme.serving.replicas.deny", FIVE_REPLICAS) == []
        assert {r.authorization for r in server.requests} == {f"Bearer {TOKEN}"}
        assert server.policy_ids() == []  # close() was authorized too


def test_a_wrong_token_is_a_server_error_that_never_shows_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    caplog.set_level(logging.DEBUG)
    with OpaTestServer(token=TOKEN) as server:
        engine = OpaServerEngine(server.url, retries=0, token_file=str(wrong))
        with pytest.raises(PolicyServerError) as caught:
            engine.load([SERVING], DATA)
        engine.close()
    assert "401 unauthorized: request rejected by administrative policy" in str(caught.value)
    assert caught.value.hint is not None and "token" in caught.value.hint
    assert "not-the-token" not in caught.value.diagnostics() + caplog.text + repr(engine)


def test_no_token_against_a_server_that_wants_one_is_a_server_error() -> None:
    with OpaTestServer(token=TOKEN) as server:
        engine = OpaServerEngine(server.url, retries=0)
        with pytest.raises(PolicyServerError, match="401"):
            engine.load([SERVING], {})


def test_a_missing_or_empty_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPA bearer-token file not found"):
        OpaServerEngine("http://127.0.0.1:8181", token_file=str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        OpaServerEngine("http://127.0.0.1:8181", token_file=str(tmp_path / "empty"))


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["opa:8181", "ftp://opa:8181", "http://", "http://opa:99999"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        OpaServerEngine(url)


def test_credentials_in_the_url_never_reach_messages() -> None:
    engine = OpaServerEngine("https://user:pass@opa.example.com/opa/?x=1")
    assert engine.url == "https://opa.example.com:443/opa"
    assert "pass" not in repr(engine)


@pytest.mark.parametrize(
    ("rule", "parts"),
    [
        ("data.a.b.deny", ["a", "b", "deny"]),
        ("a.b.deny", ["a", "b", "deny"]),
        ('data["k8s.io"].deny', ["k8s.io", "deny"]),
        ('data.lib["a \\"b\\""]', ["lib", 'a "b"']),
        ("data", []),
    ],
)
def test_rule_path_reads_dotted_and_bracketed_references(rule: str, parts: list[str]) -> None:
    assert rule_path(rule) == parts


def test_healthy_answers_from_the_health_endpoint(server: OpaTestServer) -> None:
    assert OpaServerEngine(server.url).healthy()
    server.inject(Fault(path="/health", status=500))
    assert not OpaServerEngine(server.url, retries=0).healthy()


# -- the test server speaks OPA's API --------------------------------------------------------


def test_the_test_server_answers_a_compile_error_as_opa_does(server: OpaTestServer) -> None:
    response = requests.put(server.url + "/v1/policies/x", data="package x\n\np := \n", timeout=5)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_parameter"
    assert body["message"] == "error(s) occurred while compiling module(s)"
    (error,) = body["errors"]
    assert error["code"] == "rego_parse_error"
    assert error["location"]["file"] == "x"
    assert error["location"]["row"] >= 3


def test_the_test_server_answers_undefined_without_result(server: OpaTestServer) -> None:
    server.put_policy("x", "package x\n\nimport rego.v1\n\np := 1 if input.on\n")
    url = server.url + "/v1/data/x/p"
    assert requests.post(url, json={"input": {"on": True}}, timeout=5).json() == {"result": 1}
    assert requests.post(url, json={"input": {}}, timeout=5).json() == {}
    assert requests.post(url, json={}, timeout=5).json()["warning"]["code"] == "api_usage_warning"


def test_the_test_server_patches_and_deletes_data(server: OpaTestServer) -> None:
    server.put_data("a", {"b": [1]})
    url = server.url + "/v1/data/a"
    patch: list[Any] = [
        {"op": "add", "path": "b/-", "value": 2},
        {"op": "add", "path": "c", "value": 3},
    ]
    assert requests.patch(url, json=patch, timeout=5).status_code == 204
    assert requests.get(url, timeout=5).json() == {"result": {"b": [1, 2], "c": 3}}
    assert requests.delete(url + "/c", timeout=5).status_code == 204
    missing = requests.delete(url + "/c", timeout=5)
    assert missing.status_code == 404 and missing.json()["code"] == "resource_not_found"
