# Test fixtures: realistic input documents, shaped as the input builder makes them (one per
# resource; `resource` is the live body when the object is live). Loaded only by
# `auditor policy test`; tests derive failing cases from these with json.patch/object.union.
package auditor.test.fixtures

import rego.v1

digest_a := "sha256:9f2b5c0a1d7e4f3b8c6a2e1d0f9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"

digest_b := "sha256:4c1f0e2d3b5a6978c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"

# `base` with the top-level keys of `over` replaced (object.union would merge them deeply).
replace_keys(base, over) := object.union(object.remove(base, {k | some k, _ in over}), over)

git := {"repo": "https://github.com/acme/ml-gitops", "commit": "c4de7b92bee26d147443318997b1696b4ab3807c", "path": "overlays/prod/fraud-scorer.yaml"}

verified := {
	"signature": {"verified": true, "signers": [{"authority": "release-key", "identity": "release-key (ecdsa-p256)"}]},
	"datasets": [{"uri": "gs://acme-data/fraud/transactions-2026-10", "digest": "sha256:0d5e1b6a7c8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978e7d6c5b4a39281", "declared": true}],
	"evaluation": {"metrics": {"auc": 0.94}},
}

# KServe v1beta1 InferenceService, the `model` spec with a runtime chosen by model format.
isvc := {
	"apiVersion": "serving.kserve.io/v1beta1",
	"kind": "InferenceService",
	"metadata": {
		"name": "fraud-scorer",
		"namespace": "ml-prod",
		"labels": {"app.kubernetes.io/part-of": "risk-platform", "team": "risk-ml", "environment": "prod"},
		"annotations": {
			"auditor.gitops.ml/model-uri": "gs://acme-models/fraud-scorer/v3",
			"auditor.gitops.ml/model-digest": digest_a,
		},
		"uid": "3f6c1a52-0d0e-4a8e-9a43-1f4f1b1c2d3e",
		"resourceVersion": "918273",
		"generation": 4,
		"managedFields": [{"manager": "argocd-controller", "operation": "Apply", "time": "2026-11-18T09:00:00Z"}],
	},
	"spec": {"predictor": {
		"serviceAccountName": "fraud-scorer",
		"minReplicas": 2,
		"maxReplicas": 6,
		"model": {
			"modelFormat": {"name": "sklearn", "version": "1"},
			"storageUri": "gs://acme-models/fraud-scorer/v3",
			"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
		},
	}},
	"status": {"url": "http://fraud-scorer.ml-prod.example.com", "conditions": [{"type": "Ready", "status": "True"}]},
}

isvc_input := {
	"resource": isvc,
	"desired": json.remove(isvc, ["status", "metadata/uid", "metadata/resourceVersion", "metadata/generation", "metadata/managedFields"]),
	"live": isvc,
	"drift": [],
	"model": {"uri": "gs://acme-models/fraud-scorer/v3", "digest": digest_a, "name": "fraud-scorer", "version": "v3"},
	"provenance": verified,
	"git": git,
	"cluster": {"name": "prod"},
	"context": "audit",
}

# Recommender on Triton: OCI model pinned by digest, GPU, 10% canary.
recommender := {
	"apiVersion": "serving.kserve.io/v1beta1",
	"kind": "InferenceService",
	"metadata": {"name": "recommender", "namespace": "ml-prod", "labels": {"app.kubernetes.io/part-of": "growth"}},
	"spec": {"predictor": {
		"serviceAccountName": "recommender",
		"canaryTrafficPercent": 10,
		"minReplicas": 1,
		"maxReplicas": 4,
		"model": {
			"modelFormat": {"name": "triton"},
			"runtime": "kserve-tritonserver",
			"storageUri": concat("@", ["oci://registry.acme.io/models/recommender", digest_b]),
			"resources": {
				"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
				"limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
			},
		},
	}},
}

recommender_input := replace_keys(isvc_input, {
	"resource": recommender,
	"desired": recommender,
	"live": recommender,
	"model": {"uri": recommender.spec.predictor.model.storageUri, "digest": digest_b, "name": "recommender", "version": null},
})

