package auditor.runtime.image_tags_test

import rego.v1

import data.auditor.runtime.image_tags as policy
import data.auditor.test.fixtures as fx

llm_image(image) := json.patch(fx.llm_input, [{"op": "replace", "path": "/resource/spec/template/spec/containers/0/image", "value": image}])

test_pinned_tags_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.llm_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as fx.seldon_input
}

test_latest_denied if {
	msgs := policy.deny with input as llm_image("vllm/vllm-openai:latest")
	count(msgs) == 1
	some m in msgs
	contains(m.msg, ":latest")
	m.path == "/spec/template/spec/containers/0/image"
}

test_untagged_denied if {
	msgs := policy.deny with input as llm_image("vllm/vllm-openai")
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "no tag or digest")
}

test_registry_port_is_not_a_tag if {
	count(policy.deny) == 1 with input as llm_image("registry.acme.io:5000/vllm/vllm-openai")
	count(policy.deny) == 0 with input as llm_image("registry.acme.io:5000/vllm/vllm-openai:v0.6.4")
}

test_digest_passes if {
	count(policy.deny) == 0 with input as llm_image(concat("@", ["vllm/vllm-openai", fx.digest_a]))
	count(policy.deny) == 0 with input as llm_image(concat("@", ["vllm/vllm-openai:latest", fx.digest_a]))
}

test_require_digest if {
	msgs := policy.deny with input as fx.llm_input with data.auditor.params.image_tags as {"require_digest": true}
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "without a digest")
	count(policy.deny) == 0 with input as llm_image(concat("@", ["vllm/vllm-openai", fx.digest_a]))
		with data.auditor.params.image_tags as {"require_digest": true}
}

test_init_container_checked if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/initContainers", "value": [{"name": "fetch", "image": "busybox"}]}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/template/spec/initContainers/0/image"
}

test_kserve_custom_predictor_container if {
	isvc := json.patch(fx.isvc, [
		{"op": "remove", "path": "/spec/predictor/model"},
		{"op": "add", "path": "/spec/predictor/containers", "value": [{"name": "kserve-container", "image": "ghcr.io/acme/fraud-server:latest"}]},
	])
	msgs := policy.deny with input as {"resource": isvc}
	some m in msgs
	m.path == "/spec/predictor/containers/0/image"
}

test_kserve_transformer_container if {
	isvc := json.patch(fx.isvc, [{"op": "add", "path": "/spec/transformer", "value": {"containers": [{"name": "kserve-container", "image": "acme/feast-transformer"}]}}])
	msgs := policy.deny with input as {"resource": isvc}
	some m in msgs
	m.path == "/spec/transformer/containers/0/image"
}

test_kserve_model_image_override if {
	isvc := json.patch(fx.isvc, [{"op": "add", "path": "/spec/predictor/model/image", "value": "kserve/sklearnserver:latest"}])
	msgs := policy.deny with input as {"resource": isvc}
	some m in msgs
	m.path == "/spec/predictor/model/image"
}

test_legacy_runtime_version_latest if {
	isvc := json.patch(fx.isvc, [
		{"op": "remove", "path": "/spec/predictor/model"},
		{"op": "add", "path": "/spec/predictor/sklearn", "value": {"storageUri": "gs://acme-models/iris", "runtimeVersion": "latest"}},
	])
	msgs := policy.deny with input as {"resource": isvc}
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictor/sklearn/runtimeVersion"
}

test_serving_runtime_containers if {
	inp := json.patch(fx.runtime_input, [{"op": "replace", "path": "/resource/spec/containers/0/image", "value": "kserve/sklearnserver"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
}

test_plain_deployments_out_of_scope if {
	# not a model server: no annotation, label, model or serving image
	dep := json.patch(fx.llm, [
		{"op": "remove", "path": "/spec/template/metadata/annotations"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:latest"},
	])
	count(policy.deny) == 0 with input as {"resource": dep, "model": null}
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService"}}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "spec": null}}
}
