package auditor.model.digest_pinned_test

import rego.v1

import data.auditor.model.digest_pinned as policy
import data.auditor.test.fixtures as fx

unannotated(inp) := json.patch(inp, [{"op": "remove", "path": "/resource/metadata/annotations/auditor.gitops.ml~1model-digest"}])

test_digest_annotation_passes if {
	count(policy.deny) == 0 with input as fx.isvc_input
}

test_oci_digest_uri_passes if {
	count(policy.deny) == 0 with input as fx.recommender_input
}

test_deployment_template_annotation_passes if {
	count(policy.deny) == 0 with input as fx.llm_input
}

test_bucket_path_without_annotation_denied if {
	msgs := policy.deny with input as unannotated(fx.isvc_input)
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictor/model/storageUri"
	contains(m.msg, "gs://acme-models/fraud-scorer/v3")
}

test_oci_tag_denied if {
	inp := json.patch(fx.recommender_input, [{"op": "replace", "path": "/resource/spec/predictor/model/storageUri", "value": "oci://registry.acme.io/models/recommender:v5"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
}

test_short_digest_denied if {
	inp := json.patch(fx.recommender_input, [{"op": "replace", "path": "/resource/spec/predictor/model/storageUri", "value": "oci://registry.acme.io/models/recommender@sha256:4c1f0e2d"}])
	count(policy.deny) == 1 with input as inp
}

test_malformed_annotation_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/resource/metadata/annotations/auditor.gitops.ml~1model-digest", "value": "9f2b5c0a"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "not sha256:<64 lowercase hex>")
}

test_legacy_framework_spec_denied if {
	isvc := json.patch(fx.isvc, [
		{"op": "remove", "path": "/metadata/annotations"},
		{"op": "remove", "path": "/spec/predictor/model"},
		{"op": "add", "path": "/spec/predictor/sklearn", "value": {"storageUri": "s3://acme-models/iris/v1"}},
	])
	msgs := policy.deny with input as {"resource": isvc}
	some m in msgs
	m.path == "/spec/predictor/sklearn/storageUri"
}

test_every_seldon_graph_model_checked if {
	msgs := policy.deny with input as fx.seldon_input
	{m.path | some m in msgs} == {"/spec/predictors/0/graph/modelUri", "/spec/predictors/1/graph/modelUri"}
}

test_seldon_annotation_pins if {
	inp := json.patch(fx.seldon_input, [{"op": "add", "path": "/resource/metadata/annotations", "value": {"auditor.gitops.ml/model-digest": fx.digest_a}}])
	count(policy.deny) == 0 with input as inp
}

test_deployment_uri_annotation_without_digest_denied if {
	inp := json.patch(fx.llm_input, [{"op": "remove", "path": "/resource/spec/template/metadata/annotations/auditor.gitops.ml~1model-digest"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/template/metadata/annotations/auditor.gitops.ml~1model-uri"
}

test_model_from_input_builder_only if {
	inp := {"resource": fx.configmap, "model": {"uri": "gs://x/y", "digest": null}}
	count(policy.deny) == 1 with input as inp
}

test_non_model_resources_pass if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": null, "model": null}
}
