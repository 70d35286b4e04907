# METADATA
# title: Serving containers set requests and limits (GPU limits for GPU models)
# description: >-
#   Every serving container (KServe model/framework specs and containers, ServingRuntime
#   containers, Seldon component containers, Deployment-based model servers) requests and
#   limits cpu and memory. A container that requests a GPU must also limit it, to the same
#   amount; a container that serves a GPU model (a model format, runtime or image known to
#   need one, e.g. vLLM or TensorRT-LLM) must limit a GPU. Parameters
#   (data.auditor.params.resources): required_requests, required_limits (drop "cpu" from
#   required_limits if you do not use CPU limits), gpu_resources, gpu_model_formats,
#   gpu_runtime_keywords, gpu_image_keywords, exempt_containers (names, e.g. istio-proxy).
# custom:
#   severity: medium
#   controls:
#     - NIST-800-53-SC-6
#     - NIST-800-53-SC-5
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
package auditor.runtime.resources

import rego.v1

import data.auditor.lib.serving

default_params := {
	"required_requests": ["cpu", "memory"],
	"required_limits": ["cpu", "memory"],
	"gpu_resources": ["nvidia.com/gpu", "amd.com/gpu"],
	"gpu_model_formats": ["vllm", "tensorrt", "tensorrt-llm", "trtllm"],
	"gpu_runtime_keywords": ["vllm", "tensorrt-llm", "trtllm"],
	"gpu_image_keywords": ["vllm/vllm-openai", "tensorrt-llm", "tensorrtllm"],
	# containers whose resources something else governs, e.g. an injected mesh sidecar
	"exempt_containers": [],
}

params := object.union(default_params, data.auditor.params.resources) if {
	is_object(data.auditor.params.resources)
} else := default_params

exempt := {n | some n in params.exempt_containers}

# Each checked container once, with its requests and limits (rule values are cached within
# an evaluation, function results are not).
checked[c.path] := {
	"name": c.name,
	"container": c.container,
	"init": c.init,
	"model_format": object.get(c, "model_format", ""),
	"runtime": object.get(c, "runtime", ""),
	"requests": serving.obj_at(c.container, ["resources", "requests"]),
	"limits": serving.obj_at(c.container, ["resources", "limits"]),
} if {
	some c in data.auditor.lib.serving.containers
	not exempt[c.name]
}

set_value(x) if {
	x != null
	x != ""
}

# "requests.cpu", ... in message order; a label is made only for what is missing
missing[path] := m if {
	some path, c in checked
	m := array.concat(
		[concat(".", ["requests", r]) | some r in params.required_requests; not set_value(c.requests[r])],
		[concat(".", ["limits", r]) | some r in params.required_limits; not set_value(c.limits[r])],
	)
	count(m) > 0
}

deny contains {
	"msg": sprintf("container %s (%s) does not set %s", [checked[path].name, path, concat(", ", m)]),
	"path": concat("", [path, "/resources"]),
	"missing": m,
} if {
	some path, m in missing
}

# [path, gpu, requested] for every GPU a container requests
gpu_requests contains [path, gpu, c.requests[gpu]] if {
	some path, c in checked
	some gpu in params.gpu_resources
	set_value(c.requests[gpu])
}

deny contains {
	"msg": sprintf("container %s requests %v %s but sets no %s limit", [checked[path].name, requested, gpu, gpu]),
	"path": concat("", [path, "/resources/limits/", serving.escape(gpu)]),
} if {
	some [path, gpu, requested] in gpu_requests
	not set_value(checked[path].limits[gpu])
}

deny contains {
	"msg": sprintf("container %s requests %v %s but limits %v: extended resources need requests == limits", [checked[path].name, requested, gpu, limit]),
	"path": concat("", [path, "/resources/limits/", serving.escape(gpu)]),
} if {
	some [path, gpu, requested] in gpu_requests
	limit := checked[path].limits[gpu]
	set_value(limit)
	sprintf("%v", [requested]) != sprintf("%v", [limit])
}

gpu_model_formats := {f | some f in params.gpu_model_formats}

# Why a container serves a GPU model, "" when it does not. Written for regorus's compiled VM
# too (docs/rvm.md): it has a value for every container (an else chain where no branch holds
# is a value the VM binds, not undefined), and no branch iterates (the VM skips the rest of
# the chain when a branch's loop finds nothing).
gpu_reason(c) := sprintf("model format %s", [c.model_format]) if {
	c.model_format in gpu_model_formats
} else := sprintf("runtime %s", [c.runtime]) if {
	contains_any(lower(serving.str(c.runtime)), params.gpu_runtime_keywords)
} else := sprintf("image %s", [c.container.image]) if {
	contains_any(lower(serving.str(c.container.image)), params.gpu_image_keywords)
} else := ""

contains_any(text, needles) if {
	some needle in needles
	contains(text, needle)
}

deny contains {
	"msg": sprintf("container %s serves a GPU model (%s) but limits no GPU (%s)", [c.name, reason, concat(" or ", params.gpu_resources)]),
	"path": concat("", [path, "/resources/limits"]),
} if {
	some path, c in checked
	not c.init
	reason := gpu_reason(c)
	reason != ""
	not any_gpu(c.requests)
	not any_gpu(c.limits)
}

any_gpu(values) if {
	some gpu in params.gpu_resources
	set_value(values[gpu])
}
