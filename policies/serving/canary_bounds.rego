# METADATA
# title: Canary traffic within bounds
# description: >-
#   A canary rollout sends a bounded share of traffic to the new revision: KServe
#   canaryTrafficPercent (predictor, transformer, explainer), and the traffic of every
#   SeldonDeployment predictor but the main one. The value must be a number from 0 to
#   100; in production (namespace, cluster name or environment label matching the
#   serving-library globs) it must lie between min_percent and max_percent (deny), elsewhere
#   a value outside them is a warning. Parameters (data.auditor.params.canary):
#   min_percent (default 0), max_percent (default 50), enforce_outside_prod (default false:
#   warn outside production, true: deny everywhere).
# custom:
#   severity: high
#   controls:
#     - NIST-800-53-CM-3(2)
#     - NIST-800-53-CM-4
#     - NIST-SSDF-PW.9.1
#   matchers:
#     # canaries are read from InferenceService components and SeldonDeployment predictors
#     kinds:
#       - apiGroups: [serving.kserve.io]
#         kinds: [InferenceService]
#       - apiGroups: [machinelearning.seldon.io]
#         kinds: [SeldonDeployment]
package auditor.serving.canary_bounds

import rego.v1

import data.auditor.lib.serving

default_params := {"min_percent": 0, "max_percent": 50, "enforce_outside_prod": false}

params := object.union(default_params, data.auditor.params.canary) if {
	is_object(data.auditor.params.canary)
} else := default_params

# {path, value} of every canary traffic share the resource declares.
canaries contains {"path": sprintf("/spec/%s/canaryTrafficPercent", [comp]), "value": s.canaryTrafficPercent} if {
	some comp, s in data.auditor.lib.serving.isvc_component
	s.canaryTrafficPercent != null
}

# SeldonDeployment: several predictors split traffic; the one with the most is the main.
# Keyed by their index in the manifest, which the paths below name, whichever of them set
# traffic or are not objects.
seldon_predictors := {i: p | some i, p in serving.arr_at(data.auditor.lib.serving.spec, "predictors"); is_object(p)} if data.auditor.lib.serving.is_seldon_deployment

seldon_main := i if {
	count(seldon_predictors) > 1
	# predictors that set traffic (`=`, not `:=`: regorus's compiled VM would keep an
	# undefined p.traffic as an element, docs/rvm.md)
	top := max([to_number_or_zero(t) | some p in seldon_predictors; t = p.traffic])
	i := min([j | some j, p in seldon_predictors; t = p.traffic; to_number_or_zero(t) == top])
}

canaries contains {"path": sprintf("/spec/predictors/%d/traffic", [i]), "value": p.traffic} if {
	some i, p in seldon_predictors
	i != seldon_main
	p.traffic != null
}

to_number_or_zero(x) := x if is_number(x)
else := 0

valid(v) if {
	is_number(v)
	v >= 0
	v <= 100
}

out_of_bounds(v) if v < params.min_percent

out_of_bounds(v) if v > params.max_percent

enforced if data.auditor.lib.serving.is_prod

enforced if params.enforce_outside_prod == true

where := "production" if data.auditor.lib.serving.is_prod
else := "this environment"

deny contains {
	"msg": sprintf("%s is %v, not a percentage from 0 to 100", [c.path, c.value]),
	"path": c.path,
} if {
	some c in canaries
	not valid(c.value)
}

deny contains msg if {
	some msg in bounds_messages
	enforced
}

warn contains msg if {
	some msg in bounds_messages
	not enforced
}

bounds_messages contains {
	"msg": sprintf("canary traffic %v%% at %s is outside %v..%v%% allowed in %s", [c.value, c.path, params.min_percent, params.max_percent, where]),
	"path": c.path,
	"value": c.value,
	"expected": sprintf("%v..%v", [params.min_percent, params.max_percent]),
	"actual": c.value,
} if {
	some c in canaries
	valid(c.value)
	out_of_bounds(c.value)
}
