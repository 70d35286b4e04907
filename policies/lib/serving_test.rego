package auditor.lib.serving_test

import rego.v1

import data.auditor.lib.serving
import data.auditor.test.fixtures as fx

test_image_parsing if {
	serving.image_tag("vllm/vllm-openai:v0.6.4") == "v0.6.4"
	serving.image_tag("vllm/vllm-openai") == ""
	serving.image_tag("registry.acme.io:5000/team/server") == ""
	serving.image_tag("registry.acme.io:5000/team/server:1.2") == "1.2"
	serving.image_tag("nginx@sha256:4c1f0e2d3b5a6978c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5") == ""
	serving.image_repository("registry.acme.io:5000/team/server:1.2") == "registry.acme.io:5000/team/server"
	serving.image_repository("nvcr.io/nvidia/tritonserver:24.08-py3") == "nvcr.io/nvidia/tritonserver"
	serving.image_has_digest(concat("@", ["nginx", fx.digest_a]))
	not serving.image_has_digest("nginx:1.27")
	not serving.image_has_digest("nginx@sha256:abc")
}

test_pointer_escaping if {
	serving.pointer(["metadata", "annotations", "auditor.gitops.ml/model-uri"]) == "/metadata/annotations/auditor.gitops.ml~1model-uri"
	serving.pointer(["spec", "predictors", 0, "graph", "children", 1, "modelUri"]) == "/spec/predictors/0/graph/children/1/modelUri"
	serving.escape("a~b") == "a~0b"
}

test_kinds if {
	serving.is_isvc with input as fx.isvc_input
	serving.is_serving with input as fx.isvc_input
	serving.is_serving_runtime with input as fx.runtime_input
	serving.is_seldon_deployment with input as fx.seldon_input
	serving.is_model_server_workload with input as fx.llm_input
	not serving.is_serving with input as fx.configmap_input
	not serving.is_serving with input as {}
	serving.display == "InferenceService ml-prod/fraud-scorer" with input as fx.isvc_input
	serving.display == "ClusterServingRuntime kserve-sklearnserver" with input as fx.runtime_input
}

test_isvc_containers if {
	cs := serving.containers with input as fx.isvc_input
	[c.path | some c in cs] == ["/spec/predictor/model"]
	some c in cs
	c.name == "kserve-container"
	c.model_format == "sklearn"
	c.implied
}

test_workload_containers if {
	cs := serving.containers with input as fx.llm_input
	{c.path | some c in cs} == {"/spec/template/spec/containers/0"}
}

test_model_uris_isvc_storage_wins_over_annotation if {
	uris := serving.model_uris with input as fx.isvc_input
	uris == {{"path": "/spec/predictor/model/storageUri", "uri": "gs://acme-models/fraud-scorer/v3"}}
}

test_model_uris_deployment_annotation if {
	uris := serving.model_uris with input as fx.llm_input
	uris == {{"path": "/spec/template/metadata/annotations/auditor.gitops.ml~1model-uri", "uri": "pvc://llm-models/support-llm-7b"}}
}

test_model_uris_custom_container_env if {
	isvc := json.patch(fx.isvc, [
		{"op": "remove", "path": "/spec/predictor/model"},
		{"op": "add", "path": "/spec/predictor/containers", "value": [{
			"name": "kserve-container", "image": "acme/server:1",
			"env": [{"name": "PORT", "value": "8080"}, {"name": "STORAGE_URI", "value": "gs://acme-models/custom/v1"}],
		}]},
	])
	uris := serving.model_uris with input as {"resource": isvc}
	uris == {{"path": "/spec/predictor/containers/0/env/1/value", "uri": "gs://acme-models/custom/v1"}}
}

test_model_uris_seldon_nested_graph if {
	sd := json.patch(fx.seldon, [{"op": "add", "path": "/spec/predictors/0/graph/children", "value": [{"name": "pre", "modelUri": "gs://acme-models/churn/pre"}]}])
	uris := serving.model_uris with input as {"resource": sd}
	{u.path | some u in uris} == {
		"/spec/predictors/0/graph/modelUri",
		"/spec/predictors/0/graph/children/0/modelUri",
		"/spec/predictors/1/graph/modelUri",
	}
}

