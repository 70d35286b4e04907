# METADATA
# title: Deployment-based model servers declare their model
# description: >-
#   auditor can only check the signature, digest and source of a model it can name. A
#   Deployment-like workload recognised as a model server (by its image, e.g. vLLM, Triton,
#   TGI, or the label auditor.gitops.ml/model-server: "true") declares the model it serves
#   with the annotation auditor.gitops.ml/model-uri, on the object or its pod template.
# custom:
#   severity: medium
#   controls:
#     - NIST-800-53-CM-8
#     - NIST-SSDF-PS.3.2
#   matchers:
#     # the workload kinds of lib/serving.rego (kind_classes: workload); the policy cannot
#     # fire on any other kind
#     kinds:
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
package auditor.model.uri_annotation

import rego.v1

import data.auditor.lib.serving

deny contains {
	"msg": sprintf("this workload looks like a model server (%s) but does not declare its model: add the %s annotation", [concat(", ", sort(data.auditor.lib.serving.workload_server_reasons)), data.auditor.lib.serving.annotation_model_uri]),
	"path": "/metadata/annotations",
} if {
	data.auditor.lib.serving.is_model_server_workload
	not serving.nonempty(data.auditor.lib.serving.annotations[data.auditor.lib.serving.annotation_model_uri])
	not serving.nonempty(input.model.uri)
}
