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

# a graph of units each the only child of the one above, `n` levels of `children` above the
# last, which serves `uri` (built as text: Rego has no recursion)
chain(n, uri) := json.unmarshal(concat("", [
	concat("", [`{"name": "u", "children": [` | some _ in numbers.range(1, n)]),
	json.marshal({"name": "leaf", "modelUri": uri}),
	concat("", ["]}" | some _ in numbers.range(1, n)]),
]))

with_graph(graph) := json.patch(fx.seldon_input, [{"op": "replace", "path": "/resource/spec/predictors/1/graph", "value": graph}])

test_deep_seldon_graph_read_to_the_leaf if {
	# 16 levels of children: the leaf 32 keys and indexes down, at graph_depth
	msgs := policy.deny with input as with_graph(chain(16, "https://huggingface.co/x/y"))
	count(msgs) == 1
	some m in msgs
	m.path == concat("", ["/spec/predictors/1/graph", concat("", ["/children/0" | some _ in numbers.range(1, 16)]), "/modelUri"])
	count(policy.deny) == 0 with input as with_graph(chain(16, "gs://acme-models/churn/v2"))
}

test_seldon_graph_deeper_than_read_is_denied if {
	# 17 levels put the leaf below graph_depth: not read, so denied whatever it serves
	msgs := policy.deny with input as with_graph(chain(17, "gs://acme-models/churn/v2"))
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictors/1/graph"
	contains(m.msg, "nests deeper than 32 levels")
}
