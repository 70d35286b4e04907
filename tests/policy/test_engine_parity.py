"""The embedded engine and the `opa` engine give the same results on the same policies.

Every rule of a sample set (deny/warn/violation, strings and objects, v1 and v0 syntax,
undefined rules, run-time errors, a library called across modules) and of the shipped library
(`policies/`, tests excluded) is evaluated over generated inputs by `EmbeddedEngine` and by
`OpaServerEngine`, rule by rule and in batches, and the whole policy stage is compared.

The `opa` engine runs against the OPA-REST test server (regorus behind OPA's API: results must
be identical, byte for byte) and, when an `opa` binary is on PATH, against a real OPA (sets
come back in OPA's order, so set-valued results are compared as sets).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from auditor.model import ResourceRef
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import PolicyEngine, PolicyEvalError, PolicyLoadError, RegoModule
from auditor.policy.evaluate import evaluate_policies
from auditor.policy.loader import PolicySet, load_policy_files
from auditor.policy.opa_server import OpaServerEngine
from tests.opaserver.server import OpaTestServer

PROJECT = Path(__file__).resolve().parents[2]
LIBRARY = PROJECT / "policies"


# -- the sample set ------------------------------------------------------------------------

LABELS_V1 = """\
# METADATA
# title: Required labels
package sample.labels

required := data.sample.params.required_labels

deny contains msg if {
	some label in required
	not input.resource.metadata.labels[label]
	msg := sprintf("%s/%s: missing label %q", [
		input.resource.metadata.namespace, input.resource.metadata.name, label,
	])
}

warn contains {"msg": sprintf("%s runs %d replica(s)", [input.resource.metadata.name, n]), "replicas": n} if {
	n := input.resource.spec.replicas
	n < 2
}
"""

IMAGES_V1 = """\
package sample.images

import rego.v1

containers contains c if some c in input.resource.spec.template.spec.containers

containers contains c if some c in input.resource.spec.predictor.containers

pinned(image) if contains(image, "@sha256:")

pinned(image) if {
	parts := split(image, ":")
	count(parts) > 1
	parts[count(parts) - 1] != "latest"
}

deny contains {
	"msg": sprintf("container %s: image %s is not pinned", [c.name, c.image]),
	"path": "/spec",
	"details": {"image": c.image, "registries": {r | some d in containers; r := split(d.image, "/")[0]}},
} if {
	some c in containers
	not pinned(c.image)
}

tier := "gpu" if {
	some c in containers
	c.resources.limits["nvidia.com/gpu"]
} else := "cpu"

every_pinned if every c in containers { pinned(c.image) }
"""

ERRORS_V1 = """\
package sample.errors

import rego.v1

# Both bodies hold for some inputs: a conflict, an error at run time only.
mode := "strict" if input.resource.metadata.labels.strict == "true"

mode := "lenient" if input.resource.metadata.annotations.lenient == "true"

deny contains "strict mode" if mode == "strict"

# Division by zero when replicas is 0: a built-in error.
warn contains "too little headroom" if {
	ratio := 12 / input.resource.spec.replicas
	ratio > 5
}
"""

USES_LIB_V1 = """\
package sample.uses_lib

import rego.v1

import data.sample.lib.naming

deny contains msg if {
	not naming.valid(input.resource.metadata.name)
	msg := sprintf("name %q is not a DNS-1123 label", [input.resource.metadata.name])
}
"""

LIB_V1 = """\
package sample.lib.naming

import rego.v1

valid(name) if regex.match(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, name)
"""

GATEKEEPER_V0 = """\
package k8srequiredannotations

violation[{"msg": msg, "details": {"missing_annotations": missing}}] {
	provided := {a | input.review.object.metadata.annotations[a]}
	required := {a | a := input.parameters.annotations[_]}
	missing := required - provided
	count(missing) > 0
	msg := sprintf("you must provide annotation(s): %v", [sort(missing)])
}
"""

LEGACY_V0 = """\
package sample.legacy

