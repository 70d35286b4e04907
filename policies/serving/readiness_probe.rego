# METADATA
# title: Deployment-based model servers have a readiness probe
# description: >-
#   A model server that loads weights for minutes must not receive traffic before it can
#   answer: on Deployment-like model servers (KServe and Seldon manage their own probes)
#   every container that declares a port, or the first container when none does, has a
#   readinessProbe.
# custom:
#   severity: medium
#   controls:
#     - NIST-800-53-SC-5
#     - NIST-800-53-CP-10
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
package auditor.serving.readiness_probe

import rego.v1

import data.auditor.lib.serving

pod := data.auditor.lib.serving.workload_pod if data.auditor.lib.serving.is_model_server_workload

main := [c | some c in serving.arr_at(pod.spec, "containers"); is_object(c)]

with_ports := [i | some i, c in main; count(serving.arr_at(c, "ports")) > 0]

checked contains i if some i in with_ports

checked contains 0 if {
	count(with_ports) == 0
	count(main) > 0
}

deny contains {
	"msg": sprintf("model server container %s has no readinessProbe", [serving.str_at(main[i], "name")]),
	"path": sprintf("%s/containers/%d/readinessProbe", [pod.path, i]),
} if {
	some i in checked
	not is_object(main[i].readinessProbe)
}
