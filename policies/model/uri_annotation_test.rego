package auditor.model.uri_annotation_test

import rego.v1

import data.auditor.model.uri_annotation as policy
import data.auditor.test.fixtures as fx

bare := json.patch(fx.llm, [{"op": "remove", "path": "/spec/template/metadata/annotations"}])

test_annotated_server_passes if {
	count(policy.deny) == 0 with input as fx.llm_input
}

test_annotation_on_object_metadata if {
	dep := json.patch(bare, [{"op": "add", "path": "/metadata/annotations", "value": {"auditor.gitops.ml/model-uri": "pvc://llm-models/x"}}])
	count(policy.deny) == 0 with input as {"resource": dep}
}

test_recognised_server_without_annotation_denied if {
	msgs := policy.deny with input as {"resource": bare, "model": null}
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "(image)")
	startswith(m.msg, "this workload looks like a model server")
}

test_labelled_server_without_annotation_denied if {
	dep := json.patch(bare, [
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "acme/custom-server:1.0"},
		{"op": "add", "path": "/spec/template/metadata/labels/auditor.gitops.ml~1model-server", "value": "true"},
	])
	msgs := policy.deny with input as {"resource": dep}
	some m in msgs
	contains(m.msg, "(label)")
}

test_server_recognised_by_model_uri_arg if {
	dep := json.patch(bare, [
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "registry.acme.io/fraud-scorer:v3-hotfix"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/args", "value": ["--model-uri", "gs://acme-models/fraud-scorer/v4-rc1"]},
	])
	msgs := policy.deny with input as {"resource": dep, "model": null}
	some m in msgs
	contains(m.msg, "a model URI in its args or env")
}

test_model_known_to_input_builder if {
	count(policy.deny) == 0 with input as {"resource": bare, "model": {"uri": "pvc://llm-models/x"}}
}

test_server_images_from_data if {
	dep := json.patch(bare, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "acme/scorer:2.0"}])
	count(policy.deny) == 0 with input as {"resource": dep}
	count(policy.deny) == 1 with input as {"resource": dep} with data.auditor.params.serving as {"server_image_keywords": ["acme/scorer"]}
}

test_other_kinds_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
}