import future.keywords.in

default allow = false

allow {
	input.context == "audit"
}

deny[msg] {
	not allow
	msg := "only audits are judged here"
}

deny[msg] {
	some env in ["dev", "test"]
	input.resource.metadata.labels.environment == env
	msg := sprintf("environment %s is not production", [env])
}

warn[{"msg": m}] {
	count(input.drift) > 1
	m := concat(", ", [d.check | d := input.drift[_]])
}
"""

SAMPLE_MODULES = (
    # the user of a library before the library: OPA must be given them in a working order
    RegoModule("sample/uses_lib.rego", "sample.uses_lib", USES_LIB_V1),
    RegoModule("sample/lib/naming.rego", "sample.lib.naming", LIB_V1),
    RegoModule("sample/labels.rego", "sample.labels", LABELS_V1),
    RegoModule("sample/images.rego", "sample.images", IMAGES_V1),
    RegoModule("sample/errors.rego", "sample.errors", ERRORS_V1),
    RegoModule("sample/gatekeeper.yaml", "k8srequiredannotations", GATEKEEPER_V0, v0=True),
    RegoModule("sample/legacy.rego", "sample.legacy", LEGACY_V0, v0=True),
)
SAMPLE_DATA = {"sample": {"params": {"required_labels": ["team", "app"]}}}
SAMPLE_RULES = (
    "data.sample.labels.deny",
    "data.sample.labels.warn",
    "data.sample.labels.violation",  # not defined in the package: undefined
    "data.sample.labels",  # a whole package
    "data.sample.images.deny",
    "data.sample.images.tier",
    "data.sample.images.every_pinned",
    "data.sample.errors.mode",
    "data.sample.errors.deny",
    "data.sample.errors.warn",
    "data.sample.uses_lib.deny",
    "data.k8srequiredannotations.violation",
    "data.sample.legacy.allow",
    "data.sample.legacy.deny",
    "data.sample.legacy.warn",
    "data.sample.nothing.deny",  # no such package
    "data.sample.params.required_labels",  # base data
)


def sample_inputs(count: int = 12) -> list[dict[str, Any]]:
    """Input documents shaped as DESIGN's, varied deterministically: labels present or not,
    0-3 replicas, tagged/latest/digest images, GPU limits, conflicting modes, bad names."""
    inputs = []
    for i in range(count):
        rng = random.Random(i)
        labels = {k: v for k, v in {"team": "risk", "app": "scorer"}.items() if rng.random() < 0.7}
        if rng.random() < 0.3:
            labels["environment"] = rng.choice(["dev", "test", "prod"])
        if i % 4 == 3:
            labels["strict"] = "true"
        annotations = {"owner": "risk-ml"} if rng.random() < 0.5 else {}
        if i % 6 == 3:
            annotations["lenient"] = "true"  # with strict: a conflict
        image = rng.choice(
            [
                "ghcr.io/acme/scorer:1.4.2",
                "ghcr.io/acme/scorer:latest",
                "ghcr.io/acme/scorer",
                "docker.io/kserve/sklearnserver@sha256:" + "ab" * 32,
            ]
        )
        container: dict[str, Any] = {"name": "kserve-container", "image": image}
        if rng.random() < 0.3:
            container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
        name = rng.choice(["fraud-scorer", "ranker", "Bad_Name"])
        body = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": name,
                "namespace": "ml-prod",
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {"replicas": i % 4, "predictor": {"containers": [container]}},
        }
        drift = [
            {"category": "drift", "check": rng.choice(["drift.changed", "drift.removed"])}
            for _ in range(rng.randrange(3))
        ]
        inputs.append(
            {
                "resource": body,
                "desired": body,
                "live": None,
                "drift": drift,
                "model": {
                    "uri": "gs://acme-models/fraud/v3",
                    "digest": None,
                    "name": name,
                    "version": None,
                },
                "provenance": {
                    "signature": {"verified": False, "signers": []},
                    "datasets": [],
                    "evaluation": {},
                },
                "git": None,
                "cluster": {"name": "prod-eu"},
                "context": rng.choice(["audit", "admission"]),
                # Gatekeeper's input, so the v0 template sees the same object
                "review": {
                    "object": body,
                    "kind": {
                        "group": "serving.kserve.io",
                        "version": "v1beta1",
                        "kind": "InferenceService",
                    },
                },
                "parameters": {"annotations": ["owner", "cost-center"][: 1 + i % 2]},
            }
        )
    return inputs


# -- backends ------------------------------------------------------------------------------


@dataclass
class OpaBackend:
    url: str
    exact: bool  # regorus behind the API: identical JSON; a real OPA orders sets its own way


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _opa_major(opa: str) -> int:
    out = subprocess.run([opa, "version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"Version:\s*v?(\d+)\.", out)
    return int(match.group(1)) if match else 1


@pytest.fixture(scope="module", params=["test-server", "opa-binary"])
def backend(request: pytest.FixtureRequest) -> Iterator[OpaBackend]:
    if request.param == "test-server":
        with OpaTestServer() as server:
            yield OpaBackend(server.url, exact=True)
        return
    opa = shutil.which("opa")
    if opa is None:
        pytest.skip(
            "no `opa` binary on PATH: parity with a real OPA server is checked where one is "
            "installed (https://www.openpolicyagent.org/docs/latest/#running-opa)"
        )
    port = _free_port()
    args = [opa, "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"]
    if _opa_major(opa) >= 1:
        args.append("--v0-compatible")  # Gatekeeper templates are Rego v0
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"`{' '.join(args)}` did not become healthy")
            time.sleep(0.1)
        yield OpaBackend(url, exact=False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- comparing -----------------------------------------------------------------------------

ERROR = "<error>"


def canonical(value: Any, exact: bool) -> Any:
    """The value as compared: JSON text, with every array sorted unless `exact` (OPA and
    regorus both return sets as arrays, each in its own order)."""
    if isinstance(value, PolicyEvalError):
        return ERROR
    if exact:
        return json.dumps(value, sort_keys=True)

    def normal(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((normal(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
        return v

    return json.dumps(normal(value), sort_keys=True)


def outcome(engine: PolicyEngine, rule: str, input_doc: Mapping[str, Any]) -> Any:
    try:
        return engine.evaluate(rule, input_doc)
    except PolicyEvalError as exc:
        return exc


def mismatches(
    embedded: PolicyEngine,
    opa: PolicyEngine,
    rules: Sequence[str],
    inputs: Sequence[Mapping[str, Any]],
    exact: bool,
) -> list[str]:
    out = []
    for n, input_doc in enumerate(inputs):
        for rule in rules:
            want = canonical(outcome(embedded, rule, input_doc), exact)
            got = canonical(outcome(opa, rule, input_doc), exact)
            if want != got:
                out.append(f"input {n}, {rule}:\n  embedded {want}\n  opa      {got}")
    return out


@pytest.fixture(scope="module")
def sample_engines(backend: OpaBackend) -> Iterator[tuple[EmbeddedEngine, OpaServerEngine]]:
    embedded = EmbeddedEngine()
    embedded.load(SAMPLE_MODULES, SAMPLE_DATA)
    with OpaServerEngine(backend.url, retries=0) as opa:
        opa.load(SAMPLE_MODULES, SAMPLE_DATA)
        yield embedded, opa


# -- the sample set ------------------------------------------------------------------------


def test_sample_rules_give_the_same_value_or_error_rule_by_rule(
    sample_engines: tuple[EmbeddedEngine, OpaServerEngine], backend: OpaBackend
) -> None:
    embedded, opa = sample_engines
    assert mismatches(embedded, opa, SAMPLE_RULES, sample_inputs(), backend.exact) == []


def test_sample_set_covers_values_undefined_and_errors(
    sample_engines: tuple[EmbeddedEngine, OpaServerEngine],
) -> None:
    # parity would hold vacuously if every rule were undefined: the matrix has all three
    _, opa = sample_engines
    results = [outcome(opa, rule, doc) for doc in sample_inputs() for rule in SAMPLE_RULES]
    errors = [r for r in results if isinstance(r, PolicyEvalError)]
    undefined = [r for r in results if r is None]
    nonempty = [r for r in results if isinstance(r, list) and r]
    assert errors and undefined and len(nonempty) > 30
    codes = {code for e in errors for code in re.findall(r"eval_\w+_error", str(e))}
    assert codes == {"eval_conflict_error", "eval_builtin_error"}
    assert all("sample/errors.rego" in str(e) for e in errors)  # the module's own file


def test_evaluate_many_gives_what_evaluate_gives(
    sample_engines: tuple[EmbeddedEngine, OpaServerEngine], backend: OpaBackend
) -> None:
    embedded, opa = sample_engines
    for n, input_doc in enumerate(sample_inputs()):
        want = [
            canonical(v, backend.exact) for v in embedded.evaluate_many(SAMPLE_RULES, input_doc)
        ]
        got = [canonical(v, backend.exact) for v in opa.evaluate_many(SAMPLE_RULES, input_doc)]
        one_by_one = [canonical(outcome(opa, r, input_doc), backend.exact) for r in SAMPLE_RULES]
        assert got == want == one_by_one, f"input {n}"


def load_error_at(
    engine: PolicyEngine, modules: Sequence[RegoModule]
) -> tuple[str | None, int | None]:
    """(file, line) of the PolicyLoadError loading `modules` raises."""
    # not pytest.raises: its ExceptionInfo and the traceback form a cycle that keeps the
    # regorus engine alive until the cyclic GC frees it, possibly on a server thread
    try:
        engine.load(modules, {})
    except PolicyLoadError as exc:
        return exc.file, exc.line
    raise AssertionError(f"{engine.name}: no PolicyLoadError")


@pytest.mark.parametrize(
    ("module", "line"),
    [
        (
            RegoModule(
                "bad/v1.rego", "bad.v1", "package bad.v1\n\ndeny contains msg if {\n\tmsg :=\n}\n"
            ),
            4,  # where the expression is missing
        ),
        (
            RegoModule(
                "bad/template.yaml",
                "bad.v0",
                'package bad.v0\n\nviolation[{"msg": msg}] {\n\tmsg := "x\n}\n',
                v0=True,
                line_offset=12,
            ),
            16,
        ),
    ],
    ids=["v1", "v0-in-a-template"],
)
def test_a_syntax_error_is_a_load_error_at_the_same_file_and_line(
    backend: OpaBackend, module: RegoModule, line: int
) -> None:
    with OpaServerEngine(backend.url, retries=0) as opa:
        errors = [
            load_error_at(engine, [*SAMPLE_MODULES[:2], module])
            for engine in (EmbeddedEngine(), opa)
        ]
    assert errors[0][0] == errors[1][0] == module.source
    if backend.exact:
        assert errors[0][1] == errors[1][1] == line
    else:  # OPA's parser may point at the next token
        assert errors[1][1] == pytest.approx(line, abs=1)


# -- the shipped library -------------------------------------------------------------------

LIBRARY_DATA = {
    "auditor": {
        "params": {
            "model_sources": {"allowed_prefixes": ["oci://ghcr.io/acme/", "gs://acme-models/"]},
            "image_tags": {"require_digest": True},
        }
    }
}


def library_set() -> PolicySet:
    policy_set = load_policy_files([str(LIBRARY)], hooks=())
    return PolicySet(
        modules=policy_set.modules,
        policies=policy_set.policies,
        data={**policy_set.data, **LIBRARY_DATA},
    )


def library_inputs() -> list[dict[str, Any]]:
    """The sample inputs plus variants a serving policy looks at: pinned and mutable model
    URIs, signatures, datasets, privileged pods, canary traffic, drift classes."""
    out = []
    for n, base in enumerate(sample_inputs(10)):
        doc = json.loads(json.dumps(base))
        rng = random.Random(100 + n)
        body = doc["resource"]
        predictor = body["spec"]["predictor"]
        predictor["model"] = {
            "modelFormat": {"name": "sklearn"},
            "storageUri": rng.choice(
                [
                    "gs://acme-models/fraud/v3",
                    "oci://ghcr.io/acme/fraud@sha256:" + "cd" * 32,
                    "s3://elsewhere/model",
                ]
            ),
        }
        if rng.random() < 0.4:
            predictor["serviceAccountName"] = rng.choice(["default", "fraud-scorer"])
        if rng.random() < 0.3:
            predictor["containers"][0]["securityContext"] = {"privileged": True}
        if rng.random() < 0.3:
            predictor["volumes"] = [{"name": "host", "hostPath": {"path": "/var/lib"}}]
        if rng.random() < 0.4:
            predictor["canaryTrafficPercent"] = rng.choice([10, 50, 100])
        doc["model"]["uri"] = predictor["model"]["storageUri"]
        if rng.random() < 0.5:
            doc["model"]["digest"] = "sha256:" + "cd" * 32
            doc["provenance"] = {
                "signature": {"verified": True, "signers": [{"authority": "release-key"}]},
                "datasets": [
                    {
                        "uri": "gs://acme-data/fraud",
                        "digest": "sha256:" + "ef" * 32,
                        "declared": rng.random() < 0.7,
                    }
                ],
                "evaluation": {},
            }
        doc["drift"] = [
            {
                "category": "drift",
                "check": "drift.changed",
                "class": rng.choice(["model", "runtime", "scale", "config"]),
                "path": "/spec/predictor/model/storageUri",
                "message": "changed",
                "severity": "high",
            }
            for _ in range(rng.randrange(3))
        ]
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def library(backend: OpaBackend) -> Iterator[tuple[PolicySet, EmbeddedEngine, OpaServerEngine]]:
    policy_set = library_set()
    embedded = EmbeddedEngine()
    embedded.load(policy_set.modules, policy_set.data)
    with OpaServerEngine(backend.url, retries=0, policy_prefix="auditor-library") as opa:
        opa.load(policy_set.modules, policy_set.data)
        yield policy_set, embedded, opa


def test_every_shipped_policy_rule_gives_the_same_result(
    library: tuple[PolicySet, EmbeddedEngine, OpaServerEngine], backend: OpaBackend
) -> None:
    policy_set, embedded, opa = library
    assert policy_set.policies, "the shipped library has policies"
    rules = [f"data.{p.package}.{rule}" for p in policy_set.policies for rule in p.rules]
    assert mismatches(embedded, opa, rules, library_inputs(), backend.exact) == []


def test_the_policy_stage_over_the_library_has_the_same_evaluations_and_findings(
    library: tuple[PolicySet, EmbeddedEngine, OpaServerEngine], backend: OpaBackend
) -> None:
    policy_set, embedded, opa = library
    ref = ResourceRef("prod-eu", "serving.kserve.io/v1beta1", "InferenceService", "ml-prod", "x")
    inputs = [(ref, doc) for doc in library_inputs()]

    def summary(engine: PolicyEngine) -> list[tuple[str, str, list[str]]]:
        outcome = evaluate_policies(policy_set, inputs, engine=engine)
        return [
            (
                e.policy,
                e.result,
                sorted(m.msg for m in e.messages)
                if not backend.exact
                else [m.msg for m in e.messages],
            )
            for e in outcome.evaluations
        ]

    want, got = summary(embedded), summary(opa)
    assert got == want
    assert {r for _, r, _ in got} >= {"pass", "fail"}