test_model_uris_seldon_v2_and_trained_model if {
	m := {"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Model", "metadata": {"name": "iris"}, "spec": {"storageUri": "gs://acme-models/iris", "requirements": ["sklearn"]}}
	serving.model_uris == {{"path": "/spec/storageUri", "uri": "gs://acme-models/iris"}} with input as {"resource": m}
	tm := {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "TrainedModel", "metadata": {"name": "m1"}, "spec": {"inferenceService": "triton", "model": {"framework": "onnx", "storageUri": "s3://acme/m1", "memory": "1Gi"}}}
	serving.model_uris == {{"path": "/spec/model/storageUri", "uri": "s3://acme/m1"}} with input as {"resource": tm}
}

test_model_uris_storage_uris_list if {
	isvc := json.patch(fx.isvc, [{"op": "add", "path": "/spec/predictor/model/storageUris", "value": [{"uri": "gs://a/1", "mountPath": "/mnt/a"}, "gs://a/2"]}])
	uris := serving.model_uris with input as {"resource": isvc}
	{u.uri | some u in uris} == {"gs://acme-models/fraud-scorer/v3", "gs://a/1", "gs://a/2"}
}

test_prod_detection if {
	serving.is_prod with input as fx.isvc_input
	serving.is_prod with input as {"resource": {"metadata": {"namespace": "ml-production"}}}
	serving.is_prod with input as {"resource": {"metadata": {"namespace": "x", "labels": {"env": "Prod"}}}}
	not serving.is_prod with input as {"resource": {"metadata": {"namespace": "ml-dev"}}, "cluster": {"name": "dev"}}
	not serving.is_prod with input as {}
}

test_params_merge_with_defaults if {
	p := serving.params with data.auditor.params.serving as {"prod_namespaces": ["live-*"]}
	p.prod_namespaces == ["live-*"]
	p.prod_environments == ["prod", "production"]
}

hotfix := {
	"apiVersion": "apps/v1", "kind": "Deployment",
	"metadata": {"name": "fraud-scorer-hotfix", "namespace": "ml-prod"},
	"spec": {"template": {"spec": {"containers": [{
		"name": "scorer", "image": "registry.acme.io/fraud-scorer:v3-hotfix",
		"args": ["--port", "8080", "--model-uri", "gs://acme-models/fraud-scorer/v4-rc1"],
	}]}}},
}

test_model_uri_in_args if {
	serving.is_model_server_workload with input as {"resource": hotfix}
	uris := serving.model_uris with input as {"resource": hotfix}
	uris == {{"path": "/spec/template/spec/containers/0/args/3", "uri": "gs://acme-models/fraud-scorer/v4-rc1"}}
}

test_model_uri_in_flag_with_equals if {
	dep := json.patch(hotfix, [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--model_dir=s3://acme-models/x=1"]}])
	uris := serving.model_uris with input as {"resource": dep}
	uris == {{"path": "/spec/template/spec/containers/0/args/0", "uri": "s3://acme-models/x=1"}}
}

test_model_uri_in_env if {
	dep := json.patch(hotfix, [
		{"op": "remove", "path": "/spec/template/spec/containers/0/args"},
		{"op": "add", "path": "/spec/template/spec/containers/0/env", "value": [{"name": "MODEL_URI", "value": "hf://acme/x"}]},
	])
	uris := serving.model_uris with input as {"resource": dep}
	uris == {{"path": "/spec/template/spec/containers/0/env/0/value", "uri": "hf://acme/x"}}
}

test_unrelated_uris_in_args_ignored if {
	dep := json.patch(hotfix, [{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--output", "gs://acme-logs/x", "--model", "/models/x"]}])
	not serving.is_model_server_workload with input as {"resource": dep}
	count(serving.model_uris) == 0 with input as {"resource": dep}
}

test_annotation_wins_over_args if {
	dep := json.patch(hotfix, [{"op": "add", "path": "/metadata/annotations", "value": {"auditor.gitops.ml/model-uri": "gs://acme-models/fraud-scorer/v3"}}])
	uris := serving.model_uris with input as {"resource": dep}
	{u.uri | some u in uris} == {"gs://acme-models/fraud-scorer/v3"}
}

test_implied_container_keys_are_model_and_every_framework if {
	serving.implied_container_keys == {k | some k in array.concat(["model"], array.concat(serving.predictor_frameworks, serving.explainer_frameworks))}
}
