package auditor.serving.service_account_test

import rego.v1

import data.auditor.serving.service_account as policy
import data.auditor.test.fixtures as fx

test_dedicated_accounts_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.recommender_input
	count(policy.deny) == 0 with input as fx.llm_input
	count(policy.deny) == 0 with input as fx.seldon_input
}

test_unset_predictor_account_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "remove", "path": "/resource/spec/predictor/serviceAccountName"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictor/serviceAccountName"
	contains(m.msg, "unset")
}

test_explicit_default_denied if {
	inp := json.patch(fx.llm_input, [{"op": "replace", "path": "/resource/spec/template/spec/serviceAccountName", "value": "default"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/template/spec/serviceAccountName"
}

test_deprecated_service_account_field_honoured if {
	inp := json.patch(fx.llm_input, [
		{"op": "remove", "path": "/resource/spec/template/spec/serviceAccountName"},
		{"op": "add", "path": "/resource/spec/template/spec/serviceAccount", "value": "llm-server"},
	])
	count(policy.deny) == 0 with input as inp
}

test_transformer_and_explainer_checked if {
	inp := json.patch(fx.isvc_input, [
		{"op": "add", "path": "/resource/spec/transformer", "value": {"containers": [{"name": "kserve-container", "image": "acme/t:1"}]}},
		{"op": "add", "path": "/resource/spec/explainer", "value": {"serviceAccountName": "default", "art": {"type": "SquareAttack"}}},
	])
	msgs := policy.deny with input as inp
	{m.path | some m in msgs} == {"/spec/transformer/serviceAccountName", "/spec/explainer/serviceAccountName"}
}

test_seldon_component_checked if {
	inp := json.patch(fx.seldon_input, [{"op": "remove", "path": "/resource/spec/predictors/1/componentSpecs/0/spec/serviceAccountName"}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/predictors/1/componentSpecs/0/spec/serviceAccountName"
}

test_cronjob_batch_inference if {
	cron := {
		"apiVersion": "batch/v1", "kind": "CronJob",
		"metadata": {"name": "nightly-scoring", "namespace": "ml-prod", "annotations": {"auditor.gitops.ml/model-uri": "gs://acme-models/churn/v7"}},
		"spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "score", "image": "acme/score:1.2"}]}}}}},
	}
	msgs := policy.deny with input as {"resource": cron}
	some m in msgs
	m.path == "/spec/jobTemplate/spec/template/spec/serviceAccountName"
}

test_non_serving_workloads_out_of_scope if {
	dep := json.patch(fx.llm, [
		{"op": "remove", "path": "/spec/template/metadata/annotations"},
		{"op": "remove", "path": "/spec/template/spec/serviceAccountName"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
	])
	count(policy.deny) == 0 with input as {"resource": dep}
}

test_model_server_label_brings_workload_in_scope if {
	dep := json.patch(fx.llm, [
		{"op": "remove", "path": "/spec/template/metadata/annotations"},
		{"op": "remove", "path": "/spec/template/spec/serviceAccountName"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "acme/custom-server:1.0"},
		{"op": "add", "path": "/metadata/labels/auditor.gitops.ml~1model-server", "value": "true"},
	])
	count(policy.deny) == 1 with input as {"resource": dep}
}

test_serving_runtime_has_no_account if {
	count(policy.deny) == 0 with input as fx.runtime_input
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"kind": "InferenceService"}}
}
