package auditor.provenance.datasets_declared_test

import rego.v1

import data.auditor.provenance.datasets_declared as policy
import data.auditor.test.fixtures as fx

with_datasets(datasets) := json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance/datasets", "value": datasets}])

declared := {"uri": "gs://acme-data/fraud/transactions-2026-10", "digest": "sha256:0d5e1b6a7c8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978e7d6c5b4a39281", "declared": true}

test_declared_datasets_pass if {
	count(policy.deny) == 0 with input as fx.isvc_input
	count(policy.warn) == 0 with input as fx.isvc_input
}

test_undeclared_dataset_denied if {
	extra := {"uri": "s3://scratch/alice/labels.parquet", "digest": "sha256:aa", "declared": false}
	msgs := policy.deny with input as with_datasets([declared, extra])
	count(msgs) == 1
	some m in msgs
	m.dataset == "s3://scratch/alice/labels.parquet"
	m.path == "/provenance/datasets/1"
	contains(m.msg, "model gs://acme-models/fraud-scorer/v3")
	contains(m.msg, "not declared in Git")
}

test_missing_digest_denied if {
	msgs := policy.deny with input as with_datasets([{"uri": "gs://acme-data/x", "declared": true}])
	count(msgs) == 1
	some m in msgs
	contains(m.msg, "has no digest")
}

test_empty_digest_denied if {
	count(policy.deny) == 1 with input as with_datasets([{"uri": "gs://acme-data/x", "digest": "", "declared": true}])
	count(policy.deny) == 1 with input as with_datasets([{"uri": "gs://acme-data/x", "digest": {}, "declared": true}])
	count(policy.deny) == 1 with input as with_datasets([{"uri": "gs://acme-data/x", "digest": null, "declared": true}])
}

test_digest_set_accepted if {
	count(policy.deny) == 0 with input as with_datasets([{"uri": "gs://acme-data/x", "digest": {"sha256": "0d5e1b"}, "declared": true}])
}

test_undeclared_and_undigested if {
	count(policy.deny) == 2 with input as with_datasets([{"name": "labels", "declared": false}])
}

test_unknown_declaration_warns if {
	inp := with_datasets([{"uri": "gs://acme-data/x", "digest": "sha256:ab"}])
	count(policy.deny) == 0 with input as inp
	msgs := policy.warn with input as inp
	count(msgs) == 1
}

test_dataset_without_uri_named_by_index if {
	msgs := policy.deny with input as with_datasets([declared, {"declared": false, "digest": "sha256:ab"}])
	some m in msgs
	m.dataset == "#1"
}

test_null_provenance_passes if {
	count(policy.deny) == 0 with input as json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance", "value": null}])
	count(policy.deny) == 0 with input as json.patch(fx.isvc_input, [{"op": "remove", "path": "/provenance"}])
	count(policy.deny) == 0 with input as json.patch(fx.isvc_input, [{"op": "replace", "path": "/provenance", "value": {"signature": null}}])
	count(policy.deny) == 0 with input as with_datasets(null)
	count(policy.deny) == 0 with input as fx.configmap_input
	count(policy.deny) == 0 with input as {}
}

test_garbage_entries_do_not_crash if {
	count(policy.deny) == 1 with input as with_datasets([null])
}
