"""A seeded corpus of policy inputs over everything lib/serving.rego reads.

Each input is a DESIGN input document (`resource`, `desired`, `live`, `drift`, `model`,
`provenance`, `git`, `cluster`, `context`) around one object of a kind the library models
(KServe, Seldon, the pod-template workloads) or does not (ConfigMap, Service, another group's
Deployment), built from random choices among the values that decide each of the library's
branches: model server images, model URIs in args and env, storage URIs in every place KServe
and Seldon keep them, annotations and labels, production namespaces and clusters, GPU
resources, privileged containers, host namespaces and paths, service accounts, probes, canary
traffic, signatures, datasets and drift; and, now and then, a value of the wrong type where an
object, a list or a string belongs, which a null-safe library must survive. The same seed gives
the same corpus.
"""

from __future__ import annotations

import copy
import random
from typing import Any

DIGEST = "sha256:" + "ab" * 32

# Values of the wrong type, for the places that expect an object, a list or a string.
ODD = [None, 5, True, "text", [], {}, [1, "x"], {"a": 1}]

IMAGES = [
    "vllm/vllm-openai:v0.6.3",
    "vllm/vllm-openai:latest",
    "nvcr.io/nvidia/tritonserver:24.01-py3",
    "ghcr.io/huggingface/text-generation-inference@" + DIGEST,
    "registry.acme.io:5000/team/app:1.2",
    "registry.acme.io:5000/team/app",
    "localhost:5000/mlserver",
    "Docker.io/Library/Ollama/ollama:0.3",
    "tensorflow/serving:2.14.0",
    "pytorch/torchserve:latest-gpu",
    "busybox",
    "busybox:latest",
    "example.com/web@sha256:short",
    "example.com/tensorrt-llm:0.9@" + DIGEST,
    "",
]
SCHEMES = ["gs://", "s3://", "hf://", "oci://", "pvc://", "http://", "https://", "azureblob://"]
URIS = [
    "gs://acme-models/fraud/v3",
    "s3://bucket/model",
    "hf://meta-llama/Llama-3-8B",
    "oci://ghcr.io/acme/model@" + DIGEST,
    "oci://registry.acme.io/m:1",
    "oci://docker.io/x/y@" + DIGEST,
    "pvc://models/llama",
    "http://plain.example.com/m",
    "https://huggingface.co/org/m",
    "azureblob://acct/c/m",
    "file:///models/m",
    "gs://a=b/c",
]
NAMESPACES = ["prod", "prod-eu", "ml-prod", "production", "production-x", "ml", "dev", "", None]
CLUSTERS = ["prod", "prod-us", "edge-prod", "staging", "", None]
FRAMEWORKS = [
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "onnx", "triton", "lightgbm",
    "pmml", "paddle", "huggingface", "art", "alibi", "custom",
]  # fmt: skip
MODEL_FORMATS = ["sklearn", "vLLM", "vllm", "tensorrt-llm", "TensorRT", "huggingface", "", 7]
GPUS = ["nvidia.com/gpu", "amd.com/gpu"]

# (apiVersion, kind) of every kind the library models, and some it does not
WORKLOADS = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "ReplicationController"),
    ("v1", "Pod"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("argoproj.io/v1alpha1", "Rollout"),
    ("serving.knative.dev/v1", "Service"),
]
OTHERS = [
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("example.com/v1", "Deployment"),
    ("apps/v1beta1", "Widget"),
    ("serving.kserve.io", "InferenceService"),  # no version: a group all the same
]