# An LLM on a plain Deployment (vLLM), declared through pod-template annotations.
llm := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": {"name": "llm-server", "namespace": "ml-prod", "labels": {"app": "llm-server"}},
	"spec": {
		"replicas": 2,
		"selector": {"matchLabels": {"app": "llm-server"}},
		"template": {
			"metadata": {
				"labels": {"app": "llm-server"},
				"annotations": {
					"auditor.gitops.ml/model-uri": "pvc://llm-models/support-llm-7b",
					"auditor.gitops.ml/model-digest": digest_a,
				},
			},
			"spec": {
				"serviceAccountName": "llm-server",
				"containers": [{
					"name": "vllm",
					"image": "vllm/vllm-openai:v0.6.4",
					"args": ["--model", "/models/support-llm-7b", "--max-model-len", "8192"],
					"ports": [{"name": "http", "containerPort": 8000}],
					"env": [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm-gateway-key", "key": "api-key"}}}],
					"resources": {
						"requests": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": 1},
						"limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1},
					},
					"readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
					"volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": true}],
				}],
				"volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "llm-models"}}],
			},
		},
	},
}

llm_input := replace_keys(isvc_input, {
	"resource": llm,
	"desired": llm,
	"live": llm,
	"model": {"uri": "pvc://llm-models/support-llm-7b", "digest": digest_a, "name": "support-llm-7b", "version": null},
})

# A ClusterServingRuntime, as KServe ships them.
runtime := {
	"apiVersion": "serving.kserve.io/v1alpha1",
	"kind": "ClusterServingRuntime",
	"metadata": {"name": "kserve-sklearnserver"},
	"spec": {
		"annotations": {"prometheus.kserve.io/port": "8080"},
		"supportedModelFormats": [{"name": "sklearn", "version": "1", "autoSelect": true}],
		"protocolVersions": ["v1", "v2"],
		"containers": [{
			"name": "kserve-container",
			"image": "kserve/sklearnserver:v0.14.1",
			"args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
			"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
			"securityContext": {"allowPrivilegeEscalation": false, "privileged": false, "runAsNonRoot": true},
		}],
	},
}

runtime_input := {
	"resource": runtime, "desired": runtime, "live": runtime, "drift": [], "model": null,
	"provenance": null, "git": git, "cluster": {"name": "prod"}, "context": "audit",
}

# Seldon Core v1: a main predictor and a 10% canary, each with a pod spec.
seldon := {
	"apiVersion": "machinelearning.seldon.io/v1",
	"kind": "SeldonDeployment",
	"metadata": {"name": "churn", "namespace": "ml-prod"},
	"spec": {"predictors": [
		{
			"name": "main", "traffic": 90, "replicas": 2,
			"graph": {"name": "classifier", "implementation": "SKLEARN_SERVER", "modelUri": "gs://acme-models/churn/v7"},
			"componentSpecs": [{"spec": {
				"serviceAccountName": "churn",
				"containers": [{
					"name": "classifier",
					"image": "seldonio/sklearnserver:1.18.1",
					"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
				}],
			}}],
		},
		{
			"name": "canary", "traffic": 10, "replicas": 1,
			"graph": {"name": "classifier", "implementation": "SKLEARN_SERVER", "modelUri": "gs://acme-models/churn/v8"},
			"componentSpecs": [{"spec": {
				"serviceAccountName": "churn",
				"containers": [{
					"name": "classifier",
					"image": "seldonio/sklearnserver:1.18.1",
					"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
				}],
			}}],
		},
	]},
}

seldon_input := replace_keys(isvc_input, {
	"resource": seldon, "desired": seldon, "live": seldon,
	"model": {"uri": "gs://acme-models/churn/v7", "digest": null, "name": "churn", "version": "v7"},
})

# Not a model server: every policy must pass on it, with nothing optional set.
configmap := {
	"apiVersion": "v1",
	"kind": "ConfigMap",
	"metadata": {"name": "fraud-features", "namespace": "ml-prod"},
	"data": {"threshold": "0.82", "features.yaml": "window: 30d\n"},
}

configmap_input := {
	"resource": configmap, "desired": configmap, "live": configmap, "drift": [], "model": null,
	"git": git, "cluster": {"name": "prod"}, "context": "admission",
}

# A drift finding as the drift stage emits it.
drift_finding(class, path, expected, actual, manager) := {
	"category": "drift",
	"check": "drift.changed",
	"severity": "critical",
	"class": class,
	"resource": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "namespace": "ml-prod", "name": "fraud-scorer"},
	"path": path,
	"expected": expected,
	"actual": actual,
	"message": "changed",
	"changed_by": {"manager": manager, "operation": "Update", "time": "2026-11-20T02:13:00Z"},
	"fingerprint": "5d41402abc4b2a76b9719d911017c592",
}
