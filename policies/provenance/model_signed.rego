# METADATA
# title: Model signed by a required authority
# description: >-
#   A resource that serves a model (input.model, or a model URI the resource names) must
#   serve one whose signature the provenance stage verified against the trust policy (the
#   authorities auditor.yaml requires for it).
#   Fails closed: no provenance, or no signature result, is a failure.
#   Parameters (data.auditor.params.model_signed): required_authorities, names that must
#   appear among the verified signers in addition to what the trust policy requires.
# related_resources:
#   - https://slsa.dev/spec/v1.0/requirements
#   - https://github.com/sigstore/model-transparency
# custom:
#   severity: critical
#   controls:
#     - SLSA-v1.0-Build-L2
#     - NIST-SSDF-PS.2.1
#     - NIST-SSDF-PW.4.4
#     - NIST-800-53-SI-7(15)
package auditor.provenance.model_signed

import rego.v1

import data.auditor.lib.serving

default_params := {"required_authorities": []}

params := object.union(default_params, data.auditor.params.model_signed) if {
	is_object(data.auditor.params.model_signed)
} else := default_params

model := serving.obj(object.get(input, "model", null))

has_model if serving.nonempty(model.uri)

has_model if serving.nonempty(model.digest)

# a model the resource itself names (e.g. a Deployment's --model-uri) counts too
has_model if count(data.auditor.lib.serving.model_uris) > 0

model_label := model.uri if serving.nonempty(model.uri)
else := model.digest if serving.nonempty(model.digest)
else := sort([m.uri | some m in data.auditor.lib.serving.model_uris])[0]

signature := serving.obj(object.get(input, ["provenance", "signature"], null))

signers := serving.arr_at(signature, "signers")

# a signer is {authority, identity}, or just the authority's name
authority_of(s) := s.authority if is_object(s)
else := s if is_string(s)

authorities := {a | some s in signers; a = authority_of(s)} # `=`: docs/rvm.md

reason := "no provenance was found for it" if {
	not is_object(input.provenance)
} else := "no signature was found for it" if {
	not is_object(input.provenance.signature)
} else := concat("; ", problems) if {
	signature.verified != true
	count(problems) > 0
} else := "no signature by a trusted authority was verified" if {
	signature.verified != true
	count(signers) == 0
} else := "its signature did not verify against the trust policy" if {
	signature.verified != true
}

# why the provenance stage did not verify it, when it says (its findings' messages)
problems := [m | some f in serving.arr_at(signature, "findings"); m := serving.str_at(f, "message"); m != ""]

# where the resource names its model (a JSON pointer), "" when only the input builder knows
model_path := sort([m.path | some m in data.auditor.lib.serving.model_uris])[0] if {
	count(data.auditor.lib.serving.model_uris) > 0
} else := ""

deny contains {
	"msg": sprintf("model %s is not signed by a required authority: %s", [model_label, reason]),
	"path": model_path,
	"model": model_label,
} if {
	has_model
	reason
}

missing_authorities := [a |
	some a in params.required_authorities
	not authorities[a]
]

deny contains {
	"msg": sprintf("model %s is not signed by required authorities %s (signed by: %s)", [model_label, concat(", ", missing_authorities), signed_by]),
	"path": model_path,
	"model": model_label,
	"expected": params.required_authorities,
	"actual": sort([a | some a in authorities]),
} if {
	has_model
	signature.verified == true
	count(missing_authorities) > 0
}

signed_by := concat(", ", sort([sprintf("%v", [a]) | some a in authorities])) if count(authorities) > 0
else := "nobody"