class Corpus:
    """Random but reproducible inputs (`Corpus(seed).inputs(n)`)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- small choices --------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, values: list[Any]) -> Any:
        return copy.deepcopy(self.rng.choice(values))

    def odd(self, value: Any, p: float = 0.04) -> Any:
        """`value`, or now and then a value of the wrong type in its place."""
        return self.pick(ODD) if self.chance(p) else value

    def uri(self) -> Any:
        return self.odd(self.pick(URIS), 0.05)

    # -- containers and pods --------------------------------------------------------------

    def args(self) -> list[Any]:
        flag_forms = [
            lambda u: ["--model-uri", u],
            lambda u: [f"--model_dir={u}"],
            lambda u: [f"--MODEL={u}"],
            lambda u: ["-m", u],
            lambda u: ["--model", u],
            lambda u: ["--port", "8080"],
            lambda u: [u],
            lambda u: ["--model-uri"],
            lambda u: [f"model={u}"],
            lambda u: ["--served-model-name", "llama", u],
            lambda u: [f"--weights={u}"],
        ]
        out: list[Any] = []
        for _ in range(self.rng.randrange(4)):
            out.extend(self.rng.choice(flag_forms)(self.uri()))
        return [self.odd(a, 0.03) for a in out]

    def env(self) -> list[Any]:
        names = ["MODEL_URI", "STORAGE_URI", "model_path", "MODEL_NAME", "LOG_LEVEL", "storage_uri"]
        out = []
        for _ in range(self.rng.randrange(4)):
            entry: dict[str, Any] = {"name": self.odd(self.pick(names))}
            if self.chance(0.8):
                entry["value"] = self.pick([*URIS, "info", "", "llama"])
            out.append(self.odd(entry, 0.05))
        return out

    def resources(self) -> Any:
        def amounts(keys: list[str]) -> dict[str, Any]:
            return {
                k: self.pick(["1", "500m", "2Gi", 1, "", None]) for k in keys if self.chance(0.7)
            }

        out: dict[str, Any] = {}
        keys = ["cpu", "memory"]
        if self.chance(0.3):
            keys.append(self.pick(GPUS))
        if self.chance(0.85):
            out["requests"] = self.odd(amounts(keys))
        if self.chance(0.85):
            out["limits"] = self.odd(amounts(keys))
        return self.odd(out)

    def container(self, name: str) -> dict[str, Any]:
        c: dict[str, Any] = {}
        if self.chance(0.9):
            c["name"] = self.odd(name)
        if self.chance(0.92):
            c["image"] = self.odd(self.pick(IMAGES))
        if self.chance(0.5):
            c["args"] = self.odd(self.args())
        if self.chance(0.2):
            c["command"] = ["python", "-m", "server"]
        if self.chance(0.5):
            c["env"] = self.odd(self.env())
        if self.chance(0.8):
            c["resources"] = self.resources()
        if self.chance(0.2):
            c["securityContext"] = self.odd({"privileged": self.pick([True, False, "true"])})
        if self.chance(0.5):
            c["ports"] = self.odd([{"containerPort": 8080}] if self.chance(0.8) else [])
        if self.chance(0.5):
            c["readinessProbe"] = self.odd({"httpGet": {"path": "/ready", "port": 8080}}, 0.1)
        return c

    def containers(self, prefix: str, most: int = 3) -> list[Any]:
        return [
            self.odd(self.container(f"{prefix}{i}"), 0.03) for i in range(self.rng.randrange(most))
        ]

    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": self.odd(self.containers("c", 4))}
        if self.chance(0.2):
            spec["initContainers"] = self.containers("init", 2)
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if self.chance(0.08):
                spec[field] = self.pick([True, False])
        if self.chance(0.3):
            spec["volumes"] = self.odd(
                [
                    self.pick(
                        [
                            {"name": "weights", "hostPath": {"path": "/var/lib/models"}},
                            {"name": "opt", "hostPath": {"path": "/opt/models/x"}},
                            {"name": "shm", "emptyDir": {"medium": "Memory"}},
                            {"name": "h", "hostPath": "odd"},
                        ]
                    )
                    for _ in range(self.rng.randrange(1, 3))
                ]
            )
        if self.chance(0.5):
            spec["serviceAccountName"] = self.pick(["default", "server-sa", "", 3])
        if self.chance(0.1):
            spec["serviceAccount"] = self.pick(["default", "legacy-sa"])
        return spec

    # -- objects ----------------------------------------------------------------------------

    def metadata(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.odd(name, 0.02)}
        namespace = self.pick(NAMESPACES)
        if namespace is not None:
            meta["namespace"] = self.odd(namespace, 0.02)
        labels: dict[str, Any] = {}
        if self.chance(0.2):
            labels[self.pick(["environment", "env"])] = self.pick(["prod", "Production", "dev"])
        if self.chance(0.15):
            labels["auditor.gitops.ml/model-server"] = self.pick(["true", "True", True, "false"])
        if labels or self.chance(0.5):
            meta["labels"] = self.odd(labels)
        annotations: dict[str, Any] = {}
        if self.chance(0.3):
            annotations["auditor.gitops.ml/model-uri"] = self.odd(self.pick([*URIS, "", "  "]))
        if self.chance(0.2):
            annotations["auditor.gitops.ml/model-digest"] = self.odd(
                self.pick([DIGEST, "sha256:short", DIGEST.upper()])
            )
        if annotations or self.chance(0.3):
            meta["annotations"] = self.odd(annotations)
        return meta

    def workload(self, api_version: str, kind: str) -> dict[str, Any]:
        body: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
        body["metadata"] = self.metadata(f"{kind.lower()}-1")
        pod = self.pod_spec()
        template: dict[str, Any] = {"spec": pod}
        if self.chance(0.5):
            template["metadata"] = self.metadata("template")
        if kind == "Pod":
            body["spec"] = pod
        elif kind == "CronJob":
            body["spec"] = {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
        else:
            body["spec"] = {"replicas": 2, "template": self.odd(template, 0.03)}
        return body

    def isvc_component(self, component: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _ in range(self.rng.randrange(3)):
            framework = self.pick(FRAMEWORKS)
            spec: dict[str, Any] = {}
            if self.chance(0.8):
                spec["storageUri"] = self.uri()
            if framework == "model":
                spec["modelFormat"] = self.odd({"name": self.pick(MODEL_FORMATS)})
            if self.chance(0.3):
                spec["runtime"] = self.pick(["kserve-vllm", "kserve-sklearnserver", "", 4])
            if self.chance(0.3):
                spec["runtimeVersion"] = self.pick(["latest", "1.14.0"])
            if self.chance(0.3):
                spec["image"] = self.pick(IMAGES)
            if self.chance(0.3):
                spec["name"] = self.pick(["kserve-container", "", "main"])
            if self.chance(0.7):
                spec["resources"] = self.resources()
            if self.chance(0.15):
                spec["storageUris"] = self.odd(
                    [self.pick([self.uri(), {"uri": self.uri(), "mountPath": "/m"}, {"x": 1}])]
                )
            out[framework] = self.odd(spec, 0.03)
        if self.chance(0.3):
            out["containers"] = self.containers("kserve-container", 3)
            for c in out["containers"]:
                if isinstance(c, dict) and self.chance(0.5):
                    env = [{"name": "STORAGE_URI", "value": self.uri()}]
                    c["env"] = env + (c["env"] if isinstance(c.get("env"), list) else [])
        if self.chance(0.2):
            out["storageUri"] = self.uri()
        if self.chance(0.15):
            out["workerSpec"] = self.odd({"containers": self.containers("worker", 2)})
        if self.chance(0.3):
            out["canaryTrafficPercent"] = self.pick([10, 50, 60, 0, 100, 101, -1, "20", None])
        if self.chance(0.5):
            out["serviceAccountName"] = self.pick(["default", "isvc-sa", ""])
        if self.chance(0.1):
            out["hostNetwork"] = True
        if self.chance(0.2):
            out["volumes"] = [{"name": "h", "hostPath": {"path": "/data"}}]
        if component != "predictor" and self.chance(0.1):
            return self.odd(out, 0.3)
        return out

    def isvc(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"predictor": self.isvc_component("predictor")}
        for component in ("transformer", "explainer"):
            if self.chance(0.25):
                spec[component] = self.isvc_component(component)
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": self.metadata("isvc"),
            "spec": self.odd(spec, 0.02),
        }

    def graph(self, depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"name": f"node{depth}", "type": "MODEL"}
        if self.chance(0.7):
            node["modelUri"] = self.odd(self.uri())
        if depth < 3 and self.chance(0.5):
            node["children"] = [self.graph(depth + 1) for _ in range(self.rng.randrange(1, 3))]
        if self.chance(0.1):
            node["parameters"] = [{"name": "modelUri", "value": "gs://not/this"}]
        return node

    def seldon_deployment(self) -> dict[str, Any]:
        predictors = []
        for i in range(self.rng.randrange(4)):
            p: dict[str, Any] = {"name": f"p{i}", "graph": self.odd(self.graph(0), 0.05)}
            if self.chance(0.7):
                p["traffic"] = self.pick([10, 25, 50, 75, 90, 100, 120, "x", None])
            if self.chance(0.6):
                p["componentSpecs"] = [
                    self.odd({"spec": self.pod_spec()}) for _ in range(self.rng.randrange(1, 3))
                ]
            if self.chance(0.2):
                p["explainer"] = self.odd({"type": "AnchorTabular", "modelUri": self.uri()})
            predictors.append(self.odd(p, 0.03))
        return {
            "apiVersion": "machinelearning.seldon.io/v1",
            "kind": "SeldonDeployment",
            "metadata": self.metadata("sdep"),
            "spec": {"predictors": self.odd(predictors, 0.03)},
        }

    def serving_runtime(self, kind: str) -> dict[str, Any]:
        spec = self.pod_spec()
        spec["supportedModelFormats"] = [{"name": "sklearn", "autoSelect": True}]
        if self.chance(0.2):
            spec["workerSpec"] = {"containers": self.containers("worker", 2)}
        return {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": kind,
            "metadata": self.metadata("runtime"),
            "spec": spec,
        }

    def seldon_v2(self, kind: str) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if kind == "Model":
            spec = {"storageUri": self.uri(), "requirements": ["sklearn"]}
        elif self.chance(0.8):
            spec = {"podSpec": self.odd(self.pod_spec(), 0.05)}
        return {
            "apiVersion": "mlops.seldon.io/v1alpha1",
            "kind": kind,
            "metadata": self.metadata("seldon"),
            "spec": spec,
        }

    def trained_model(self) -> dict[str, Any]:
        return {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "TrainedModel",
            "metadata": self.metadata("tm"),
            "spec": {"inferenceService": "isvc", "model": self.odd({"storageUri": self.uri()})},
        }

    def other(self, api_version: str, kind: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": self.metadata("other"),
        }
        if kind == "ConfigMap":
            body["data"] = {"threshold": "0.5"}
        else:
            # the content a model server has, on a kind the library does not model
            body["spec"] = self.pick([self.pod_spec(), {"template": {"spec": self.pod_spec()}}])
        return body

    def resource(self) -> Any:
        roll = self.rng.random()
        if roll < 0.25:
            body = self.workload(*self.pick(WORKLOADS))
        elif roll < 0.45:
            body = self.isvc()
        elif roll < 0.55:
            body = self.seldon_deployment()
        elif roll < 0.62:
            body = self.serving_runtime(self.pick(["ServingRuntime", "ClusterServingRuntime"]))
        elif roll < 0.7:
            body = self.seldon_v2(self.pick(["Model", "Server", "ServerConfig"]))
        elif roll < 0.73:
            body = self.trained_model()
        else:
            body = self.other(*self.pick(OTHERS))
        if self.chance(0.02):
            body["kind"] = self.pick([None, 3])
        if self.chance(0.02):
            body["spec"] = self.pick(ODD)
        return body

    # -- the input document -----------------------------------------------------------------

    def provenance(self) -> Any:
        if self.chance(0.25):
            return self.pick([None, "odd", {}])
        signers = [
            self.pick([{"authority": "release-key", "identity": "k"}, "ci-keyless", {"x": 1}])
            for _ in range(self.rng.randrange(3))
        ]
        signature = {"verified": self.pick([True, False, None]), "signers": signers}
        if self.chance(0.3):
            signature["findings"] = [{"message": "wrong signer"}, {"message": ""}, 4]
        datasets = []
        for i in range(self.rng.randrange(3)):
            dataset: dict[str, Any] = {"uri": self.pick([f"gs://data/{i}", "", None])}
            if self.chance(0.5):
                dataset["name"] = f"ds{i}"
            if self.chance(0.7):
                dataset["digest"] = self.pick([DIGEST, {"sha256": "ab" * 32}, {}, ""])
            if self.chance(0.7):
                dataset["declared"] = self.pick([True, False, "yes"])
            datasets.append(self.odd(dataset, 0.05))
        return {
            "signature": self.odd(signature, 0.05),
            "datasets": self.odd(datasets, 0.05),
            "evaluation": {},
        }

    def drift(self) -> list[Any]:
        out = []
        for _ in range(self.rng.randrange(3) if self.chance(0.3) else 0):
            finding: dict[str, Any] = {
                "category": "drift",
                "check": self.pick(["drift.changed", "drift.removed", "drift.missing"]),
                "class": self.pick(["model", "runtime", "traffic", "scale", "config"]),
                "path": self.pick(["/spec/predictor/model/storageUri", "", None]),
                "expected": self.pick(["gs://a", None, {"x": [1]}]),
                "actual": self.pick(["gs://b", None, 3]),
                "fingerprint": "f" * 8,
            }
            if self.chance(0.6):
                finding["changed_by"] = self.pick(
                    [
                        {"manager": "kubectl-edit", "operation": "Update", "time": "t"},
                        {"manager": ""},
                        None,
                    ]
                )
            out.append(self.odd(finding, 0.05))
        return out

    def document(self) -> dict[str, Any]:
        body = self.resource()
        model: Any = None
        if self.chance(0.4):
            model = {
                "uri": self.pick([*URIS, "", None]),
                "digest": self.pick([DIGEST, None]),
                "name": "m",
                "version": None,
            }
        cluster = self.pick(CLUSTERS)
        return {
            "resource": body,
            "desired": copy.deepcopy(body) if self.chance(0.8) else None,
            "live": body if self.chance(0.7) else None,
            "drift": self.drift(),
            "model": self.odd(model, 0.03),
            "provenance": self.provenance(),
            "git": {"repo": "https://example.com/r", "commit": "c" * 40, "path": "a.yaml"},
            "cluster": {"name": cluster} if cluster is not None else None,
            "context": self.pick(["audit", "admission"]),
            "request": None,
        }

    def inputs(self, count: int) -> list[dict[str, Any]]:
        return [self.document() for _ in range(count)]


# Parameters other than the defaults, for every parameter the library reads.
SERVING_PARAMS = {
    "auditor": {
        "params": {
            "serving": {
                "server_image_keywords": ["acme/", "app"],
                "model_uri_schemes": ["gs://", "file:", "s3"],
                "prod_namespaces": ["ml", "*-eu"],
                "prod_clusters": ["staging"],
                "prod_environments": ["Production", "dev"],
            },
            "model_sources": {"allowed_prefixes": ["gs://acme-models/"], "denied_prefixes": []},
            "image_tags": {"require_digest": True, "denied_tags": ["latest", "1.2"]},
            "resources": {"exempt_containers": ["c1"], "required_limits": ["memory"]},
            "canary": {"max_percent": 20, "enforce_outside_prod": True},
            "pod_security": {"allowed_host_paths": ["/opt/models"]},
            "model_signed": {"required_authorities": ["release-key", "ci-keyless"]},
            "drift": {"deny_classes": ["model"], "warn_classes": ["runtime", "traffic"]},
        }
    }
}


def seldon_chain(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A Seldon graph of units each the only child of the one above, `leaf` at the bottom."""
    node = leaf
    for n in range(levels):
        node = {"name": f"u{n}", "modelUri": f"gs://acme-models/u{n}", "children": [node]}
    return node


def deep_graph_inputs(base: dict[str, Any]) -> list[dict[str, Any]]:
    """`base` (an input document) around SeldonDeployments whose graphs nest to around the
    depth the library reads a graph to (graph_depth, 32 keys and indexes: 16 levels of
    children; a 17th, or a unit's own list at the 16th, is too deep), and with a modelUri
    where walk found it but Seldon keeps none."""
    leaf = {"name": "leaf", "modelUri": "hf://x/y"}
    graphs = [seldon_chain(n, leaf) for n in (0, 1, 15, 16, 17, 20)]
    graphs.append(seldon_chain(16, {**leaf, "parameters": [{"name": "a", "value": "b"}]}))
    graphs.append(seldon_chain(15, {**leaf, "odd": {"deeper": {"modelUri": "s3://odd/place"}}}))
    return [
        {
            **base,
            "resource": {
                "apiVersion": "machinelearning.seldon.io/v1",
                "kind": "SeldonDeployment",
                "metadata": {"name": "deep", "namespace": "prod"},
                "spec": {"predictors": [{"name": "p", "graph": graph}]},
            },
        }
        for graph in graphs
    ]


__all__ = ["SERVING_PARAMS", "Corpus", "deep_graph_inputs", "seldon_chain"]
