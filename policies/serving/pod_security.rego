# METADATA
# title: No privileged containers or host namespaces and paths in serving pods
# description: >-
#   Serving pods (KServe components and worker specs, ServingRuntimes, Seldon components
#   and servers, Deployment-based model servers) run no privileged container and do not
#   share the node's network, PID or IPC namespace or mount its filesystem (hostPath).
#   Model weights belong in a PVC, an OCI image or an emptyDir the storage initializer
#   fills; shared memory for inference belongs in an emptyDir with medium Memory.
#   Parameters (data.auditor.params.pod_security): allowed_host_paths, path prefixes that
#   may be mounted (default none).
# custom:
#   severity: critical
#   controls:
#     - CIS-K8s-5.2.2
#     - CIS-K8s-5.2.3
#     - CIS-K8s-5.2.4
#     - CIS-K8s-5.2.5
#     - CIS-K8s-5.2.12
#     - NIST-800-53-AC-6
#     - NIST-800-53-CM-7
#   matchers:
#     # the kinds lib/serving.rego finds serving pods in (kind_classes: isvc, serving_runtime,
#     # seldon_deployment, seldon_server, workload); the policy cannot fire on any other kind
#     kinds:
#       - apiGroups: [serving.kserve.io]
#         kinds: [InferenceService, ServingRuntime, ClusterServingRuntime]
#       - apiGroups: [machinelearning.seldon.io]
#         kinds: [SeldonDeployment]
#       - apiGroups: [mlops.seldon.io]
#         kinds: [Server, ServerConfig]
#       - apiGroups: [apps]
#         kinds: [Deployment, StatefulSet, DaemonSet, ReplicaSet]
#       - apiGroups: [""]
#         kinds: [ReplicationController, Pod]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
#       - apiGroups: [argoproj.io]
#         kinds: [Rollout]
#       - apiGroups: [serving.knative.dev]
#         kinds: [Service]
package auditor.serving.pod_security

import rego.v1

import data.auditor.lib.serving

default_params := {"allowed_host_paths": []}

params := object.union(default_params, data.auditor.params.pod_security) if {
	is_object(data.auditor.params.pod_security)
} else := default_params

deny contains {
	"msg": sprintf("container %s (%s) is privileged", [c.name, c.path]),
	"path": concat("", [c.path, "/securityContext/privileged"]),
} if {
	some c in data.auditor.lib.serving.containers
	c.container.securityContext.privileged == true
}

deny contains {
	"msg": sprintf("%s sets %s: true", [p.path, field]),
	"path": concat("", [p.path, "/", field]),
} if {
	some p in data.auditor.lib.serving.pod_specs
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	p.spec[field] == true
}

deny contains {
	"msg": sprintf("%s mounts hostPath %v (volume %s)", [p.path, serving.str_at(v, ["hostPath", "path"]), serving.str_at(v, "name")]),
	"path": sprintf("%s/volumes/%d/hostPath", [p.path, i]),
} if {
	some p in data.auditor.lib.serving.pod_specs
	some i, v in serving.arr_at(p.spec, "volumes")
	is_object(v.hostPath)
	not host_path_allowed(serving.str_at(v, ["hostPath", "path"]))
}

host_path_allowed(path) if {
	some prefix in params.allowed_host_paths
	startswith(path, prefix)
}
