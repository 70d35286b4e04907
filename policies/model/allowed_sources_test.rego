package auditor.model.allowed_sources_test

import rego.v1

import data.auditor.model.allowed_sources as policy
import data.auditor.test.fixtures as fx

with_uri(inp, uri) := json.patch(inp, [
	{"op": "replace", "path": "/resource/spec/predictor/model/storageUri", "value": uri},
	{"op": "remove", "path": "/resource/metadata/annotations/auditor.gitops.ml~1model-uri"},
	{"op": "replace", "path": "/model/uri", "value": uri},
])

test_default_prefixes_allow_org_storage if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.recommender_input
	count(policy.deny) == 0 with input as fx.llm_input
	count(policy.deny) == 0 with input as fx.seldon_input
}

test_public_hub_denied_by_default if {
	msgs := policy.deny with input as with_uri(fx.isvc_input, "hf://meta-llama/Llama-3.1-8B")
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "hf://meta-llama/Llama-3.1-8B")
	m.path == "/spec/predictor/model/storageUri"
}

test_plain_http_denied if {
	count(policy.deny) == 1 with input as with_uri(fx.isvc_input, "http://models.example.com/m.joblib")
}

test_public_oci_registry_denied if {
	count(policy.deny) == 1 with input as with_uri(fx.isvc_input, concat("@", ["oci://docker.io/someone/model", fx.digest_a]))
}

test_configured_allow_list if {
	params := {"allowed_prefixes": ["gs://acme-models/", "oci://registry.acme.io/"]}
	count(policy.deny) == 0 with input as fx.isvc_input with data.auditor.params.model_sources as params
	count(policy.deny) == 0 with input as fx.recommender_input with data.auditor.params.model_sources as params
	msgs := policy.deny with input as with_uri(fx.isvc_input, "gs://someone-else/model") with data.auditor.params.model_sources as params
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "not under an allowed prefix")
}

test_longest_prefix_wins if {
	params := {"allowed_prefixes": ["gs://acme-models/", "hf://acme/"]}
	count(policy.deny) == 0 with input as with_uri(fx.isvc_input, "hf://acme/support-llm-7b") with data.auditor.params.model_sources as params
	msgs := policy.deny with input as with_uri(fx.isvc_input, "hf://meta-llama/Llama-3.1-8B") with data.auditor.params.model_sources as params
	some m in msgs
	contains(m.msg, "denied (prefix hf://)")
	params2 := {"allowed_prefixes": ["oci://"], "denied_prefixes": ["oci://docker.io/"]}
	count(policy.deny) == 1 with input as with_uri(fx.isvc_input, "oci://docker.io/x/y") with data.auditor.params.model_sources as params2
	params3 := {"allowed_prefixes": ["oci://docker.io/acme/"]}
	count(policy.deny) == 0 with input as with_uri(fx.isvc_input, "oci://docker.io/acme/y") with data.auditor.params.model_sources as params3
}

test_empty_allow_list_denies_everything if {
	msgs := policy.deny with input as fx.isvc_input with data.auditor.params.model_sources as {"allowed_prefixes": [], "denied_prefixes": []}
	count(msgs) == 1
}

test_annotation_uri_checked_for_deployments if {
	inp := json.patch(fx.llm_input, [
		{"op": "replace", "path": "/resource/spec/template/metadata/annotations/auditor.gitops.ml~1model-uri", "value": "hf://acme/support-llm-7b"},
		{"op": "replace", "path": "/model/uri", "value": "hf://acme/support-llm-7b"},
	])
	msgs := policy.deny with input as inp
	count(msgs) == 1
}

test_one_message_per_uri if {
	# storageUri and the model-uri annotation name the same model: one finding
	inp := with_uri(fx.isvc_input, "hf://x/y")
	inp2 := json.patch(inp, [{"op": "add", "path": "/resource/metadata/annotations/auditor.gitops.ml~1model-uri", "value": "hf://x/y"}])
	count(policy.deny) == 1 with input as inp2
}

test_every_seldon_graph_model_checked if {
	inp := json.patch(fx.seldon_input, [{"op": "replace", "path": "/resource/spec/predictors/1/graph/modelUri", "value": "https://huggingface.co/x/y"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictors/1/graph/modelUri"
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": fx.isvc, "model": null}
		with data.auditor.params.model_sources as {"allowed_prefixes": ["gs://acme-models/"]}
}
