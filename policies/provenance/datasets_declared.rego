# METADATA
# title: Training datasets in provenance are declared in Git
# description: >-
#   The datasets a model's provenance says it was trained on (SLSA resolvedDependencies)
#   must be the datasets pinned in Git (e.g. dvc.lock) and must carry a digest: a dataset
#   the provenance stage marked declared: false, or one with no digest, fails; one it could
#   not compare (no lockfile configured, declared unset) is a warning. Passes when there is
#   no provenance: whether the model is signed is model_signed's question.
# custom:
#   severity: high
#   controls:
#     - SLSA-Provenance
#     - NIST-SSDF-PS.3.2
#     - NIST-SSDF-PW.4.4
#     - NIST-800-53-SR-4
package auditor.provenance.datasets_declared

import rego.v1

import data.auditor.lib.serving

model := serving.obj(object.get(input, "model", null))

model_label := sprintf("model %s", [model.uri]) if serving.nonempty(model.uri)
else := sprintf("model %s", [model.digest]) if serving.nonempty(model.digest)
else := "the model"

datasets := serving.arr(object.get(input, ["provenance", "datasets"], null))

label(i, d) := serving.obj(d).uri if serving.nonempty(serving.obj(d).uri)
else := serving.obj(d).name if serving.nonempty(serving.obj(d).name)
else := sprintf("#%d", [i])

has_digest(d) if serving.nonempty(d.digest)

# an in-toto DigestSet: {"sha256": "…"}
has_digest(d) if {
	some alg, hex in serving.obj(d.digest)
	serving.nonempty(alg)
	serving.nonempty(hex)
}

deny contains {
	"msg": sprintf("%s was trained on dataset %s, which is not declared in Git", [model_label, label(i, d)]),
	"path": sprintf("/provenance/datasets/%d", [i]),
	"dataset": label(i, d),
} if {
	some i, d in datasets
	serving.obj(d).declared == false
}

deny contains {
	"msg": sprintf("%s was trained on dataset %s, which has no digest in the provenance", [model_label, label(i, d)]),
	"path": sprintf("/provenance/datasets/%d/digest", [i]),
	"dataset": label(i, d),
} if {
	some i, d in datasets
	not has_digest(serving.obj(d))
}

warn contains {
	"msg": sprintf("%s was trained on dataset %s, which could not be compared with the datasets declared in Git", [model_label, label(i, d)]),
	"path": sprintf("/provenance/datasets/%d/declared", [i]),
	"dataset": label(i, d),
} if {
	some i, d in datasets
	not is_boolean(serving.obj(d).declared)
}
