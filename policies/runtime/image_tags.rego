# METADATA
# title: No latest or untagged runtime images
# description: >-
#   Every image that serves models (containers and initContainers of serving pods, KServe
#   predictor/transformer/explainer containers and the images embedded in model and
#   framework specs, ServingRuntime and ClusterServingRuntime containers, Seldon servers,
#   Deployment-based model servers) must name a fixed version: a digest (@sha256:…) or a
#   tag other than latest. A KServe framework spec with runtimeVersion: latest fails too.
#   Parameters (data.auditor.params.image_tags): require_digest (default false) also fails
#   tagged images without a digest; denied_tags (default ["latest"]).
# custom:
#   severity: high
#   controls:
#     - NIST-SSDF-PS.2.1
#     - NIST-800-53-CM-2
#     - NIST-800-53-CM-14
#     - SLSA-v1.0-Build-L1
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
package auditor.runtime.image_tags

import rego.v1

import data.auditor.lib.serving

default_params := {"require_digest": false, "denied_tags": ["latest"]}

params := object.union(default_params, data.auditor.params.image_tags) if {
	is_object(data.auditor.params.image_tags)
} else := default_params

# every image, parsed once: its tag ("" when none) and whether it names a digest
images contains {
	"path": concat("", [c.path, "/image"]),
	"container": c.name,
	"image": c.container.image,
	"tag": serving.image_tag(c.container.image),
	"digest": has_digest(c.container.image),
} if {
	some c in data.auditor.lib.serving.containers
	is_string(c.container.image)
}

denied_tags := {t | some t in params.denied_tags}

has_digest(image) := true if serving.image_has_digest(image)
else := false

deny contains {
	"msg": sprintf("container %s uses image %s with no tag or digest (it means :latest)", [i.container, i.image]),
	"path": i.path,
	"image": i.image,
} if {
	some i in images
	not i.digest
	i.tag == ""
}

deny contains {
	"msg": sprintf("container %s uses mutable tag :%s (%s); pin a version or a digest", [i.container, tag, i.image]),
	"path": i.path,
	"image": i.image,
} if {
	some i in images
	not i.digest
	tag := i.tag
	denied_tags[tag]
}

deny contains {
	"msg": sprintf("container %s uses image %s without a digest (require_digest is set)", [i.container, i.image]),
	"path": i.path,
	"image": i.image,
} if {
	params.require_digest == true
	some i in images
	not i.digest
	i.tag != ""
	not denied_tags[i.tag]
}

deny contains {
	"msg": sprintf("%s sets runtimeVersion %q, a mutable runtime image tag", [c.path, c.container.runtimeVersion]),
	"path": concat("", [c.path, "/runtimeVersion"]),
} if {
	some c in data.auditor.lib.serving.containers
	c.implied
	denied_tags[c.container.runtimeVersion]
}
