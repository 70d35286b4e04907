# METADATA
# title: Model and runtime drift
# description: >-
#   A model server that runs a different model or runtime than Git declares is serving
#   something nobody reviewed or signed: every drift finding of class model or runtime
#   fails, naming the path, Git's and the live value, and who changed it (the field
#   manager from managedFields). Traffic drift (a canary moved outside Git) is a warning.
#   Parameters (data.auditor.params.drift): deny_classes (default [model, runtime]),
#   warn_classes (default [traffic]).
# custom:
#   severity: high
#   controls:
#     - NIST-800-53-CM-3
#     - NIST-800-53-CM-6
#     - NIST-800-53-SI-7
#     - NIST-SSDF-PS.1.1
package auditor.drift.model_runtime

import rego.v1

import data.auditor.lib.serving

default_params := {"deny_classes": ["model", "runtime"], "warn_classes": ["traffic"]}

params := object.union(default_params, data.auditor.params.drift) if {
	is_object(data.auditor.params.drift)
} else := default_params

findings := [f | some f in serving.arr(object.get(input, "drift", null)); is_object(f)]

manager(f) := f.changed_by.manager if serving.nonempty(serving.obj(f.changed_by).manager)
else := "an unknown manager"

when(f) := w if {
	by := serving.obj(f.changed_by)
	serving.nonempty(by.time)
	w := sprintf(" (%s at %s)", [serving.str(object.get(by, "operation", "")), by.time])
} else := ""

location(f) := f.path if serving.nonempty(f.path)
else := "(whole object)"

what(f) := sprintf("Git %s, live %s", [value(object.get(f, "expected", null)), value(object.get(f, "actual", null))]) if {
	serving.str(object.get(f, "check", "")) in {"drift.changed", "drift.removed", "drift.added", ""}
} else := f.check

value(v) := "(unset)" if v == null
else := v if is_string(v)
else := json.marshal(v)

message(f) := sprintf("%s drift at %s: %s; changed by %s%s", [f.class, location(f), what(f), manager(f), when(f)])

deny contains {
	"msg": message(f),
	"path": serving.str(object.get(f, "path", "")),
	"expected": object.get(f, "expected", null),
	"actual": object.get(f, "actual", null),
	"class": f.class,
	"check": serving.str(object.get(f, "check", "")),
	"changed_by": object.get(f, "changed_by", null),
	"fingerprint": object.get(f, "fingerprint", null),
} if {
	some f in findings
	f.class in {c | some c in params.deny_classes}
}

# METADATA
# description: Traffic moved outside Git (a canary share changed by hand).
# custom:
#   severity: medium
warn contains {
	"msg": message(f),
	"path": serving.str(object.get(f, "path", "")),
	"expected": object.get(f, "expected", null),
	"actual": object.get(f, "actual", null),
	"class": f.class,
	"check": serving.str(object.get(f, "check", "")),
	"changed_by": object.get(f, "changed_by", null),
	"fingerprint": object.get(f, "fingerprint", null),
} if {
	some f in findings
	f.class in {c | some c in params.warn_classes}
	not f.class in {c | some c in params.deny_classes}
}
