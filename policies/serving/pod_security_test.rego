package auditor.serving.pod_security_test

import rego.v1

import data.auditor.serving.pod_security as policy
import data.auditor.test.fixtures as fx

test_restricted_pods_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.deny) == 0 with input as fx.llm_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as fx.seldon_input
}

test_privileged_container_denied if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/containers/0/securityContext", "value": {"privileged": true}}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/template/spec/containers/0/securityContext/privileged"
}

test_privileged_kserve_model_container_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "add", "path": "/resource/spec/predictor/model/securityContext", "value": {"privileged": true}}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/predictor/model/securityContext/privileged"
}

test_privileged_serving_runtime_denied if {
	inp := json.patch(fx.runtime_input, [{"op": "replace", "path": "/resource/spec/containers/0/securityContext/privileged", "value": true}])
	count(policy.deny) == 1 with input as inp
}

test_host_namespaces_denied if {
	inp := json.patch(fx.isvc_input, [
		{"op": "add", "path": "/resource/spec/predictor/hostNetwork", "value": true},
		{"op": "add", "path": "/resource/spec/predictor/hostPID", "value": true},
		{"op": "add", "path": "/resource/spec/predictor/hostIPC", "value": true},
	])
	msgs := policy.deny with input as inp
	{m.path | some m in msgs} == {"/spec/predictor/hostNetwork", "/spec/predictor/hostPID", "/spec/predictor/hostIPC"}
}

test_host_network_false_passes if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/hostNetwork", "value": false}])
	count(policy.deny) == 0 with input as inp
}

test_host_path_denied if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/volumes/-", "value": {"name": "cache", "hostPath": {"path": "/var/lib/models"}}}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	m.path == "/spec/template/spec/volumes/1/hostPath"
	contains(m.msg, "/var/lib/models")
}

test_allowed_host_path if {
	inp := json.patch(fx.llm_input, [{"op": "add", "path": "/resource/spec/template/spec/volumes/-", "value": {"name": "cache", "hostPath": {"path": "/var/lib/models/llm"}}}])
	count(policy.deny) == 0 with input as inp with data.auditor.params.pod_security as {"allowed_host_paths": ["/var/lib/models/"]}
}

test_worker_spec_checked if {
	inp := json.patch(fx.isvc_input, [{"op": "add", "path": "/resource/spec/predictor/workerSpec", "value": {"hostNetwork": true, "containers": []}}])
	msgs := policy.deny with input as inp
	some m in msgs
	m.path == "/spec/predictor/workerSpec/hostNetwork"
}

test_seldon_v2_server_pod_spec if {
	server := {
		"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Server",
		"metadata": {"name": "mlserver", "namespace": "seldon-mesh"},
		"spec": {"serverConfig": "mlserver", "podSpec": {"volumes": [{"name": "x", "hostPath": {"path": "/"}}]}},
	}
	count(policy.deny) == 1 with input as {"resource": server}
}

test_non_serving_pods_out_of_scope if {
	pod := {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"}, "spec": {"hostNetwork": true, "containers": [{"name": "sh", "image": "busybox:1.36", "securityContext": {"privileged": true}}]}}
	count(policy.deny) == 0 with input as {"resource": pod}
}

test_null_safe if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
	count(policy.deny) == 0 with input as {"resource": {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime", "spec": {"volumes": [null, {"name": "x"}], "containers": [null]}}}
}
