package auditor.drift.model_runtime_test

import rego.v1

import data.auditor.drift.model_runtime as policy
import data.auditor.test.fixtures as fx

with_drift(findings) := json.patch(fx.isvc_input, [{"op": "replace", "path": "/drift", "value": findings}])

model_drift := fx.drift_finding("model", "/spec/predictor/model/storageUri", "gs://acme-models/fraud-scorer/v3", "gs://acme-models/fraud-scorer/v4", "kubectl-edit")

runtime_drift := fx.drift_finding("runtime", "/spec/template/spec/containers/0/image", "vllm/vllm-openai:v0.6.4", "vllm/vllm-openai:v0.6.5-hotfix", "kubectl-set")

test_no_drift_passes if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.warn) == 0 with input as fx.isvc_input
}

test_model_drift_denied if {
	msgs := policy.deny with input as with_drift([model_drift])
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictor/model/storageUri"
	m.class == "model"
	contains(m.msg, "/spec/predictor/model/storageUri")
	contains(m.msg, "kubectl-edit")
	contains(m.msg, "gs://acme-models/fraud-scorer/v4")
	m.fingerprint == "5d41402abc4b2a76b9719d911017c592"
}

test_runtime_drift_denied if {
	msgs := policy.deny with input as with_drift([runtime_drift])
	some m in msgs
	contains(m.msg, "runtime drift at /spec/template/spec/containers/0/image")
	contains(m.msg, "changed by kubectl-set (Update at 2026-11-20T02:13:00Z)")
}

test_other_classes_pass if {
	scale := fx.drift_finding("scale", "/spec/predictor/minReplicas", 2, 1, "kubectl-patch")
	config := fx.drift_finding("config", "/data/threshold", "0.82", "0.75", "kubectl-edit")
	count(policy.deny) == 0 with input as with_drift([scale, config])
	count(policy.warn) == 0 with input as with_drift([scale, config])
}

test_traffic_drift_warns if {
	traffic := fx.drift_finding("traffic", "/spec/predictor/canaryTrafficPercent", 10, 50, "kubectl-patch")
	count(policy.deny) == 0 with input as with_drift([traffic])
	msgs := policy.warn with input as with_drift([traffic])
	some m in msgs
	contains(m.msg, "Git 10, live 50")
}

test_classes_from_data if {
	traffic := fx.drift_finding("traffic", "/spec/predictor/canaryTrafficPercent", 10, 50, "kubectl-patch")
	params := {"deny_classes": ["model", "runtime", "traffic"]}
	count(policy.deny) == 1 with input as with_drift([traffic]) with data.auditor.params.drift as params
	count(policy.warn) == 0 with input as with_drift([traffic]) with data.auditor.params.drift as params
}

test_unknown_manager if {
	f := json.patch(model_drift, [{"op": "replace", "path": "/changed_by", "value": null}])
	msgs := policy.deny with input as with_drift([f])
	some m in msgs
	contains(m.msg, "changed by an unknown manager")
	m.changed_by == null
}

test_sparse_finding if {
	# only the class: every other field missing
	msgs := policy.deny with input as with_drift([{"class": "model"}])
	some m in msgs
	contains(m.msg, "model drift at (whole object)")
}

test_removed_field if {
	f := json.patch(runtime_drift, [
		{"op": "replace", "path": "/check", "value": "drift.removed"},
		{"op": "replace", "path": "/expected", "value": null},
		{"op": "replace", "path": "/actual", "value": ["--enforce-eager"]},
	])
	msgs := policy.deny with input as with_drift([f])
	some m in msgs
	contains(m.msg, `Git (unset), live ["--enforce-eager"]`)
}

test_field_added_by_hand if {
	f := json.patch(model_drift, [
		{"op": "replace", "path": "/check", "value": "drift.added"},
		{"op": "replace", "path": "/expected", "value": null},
		{"op": "replace", "path": "/actual", "value": {"name": "STORAGE_URI", "value": "s3://x/m"}},
	])
	msgs := policy.deny with input as with_drift([f])
	some m in msgs
	contains(m.msg, `Git (unset), live {"name":"STORAGE_URI","value":"s3://x/m"}`)
	m.check == "drift.added"
}

test_missing_object if {
	f := {"check": "drift.missing", "class": "model", "path": "", "changed_by": null}
	msgs := policy.deny with input as with_drift([f])
	some m in msgs
	contains(m.msg, "(whole object): drift.missing")
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"drift": null}
	count(policy.deny) == 0 with input as {"drift": [null, "x", {"class": null}]}
}
