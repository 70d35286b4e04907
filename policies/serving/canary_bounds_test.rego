package auditor.serving.canary_bounds_test

import rego.v1

import data.auditor.serving.canary_bounds as policy
import data.auditor.test.fixtures as fx

canary(inp, percent) := json.patch(inp, [{"op": "replace", "path": "/resource/spec/predictor/canaryTrafficPercent", "value": percent}])

dev(inp) := json.patch(inp, [
	{"op": "replace", "path": "/resource/metadata/namespace", "value": "ml-dev"},
	{"op": "replace", "path": "/cluster/name", "value": "dev"},
])

test_canary_within_bounds_passes if {
	count(policy.deny) == 0 with input as fx.recommender_input
	count(policy.warn) == 0 with input as fx.recommender_input
	count(policy.deny) == 0 with input as canary(fx.recommender_input, 50)
	count(policy.deny) == 0 with input as canary(fx.recommender_input, 0)
}

test_canary_above_max_denied_in_prod if {
	msgs := policy.deny with input as canary(fx.recommender_input, 80)
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictor/canaryTrafficPercent"
	m.value == 80
	contains(m.msg, "0..50%")
	contains(m.msg, "production")
}

test_canary_above_max_warns_outside_prod if {
	inp := dev(canary(fx.recommender_input, 80))
	count(policy.deny) == 0 with input as inp
	count(policy.warn) == 1 with input as inp
}

test_enforce_outside_prod if {
	inp := dev(canary(fx.recommender_input, 80))
	count(policy.deny) == 1 with input as inp with data.auditor.params.canary as {"enforce_outside_prod": true}
}

test_prod_from_environment_label if {
	inp := json.patch(dev(canary(fx.recommender_input, 80)), [{"op": "add", "path": "/resource/metadata/labels/environment", "value": "prod"}])
	count(policy.deny) == 1 with input as inp
}

test_prod_from_namespace_only if {
	inp := json.patch(canary(fx.recommender_input, 80), [
		{"op": "replace", "path": "/cluster/name", "value": "eu-west-1"},
		{"op": "replace", "path": "/resource/metadata/namespace", "value": "prod-recsys"},
	])
	count(policy.deny) == 1 with input as inp
}

test_bounds_from_data if {
	params := {"min_percent": 5, "max_percent": 20}
	count(policy.deny) == 0 with input as fx.recommender_input with data.auditor.params.canary as params
	count(policy.deny) == 1 with input as canary(fx.recommender_input, 25) with data.auditor.params.canary as params
	count(policy.deny) == 1 with input as canary(fx.recommender_input, 1) with data.auditor.params.canary as params
}

test_invalid_percent_denied_everywhere if {
	count(policy.deny) == 1 with input as dev(canary(fx.recommender_input, 150))
	count(policy.deny) == 1 with input as dev(canary(fx.recommender_input, -5))
	count(policy.deny) == 1 with input as dev(canary(fx.recommender_input, "10"))
}

test_no_canary_passes if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.warn) == 0 with input as fx.isvc_input
}

test_transformer_canary_checked if {
	inp := json.patch(fx.isvc_input, [{"op": "add", "path": "/resource/spec/transformer", "value": {"canaryTrafficPercent": 90, "containers": []}}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/transformer/canaryTrafficPercent"
}

test_seldon_canary_predictor if {
	count(policy.deny) == 0 with input as fx.seldon_input

	# the predictor with most traffic is the main one; the others are canaries
	msgs := policy.deny with input as fx.seldon_input with data.auditor.params.canary as {"max_percent": 5}
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictors/1/traffic"
	inp := json.patch(fx.seldon_input, [
		{"op": "replace", "path": "/resource/spec/predictors/0/traffic", "value": 5},
		{"op": "replace", "path": "/resource/spec/predictors/1/traffic", "value": 95},
	])
	msgs2 := policy.deny with input as inp with data.auditor.params.canary as {"max_percent": 5}
	count(msgs2) == 0
}

# The main predictor and the canary paths are indexed as the manifest's predictors, also
# when one of them sets no traffic or is not an object.
test_seldon_predictor_without_traffic if {
	inp := json.patch(fx.seldon_input, [
		{"op": "remove", "path": "/resource/spec/predictors/0/traffic"},
		{"op": "replace", "path": "/resource/spec/predictors/1/traffic", "value": 75},
	])
	count(policy.deny) == 0 with input as inp

	shifted := json.patch(fx.seldon_input, [
		{"op": "add", "path": "/resource/spec/predictors/0", "value": "not a predictor"},
		{"op": "replace", "path": "/resource/spec/predictors/1/traffic", "value": 70},
		{"op": "replace", "path": "/resource/spec/predictors/2/traffic", "value": 30},
	])
	msgs := policy.deny with input as shifted with data.auditor.params.canary as {"max_percent": 5}
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/predictors/2/traffic"
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.warn) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment", "spec": {"predictors": [{"graph": {}}, null]}}}
	count(policy.deny) == 0 with input as {"resource": fx.recommender, "cluster": null}
}
