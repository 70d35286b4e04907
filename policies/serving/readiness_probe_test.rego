package auditor.serving.readiness_probe_test

import rego.v1

import data.auditor.serving.readiness_probe as policy
import data.auditor.test.fixtures as fx

test_probe_present_passes if {
	count(policy.deny) == 0 with input as fx.llm_input
}

test_missing_probe_denied if {
	inp := json.patch(fx.llm_input, [{"op": "remove", "path": "/resource/spec/template/spec/containers/0/readinessProbe"}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/template/spec/containers/0/readinessProbe"
	contains(m.msg, "vllm")
}

test_sidecar_without_ports_ignored if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/containers/-", "value": {"name": "log-shipper", "image": "fluent/fluent-bit:3.1"}}])
	count(policy.deny) == 0 with input as inp
}

test_first_container_when_no_ports if {
	inp := json.patch(fx.llm_input, [
		{"op": "remove", "path": "/resource/spec/template/spec/containers/0/readinessProbe"},
		{"op": "remove", "path": "/resource/spec/template/spec/containers/0/ports"},
	])
	count(policy.deny) == 1 with input as inp
}

test_statefulset if {
	sts := json.patch(fx.llm, [
		{"op": "replace", "path": "/kind", "value": "StatefulSet"},
		{"op": "remove", "path": "/spec/template/spec/containers/0/readinessProbe"},
	])
	count(policy.deny) == 1 with input as {"resource": sts}
}

test_kserve_and_non_servers_out_of_scope if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as fx.configmap_input
	web := json.patch(fx.llm, [
		{"op": "remove", "path": "/spec/template/metadata/annotations"},
		{"op": "remove", "path": "/spec/template/spec/containers/0/readinessProbe"},
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.27"},
	])
	count(policy.deny) == 0 with input as {"resource": web}
}

test_null_safe if {
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"annotations": {"auditor.gitops.ml/model-uri": "pvc://m/x"}}}}
}
