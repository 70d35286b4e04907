package auditor.provenance.model_signed_test

import rego.v1

import data.auditor.provenance.model_signed as policy
import data.auditor.test.fixtures as fx

test_verified_model_passes if {
	count(policy.deny) == 0 with input as fx.isvc_input
}

test_verified_deployment_model_passes if {
	count(policy.deny) == 0 with input as fx.llm_input
}

test_unverified_signature_denied if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/signature/verified", "value": false}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "gs://acme-models/fraud-scorer/v3")
	contains(m.msg, "did not verify")
	m.path == "/spec/predictor/model/storageUri"
}

test_unverified_without_signers if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/signature", "value": {"verified": false, "signers": []}}])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, "no signature by a trusted authority was verified")
}

test_reason_from_provenance_findings if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/signature", "value": {
		"verified": false, "signers": [],
		"findings": [{"check": "provenance.signature", "message": "file weights.bin: digest differs from the signed manifest"}],
	}}])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, "weights.bin: digest differs")
}

test_verified_must_be_true_not_truthy if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/signature/verified", "value": "true"}])
	count(policy.deny) == 1 with input as inp
}

test_null_provenance_fails_closed if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance", "value": null}])
	msgs := policy.deny with input as inp
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "no provenance")
}

test_missing_provenance_fails_closed if {
	inp := json.patch(fx.isvc_input, [{"op": "remove", "path": "/provenance"}])
	count(policy.deny) == 1 with input as inp
}

test_missing_signature_fails_closed if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance", "value": {"datasets": []}}])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, "no signature")
}

test_model_known_only_by_digest if {
	inp := json.patch(fx.isvc_input, [
		{"op": "replace", "path": "/model", "value": {"uri": null, "digest": fx.digest_a}},
		{"op": "replace", "path": "/provenance", "value": null},
	])
	msgs := policy.deny with input as inp
	some m in msgs
	contains(m.msg, fx.digest_a)
}

test_no_model_passes if {
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as fx.runtime_input
	count(policy.deny) == 0 with input as {}
}

test_model_named_by_resource_but_not_resolved if {
	# the input builder found no model, the resource names one: still unverified
	msgs := policy.deny with input as {"resource": fx.isvc, "model": null, "provenance": null}
	some m in msgs
	contains(m.msg, "model gs://acme-models/fraud-scorer/v3")
}

test_required_authority_missing if {
	msgs := policy.deny with input as fx.isvc_input
		with data.auditor.params.model_signed as {"required_authorities": ["release-key", "ci-keyless"]}
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "required authorities ci-keyless (signed by: release-key)")
	m.path == "/spec/predictor/model/storageUri"
}

test_required_authority_present if {
	count(policy.deny) == 0 with input as fx.isvc_input
		with data.auditor.params.model_signed as {"required_authorities": ["release-key"]}
}

test_signers_given_as_names if {
	inp := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/signature/signers", "value": ["release-key", "ci-keyless"]}])
	count(policy.deny) == 0 with input as inp
		with data.auditor.params.model_signed as {"required_authorities": ["release-key", "ci-keyless"]}
}
