package auditor.runtime.resources_test

import rego.v1

import data.auditor.runtime.resources as policy
import data.auditor.test.fixtures as fx

test_complete_resources_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.recommender_input
	count(policy.deny) == 0 with input as fx.llm_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as fx.seldon_input
}

test_missing_limits_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "remove", "path": "/resource/spec/predictor/model/resources/limits"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.missing == ["limits.cpu", "limits.memory"]
	m.path == "/spec/predictor/model/resources"
	contains(m.msg, "kserve-container")
}

test_no_resources_at_all_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "remove", "path": "/resource/spec/predictor/model/resources"}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.missing == ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]
}

test_cpu_limit_can_be_dropped_by_params if {
	inp := json.patch(fx.isvc_input, [{"op": "remove", "path": "/resource/spec/predictor/model/resources/limits/cpu"}])
	count(policy.deny) == 1 with input as inp
	count(policy.deny) == 0 with input as inp with data.auditor.params.resources as {"required_limits": ["memory"]}
}

test_gpu_request_without_limit_denied if {
	inp := json.patch(fx.recommender_input, [{"op": "remove", "path": "/resource/spec/predictor/model/resources/limits/nvidia.com~1gpu"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "sets no nvidia.com/gpu limit")
}

test_gpu_request_differs_from_limit_denied if {
	inp := json.patch(fx.llm_input, [{"op": "replace", "path": "/resource/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "value": 2}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "requests == limits")
}

test_gpu_quantity_string_vs_number_equal if {
	inp := json.patch(fx.llm_input, [{"op": "replace", "path": "/resource/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu", "value": "1"}])
	count(policy.deny) == 0 with input as inp
}

test_vllm_server_without_gpu_denied if {
	inp := json.patch(fx.llm_input, [{"op": "remove", "path": "/resource/spec/template/spec/containers/0/resources/requests/nvidia.com~1gpu"}, {"op": "remove", "path": "/resource/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "GPU model (image vllm/vllm-openai:v0.6.4)")
}

test_amd_gpu_counts if {
	inp := json.patch(fx.llm_input, [{"op": "replace", "path": "/resource/spec/template/spec/containers/0/resources", "value": {
		"requests": {"cpu": "4", "memory": "24Gi", "amd.com/gpu": 1},
		"limits": {"cpu": "8", "memory": "32Gi", "amd.com/gpu": 1},
	}}])
	count(policy.deny) == 0 with input as inp
}

test_vllm_model_format_without_gpu_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/resource/spec/predictor/model/modelFormat", "value": {"name": "vllm"}}])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, "model format vllm")
}

test_vllm_runtime_without_gpu_denied if {
	inp := json.patch(fx.isvc_input, [
		{"op": "replace", "path": "/resource/spec/predictor/model/modelFormat", "value": {"name": "huggingface"}},
		{"op": "add", "path": "/resource/spec/predictor/model/runtime", "value": "kserve-vllm"},
	])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, "runtime kserve-vllm")
}

test_huggingface_on_cpu_allowed if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/resource/spec/predictor/model/modelFormat", "value": {"name": "huggingface"}}])
	count(policy.deny) == 0 with input as inp
}

test_seldon_component_container if {
	inp := json.patch(fx.seldon_input, [{"op": "remove", "path": "/resource/spec/predictors/1/componentSpecs/0/spec/containers/0/resources/requests"}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/predictors/1/componentSpecs/0/spec/containers/0/resources"
}

test_serving_runtime_container if {
	inp := json.patch(fx.runtime_input, [{"op": "remove", "path": "/resource/spec/containers/0/resources"}])
	count(policy.deny) == 1 with input as inp
}

test_legacy_framework_spec if {
	isvc := json.patch(fx.isvc, [
		{"op": "remove", "path": "/spec/predictor/model"},
		{"op": "add", "path": "/spec/predictor/tensorflow", "value": {"storageUri": "gs://acme-models/flowers", "runtimeVersion": "2.6.2"}},
	])
	msgs := policy.deny with input as {"resource": isvc}
	some m in msgs
	m.path == "/spec/predictor/tensorflow/resources"
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "spec": {"predictor": null}}}
}
