# METADATA
# title: Models come only from allowed registries and buckets
# description: >-
#   Every model URI a resource serves (storageUri and friends, the
#   auditor.gitops.ml/model-uri annotation, Seldon modelUri) must start with one of the
#   allowed prefixes; the longest matching prefix decides between an allowed and a denied
#   one ("hf://acme/" allowed beats "hf://" denied). A Seldon graph nested deeper than the
#   library reads (32 keys and indexes: 16 levels of children) is denied. Parameters
#   (data.auditor.params.model_sources): allowed_prefixes, denied_prefixes. The defaults
#   allow only organisation-controlled storage schemes (PVCs, cloud buckets, OCI
#   registries) and deny public hubs, plain HTTP and public OCI registries; set
#   allowed_prefixes to your own buckets and registries (e.g. "gs://acme-models/").
# custom:
#   severity: high
#   controls:
#     - NIST-SSDF-PW.4.1
#     - NIST-SSDF-PW.4.4
#     - NIST-800-53-SR-3
#     - NIST-800-53-CM-7(5)
package auditor.model.allowed_sources

import rego.v1

import data.auditor.lib.serving

default_params := {
	"allowed_prefixes": ["pvc://", "gs://", "s3://", "oci://", "azureblob://"],
	"denied_prefixes": [
		"http://", "hf://", "https://huggingface.co/", "oci://docker.io/",
		"oci://index.docker.io/", "oci://ghcr.io/", "oci://quay.io/", "oci://public.ecr.aws/",
	],
}

params := object.union(default_params, data.auditor.params.model_sources) if {
	is_object(data.auditor.params.model_sources)
} else := default_params

uris[uri] := paths if {
	some m in data.auditor.lib.serving.model_uris
	uri := m.uri
	paths := sort([p | some n in data.auditor.lib.serving.model_uris; n.uri == uri; p := n.path])
}

# the model the input builder resolved, when the resource itself does not say
uris[input.model.uri] := [""] if {
	serving.nonempty(input.model.uri)
	not input.model.uri in {m.uri | some m in data.auditor.lib.serving.model_uris}
}

# The longest matching prefix decides: "hf://acme/" allowed beats "hf://" denied, and
# "oci://docker.io/" denied beats "oci://" allowed.
longest(prefixes, uri) := max([count(p) | some p in prefixes; startswith(uri, p)])

denied_by(uri) := p if {
	# `=`, not `:=`, where a value may be undefined (max of no prefix): regorus's compiled VM
	# binds undefined with `:=` and goes on (docs/rvm.md)
	n = longest(params.denied_prefixes, uri)
	not n < longest_allowed(uri)
	p := [q | some q in params.denied_prefixes; startswith(uri, q); count(q) == n][0]
}

# denied_by of each URI, worked out once (a function's result is not kept between calls)
denied := {uri: p | some uri, _ in uris; p = denied_by(uri)}

longest_allowed(uri) := n if {
	n = longest(params.allowed_prefixes, uri)
} else := -1

allowed(uri) if longest_allowed(uri) >= 0

deny contains {
	"msg": sprintf("model source %s is denied (prefix %s)", [uri, denied[uri]]),
	"path": paths[0],
	"uri": uri,
} if {
	some uri, paths in uris
	denied[uri]
}

deny contains {
	"msg": sprintf("model source %s is not under an allowed prefix (%s)", [uri, concat(", ", params.allowed_prefixes)]),
	"path": paths[0],
	"uri": uri,
} if {
	some uri, paths in uris
	not denied[uri]
	not allowed(uri)
}

# Fail closed: model URIs below the depth the library reads a Seldon graph to are unchecked.
deny contains {
	"msg": sprintf("Seldon graph %s nests deeper than %d levels: model sources below them are not checked", [path, serving.graph_depth]),
	"path": path,
} if {
	# Implied by what the library checks, and tested first: on regorus's interpreter, reaching
	# the library's rules from here costs a third of a millisecond for every input of every kind
	# (bench/README.md), this test almost nothing.
	input.resource.kind == "SeldonDeployment"
	some path in serving.seldon_graphs_too_deep
}
