# METADATA
# title: Serving pods do not run as the default service account
# description: >-
#   Model-serving pods get a dedicated service account (least privilege; credentials to the
#   model store bound to it), never the namespace's `default`: KServe predictor,
#   transformer and explainer (serviceAccountName), Seldon component specs, and
#   Deployment-based model servers. Unset means `default`.
# custom:
#   severity: medium
#   controls:
#     - CIS-K8s-5.1.5
#     - CIS-K8s-5.1.6
#     - NIST-800-53-AC-6
#     - NIST-800-53-IA-9
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
package auditor.serving.service_account

import rego.v1

import data.auditor.lib.serving

account(p) := p.spec.serviceAccountName if serving.nonempty(p.spec.serviceAccountName)
else := p.spec.serviceAccount if serving.nonempty(p.spec.serviceAccount)
else := ""

deny contains {
	"msg": sprintf("%s runs as the default service account (serviceAccountName is unset)", [p.path]),
	"path": concat("", [p.path, "/serviceAccountName"]),
} if {
	some p in data.auditor.lib.serving.pod_specs
	p.service_account
	account(p) == ""
}

deny contains {
	"msg": sprintf("%s runs as the default service account (serviceAccountName: default)", [p.path]),
	"path": concat("", [p.path, "/serviceAccountName"]),
} if {
	some p in data.auditor.lib.serving.pod_specs
	p.service_account
	account(p) == "default"
}
