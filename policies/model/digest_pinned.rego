# METADATA
# title: Model storage is digest-pinned
# description: >-
#   The model a resource serves must be pinned to its content, so the bytes that run are
#   the bytes that were signed: either every storage URI is content-addressed
#   (oci://registry/repo@sha256:<64 hex>), or the object carries the annotation
#   auditor.gitops.ml/model-digest: sha256:<64 hex> (the subject digest of the model's
#   signed statement, as `auditor verify model -o json` prints it). A mutable path
#   (gs://bucket/model/v3, hf://org/model, an OCI tag) is a failure.
# related_resources:
#   - https://kserve.github.io/website/latest/modelserving/storage/oci/
# custom:
#   severity: high
#   controls:
#     - SLSA-Provenance
#     - NIST-SSDF-PS.2.1
#     - NIST-SSDF-PS.3.1
#     - NIST-800-53-CM-2
#     - NIST-800-53-SI-7
package auditor.model.digest_pinned

import rego.v1

import data.auditor.lib.serving

digest_pattern := `^sha256:[a-f0-9]{64}$`

oci_pinned_pattern := `^oci://[^@]+@sha256:[a-f0-9]{64}$`

annotation := data.auditor.lib.serving.annotations[data.auditor.lib.serving.annotation_model_digest]

annotation_valid if regex.match(digest_pattern, annotation)

# the prefix test first: most URIs are not OCI, and it costs a fraction of the match
pinned(uri) if {
	startswith(uri, "oci://")
	regex.match(oci_pinned_pattern, uri)
}

deny contains {
	"msg": sprintf("annotation %s is %q, not sha256:<64 lowercase hex>", [data.auditor.lib.serving.annotation_model_digest, sprintf("%v", [annotation])]),
	"path": serving.annotation_pointer(data.auditor.lib.serving.annotation_model_digest),
} if {
	annotation
	not annotation_valid
}

deny contains {
	"msg": sprintf("model %s is not digest-pinned: use oci://…@sha256:<digest> or the %s annotation", [m.uri, data.auditor.lib.serving.annotation_model_digest]),
	"path": m.path,
	"uri": m.uri,
} if {
	not annotation
	some m in data.auditor.lib.serving.model_uris
	not pinned(m.uri)
}
