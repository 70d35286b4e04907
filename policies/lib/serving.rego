# METADATA
# title: ML serving helpers
# description: >-
#   Shared, null-safe views of the resource under audit: what kind of model server it is,
#   its pod specs and containers (KServe InferenceService components, ServingRuntimes,
#   Seldon, and Deployment-like model servers), the model URIs it serves, and its
#   annotations. No deny/warn rules: this package is a library, not a policy.
package auditor.lib.serving

import rego.v1

# Written for regorus's interpreter and for its compiled VM (RVM), which must agree
# (tests/policy/test_rvm_equivalence.py). The VM keeps an undefined value where Rego drops it:
# `x := <undefined>` binds it and the body goes on, and a rule head or comprehension term that
# is undefined is added. So a value that may be undefined is bound with `=` (unification, which
# fails as it should) or tested before it reaches a head; docs/rvm.md lists the VM's defects.

annotation_model_uri := "auditor.gitops.ml/model-uri"

annotation_model_digest := "auditor.gitops.ml/model-digest"

label_model_server := "auditor.gitops.ml/model-server"

# KServe v1beta1 per-framework predictor specs (each embeds a container and a storageUri),
# and the older explainer specs.
predictor_frameworks := [
	"sklearn", "xgboost", "tensorflow", "pytorch", "onnx", "triton", "lightgbm",
	"pmml", "paddle", "huggingface",
]

explainer_frameworks := ["art", "alibi"]

isvc_components := ["predictor", "transformer", "explainer"]

# Keys of a KServe component that embed a container (and a storageUri).
# (A literal: a comprehension would be rebuilt for every input. serving_test.rego checks
# that it is "model" and the frameworks above.)
implied_container_keys := {
	"model", "sklearn", "xgboost", "tensorflow", "pytorch", "onnx", "triton", "lightgbm",
	"pmml", "paddle", "huggingface", "art", "alibi",
}

# -- parameters (data.auditor.params.serving), defaults here so it works without data

default_params := {
	# Substrings of a container image's repository that mark a Deployment (or another pod
	# template workload) as a model server even without auditor annotations.
	"server_image_keywords": [
		"vllm", "tritonserver", "text-generation-inference", "text-embeddings-inference",
		"tensorflow/serving", "torchserve", "mlserver", "ollama", "sglang", "lmdeploy",
		"openvino/model_server", "bentoml",
	],
	# URI schemes of model storage, to recognise `--model-uri gs://…` in a container's args.
	"model_uri_schemes": ["gs://", "s3://", "hf://", "oci://", "pvc://", "http://", "https://", "azureblob://"],
	# Namespace / cluster name globs, and environment label values, that are production.
	"prod_namespaces": ["prod", "prod-*", "*-prod", "production", "production-*", "*-production"],
	"prod_clusters": ["prod", "prod-*", "*-prod", "production", "production-*", "*-production"],
	"prod_environments": ["prod", "production"],
}

params := object.union(default_params, data.auditor.params.serving) if {
	is_object(data.auditor.params.serving)
} else := default_params

# -- null-safe accessors

obj(x) := x if is_object(x)
else := {}

arr(x) := x if is_array(x)
else := []

str(x) := x if is_string(x)
else := ""

# The same, at a path under x (a key or an array of keys); safe when x is not an object
# or a key on the way is missing or null. (One body, not a call of obj/arr/str: these run
# for every container, argument and variable, and a call costs as much as a builtin.)
obj_at(x, path) := v if {
	is_object(x)
	v := object.get(x, path, null)
	is_object(v)
} else := {}

arr_at(x, path) := v if {
	is_object(x)
	v := object.get(x, path, null)
	is_array(v)
} else := []

str_at(x, path) := v if {
	is_object(x)
	v := object.get(x, path, null)
	is_string(v)
} else := ""

# A value that is a non-empty string.
nonempty(x) if {
	is_string(x)
	trim_space(x) != ""
}

# Accessors read refs directly (an undefined ref makes the body fail and the `else` apply):
# regorus evaluates that faster than a chain of helper-function calls.
resource := input.resource if is_object(input.resource)
else := {}

spec := resource.spec if is_object(resource.spec)
else := {}

metadata := resource.metadata if is_object(resource.metadata)
else := {}

kind := resource.kind if is_string(resource.kind)
else := ""

api_version := resource.apiVersion if is_string(resource.apiVersion)
else := ""

# "" for the core group (apiVersion: v1)
group := substring(api_version, 0, indexof(api_version, "/")) if contains(api_version, "/")
else := ""

name := metadata.name if is_string(metadata.name)
else := ""

namespace := metadata.namespace if is_string(metadata.namespace)
else := ""

labels := metadata.labels if is_object(metadata.labels)
else := {}

own_annotations := metadata.annotations if is_object(metadata.annotations)
else := {}

# Annotations of the object and, for pod-template workloads, of its pod template (the
# object's own win).
annotations := object.union(obj_at(template_metadata, "annotations"), own_annotations) if is_workload
else := own_annotations

template_labels := obj_at(template_metadata, "labels") if is_workload
else := {}

template_metadata := obj_at(spec, ["jobTemplate", "spec", "template", "metadata"]) if kind == "CronJob"
else := obj_at(spec, ["template", "metadata"])

# -- kinds: one lookup decides what the resource is ("" for anything auditor does not model)

kind_classes := {
	"serving.kserve.io/InferenceService": "isvc",
	"serving.kserve.io/ServingRuntime": "serving_runtime",
	"serving.kserve.io/ClusterServingRuntime": "serving_runtime",
	"serving.kserve.io/TrainedModel": "trained_model",
	"machinelearning.seldon.io/SeldonDeployment": "seldon_deployment",
	"mlops.seldon.io/Model": "seldon_model",
	"mlops.seldon.io/Server": "seldon_server",
	"mlops.seldon.io/ServerConfig": "seldon_server",
	"apps/Deployment": "workload",
	"apps/StatefulSet": "workload",
	"apps/DaemonSet": "workload",
	"apps/ReplicaSet": "workload",
	"/ReplicationController": "workload",
	"/Pod": "workload",
	"batch/Job": "workload",
	"batch/CronJob": "workload",
	"argoproj.io/Rollout": "workload",
	"serving.knative.dev/Service": "workload",
}

class := object.get(kind_classes, concat("/", [group, kind]), "")

is_isvc if class == "isvc"

is_serving_runtime if class == "serving_runtime"

is_trained_model if class == "trained_model"

is_seldon_deployment if class == "seldon_deployment"

is_seldon_model if class == "seldon_model"

is_seldon_server if class == "seldon_server"

is_workload if class == "workload"

# The pod spec of a pod-template workload, and its JSON pointer.
workload_pod := {"path": "/spec", "spec": spec} if {
	is_workload
	kind == "Pod"
} else := {"path": "/spec/jobTemplate/spec/template/spec", "spec": obj_at(spec, ["jobTemplate", "spec", "template", "spec"])} if {
	is_workload
	kind == "CronJob"
} else := {"path": "/spec/template/spec", "spec": obj_at(spec, ["template", "spec"])} if {
	is_workload
}

# Why a workload counts as a model server (empty for anything else).
workload_server_reasons contains "annotation" if {
	is_workload
	nonempty(annotations[annotation_model_uri])
}

workload_server_reasons contains "label" if {
	is_workload
	lower(sprintf("%v", [object.union(template_labels, labels)[label_model_server]])) == "true"
}

workload_server_reasons contains "model" if {
	is_workload
	is_object(input.model)
	nonempty(input.model.uri)
}

workload_server_reasons contains "a model URI in its args or env" if {
	is_workload
	count(workload_arg_uris) > 0
}

workload_server_reasons contains "image" if {
	some repo in workload_image_repositories
	some keyword in params.server_image_keywords
	contains(repo, keyword)
}

# Each distinct image repository of a workload's containers once, lowercased.
workload_image_repositories contains lower(image_repository(str_at(c, "image"))) if {
	some c in workload_containers
}

# The containers of a workload's pod (undefined for anything else), read once.
workload_containers := arr_at(workload_pod.spec, "containers") if is_workload

# The cheap reasons first: the image and args of every container are read only when
# neither the annotation nor the model says so.
is_model_server_workload if model_server_workload

model_server_workload := true if {
	is_workload
	nonempty(annotations[annotation_model_uri])
} else := true if {
	is_workload
	is_object(input.model)
	nonempty(input.model.uri)
} else := count(workload_server_reasons) > 0 if is_workload

# Anything that serves models or defines how they are served.
is_serving if {
	class != ""
	class != "workload"
}

is_serving if is_model_server_workload

# -- pod specs: {path, spec, service_account} where service_account says the object's own
# serviceAccountName decides the identity the serving pods run as.

# Gated on the kind first: for the many resources that are not model servers (ConfigMaps,
# Services, ...) one cheap test replaces evaluating every definition below.
pod_specs := isvc_pod_specs if class == "isvc"
else := runtime_pod_specs if class == "serving_runtime"
else := seldon_pod_specs if class == "seldon_deployment"
else := seldon_server_pod_specs if class == "seldon_server"
else := workload_pod_specs if class == "workload"
else := set()

isvc_component[c] := s if {
	is_isvc
	some c in isvc_components
	s := spec[c]
	is_object(s)
}

isvc_pod_specs contains {"path": concat("", ["/spec/", c]), "spec": s, "service_account": true} if {
	some c, s in isvc_component
}

isvc_pod_specs contains {"path": concat("", ["/spec/", c, "/workerSpec"]), "spec": s.workerSpec, "service_account": false} if {
	some c, s in isvc_component
	is_object(s.workerSpec)
}

runtime_pod_specs contains {"path": "/spec", "spec": spec, "service_account": false}

runtime_pod_specs contains {"path": "/spec/workerSpec", "spec": spec.workerSpec, "service_account": false} if {
	is_object(spec.workerSpec)
}

seldon_pod_specs contains {"path": sprintf("/spec/predictors/%d/componentSpecs/%d/spec", [i, j]), "spec": cs.spec, "service_account": true} if {
	some i, p in arr_at(spec, "predictors")
	some j, cs in arr_at(p, "componentSpecs")
	is_object(cs.spec)
}

seldon_server_pod_specs contains {"path": "/spec/podSpec", "spec": spec.podSpec, "service_account": false} if {
	is_object(spec.podSpec)
}

workload_pod_specs contains {"path": workload_pod.path, "spec": workload_pod.spec, "service_account": true} if {
	is_model_server_workload
}

containers := pod_containers | implied_containers if class == "isvc"
else := pod_containers if class != ""
else := set()

# -- containers: {path, name, container, init}; `implied` marks KServe specs that embed a
# container (predictor.model, predictor.<framework>, explainer.<framework>): their image
# and resources override the ServingRuntime's.

pod_containers contains {"path": sprintf("%s/%s/%d", [p.path, list, i]), "name": str_at(c, "name"), "container": c, "init": list == "initContainers", "implied": false} if {
	some p in pod_specs
	some list in ["containers", "initContainers"]
	some i, c in arr_at(p.spec, list)
	is_object(c)
}

implied_containers contains {"path": concat("", ["/spec/", comp, "/", f]), "name": container_name(c, "kserve-container"), "container": c, "init": false, "implied": true, "model_format": model_format(f, c), "runtime": str_at(c, "runtime")} if {
	some comp, s in isvc_component
	some f, c in s
	implied_container_keys[f]
	is_object(c)
}

container_name(c, default_name) := c.name if nonempty(c.name)
else := default_name

model_format("model", c) := lower(str_at(c, ["modelFormat", "name"]))

model_format(f, _) := f if f != "model"

# -- images

# `registry/repo` of an image reference, without tag or digest.
image_repository(image) := repo if {
	no_digest := split(image, "@")[0]
	parts := split(no_digest, "/")
	last := parts[count(parts) - 1]
	name_only := split(last, ":")[0]
	repo := concat("/", array.concat(array.slice(parts, 0, count(parts) - 1), [name_only]))
}

# The tag of an image reference ("" when it has none).
image_tag(image) := tag if {
	no_digest := split(image, "@")[0]
	parts := split(no_digest, "/")
	last := parts[count(parts) - 1]
	segs := split(last, ":")
	count(segs) == 2
	tag := segs[1]
} else := ""

image_has_digest(image) if regex.match(`@[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`, image)

# -- models

storage_uris := isvc_storage_uris if class == "isvc"
else := seldon_storage_uris if class == "seldon_deployment"
else := {{"path": "/spec/model/storageUri", "uri": spec.model.storageUri}} if {
	class == "trained_model"
	nonempty(spec.model.storageUri)
} else := {{"path": "/spec/storageUri", "uri": spec.storageUri}} if {
	class == "seldon_model"
	nonempty(spec.storageUri)
} else := set()

isvc_storage_uris contains {"path": sprintf("/spec/%s/%s/storageUri", [comp, f]), "uri": c.storageUri} if {
	some comp, s in isvc_component
	some f, c in s
	implied_container_keys[f]
	nonempty(c.storageUri)
}

# the v0.11+ shorthand: spec.predictor.storageUri next to containers
isvc_storage_uris contains {"path": sprintf("/spec/%s/storageUri", [comp]), "uri": s.storageUri} if {
	some comp, s in isvc_component
	nonempty(s.storageUri)
}

# multi-artifact models: storageUris: [{uri, mountPath}] (or plain strings)
isvc_storage_uris contains {"path": sprintf("/spec/%s/model/storageUris/%d", [comp, i]), "uri": uri} if {
	some comp, s in isvc_component
	some i, u in arr_at(s, ["model", "storageUris"])
	uri = uri_of(u) # `=`: see the note on `:=` at the top
}

# custom containers read STORAGE_URI, as KServe's storage initializer does
isvc_storage_uris contains {"path": sprintf("/spec/%s/containers/%d/env/%d/value", [comp, i, j]), "uri": e.value} if {
	some comp, s in isvc_component
	some i, c in arr_at(s, "containers")
	some j, e in arr_at(c, "env")
	e.name == "STORAGE_URI"
	nonempty(e.value)
}

# Every modelUri at any depth of a predictor's graph (units nest in `children`, and walk
# found it under any key), read without walk, which regorus's compiled VM cannot compile:
# the graph's objects and arrays level by level, to graph_depth. A graph that nests deeper
# is in seldon_graphs_too_deep, which model/allowed_sources denies: deeper URIs are unread.
seldon_storage_uris contains {"path": pointer(array.concat(["spec", "predictors", i, "graph"], array.concat(p, ["modelUri"]))), "uri": node.modelUri} if {
	some i, pred in arr_at(spec, "predictors")
	some [p, node] in graph_nodes(obj_at(pred, "graph"))
	nonempty(node.modelUri)
}

# How many keys and indexes deep graph_nodes reads a graph: units 16 levels of `children`
# down (two each). Real graphs nest a few levels.
graph_depth := 32

# [path, value] of every object and array in `collections` one key or index down
graph_below(collections) := [[array.concat(p, [k]), v] |
	some [p, x] in collections
	some k, v in x
	is_collection(v)
]

is_collection(x) if is_object(x)

is_collection(x) if is_array(x)

# [path, value] of `graph` and every object and array in it to graph_depth levels down
graph_nodes(graph) := [n | some level in graph_levels(graph); some n in level]

graph_levels(graph) := [l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12, l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24, l25, l26, l27, l28, l29, l30, l31, l32] if {
	l0 := [[[], graph]]
	l1 := graph_below(l0)
	l2 := graph_below(l1)
	l3 := graph_below(l2)
	l4 := graph_below(l3)
	l5 := graph_below(l4)
	l6 := graph_below(l5)
	l7 := graph_below(l6)
	l8 := graph_below(l7)
	l9 := graph_below(l8)
	l10 := graph_below(l9)
	l11 := graph_below(l10)
	l12 := graph_below(l11)
	l13 := graph_below(l12)
	l14 := graph_below(l13)
	l15 := graph_below(l14)
	l16 := graph_below(l15)
	l17 := graph_below(l16)
	l18 := graph_below(l17)
	l19 := graph_below(l18)
	l20 := graph_below(l19)
	l21 := graph_below(l20)
	l22 := graph_below(l21)
	l23 := graph_below(l22)
	l24 := graph_below(l23)
	l25 := graph_below(l24)
	l26 := graph_below(l25)
	l27 := graph_below(l26)
	l28 := graph_below(l27)
	l29 := graph_below(l28)
	l30 := graph_below(l29)
	l31 := graph_below(l30)
	l32 := graph_below(l31)
}

# "/spec/predictors/<i>/graph" of each graph with an object or array below graph_depth
seldon_graphs_too_deep contains sprintf("/spec/predictors/%d/graph", [i]) if {
	class == "seldon_deployment"
	some i, pred in arr_at(spec, "predictors")
	levels := graph_levels(obj_at(pred, "graph"))
	count(graph_below(levels[graph_depth])) > 0
}

seldon_storage_uris contains {"path": sprintf("/spec/predictors/%d/explainer/modelUri", [i]), "uri": pred.explainer.modelUri} if {
	some i, pred in arr_at(spec, "predictors")
	nonempty(object.get(obj(pred), ["explainer", "modelUri"], null))
}

# A workload that names its model on the command line or in the environment:
# `--model-uri gs://…`, `--model_dir=s3://…`, MODEL_URI=hf://…, STORAGE_URI=… .
workload_arg_uris contains {"path": sprintf("%s/containers/%d/args/%d", [workload_pod.path, i, j]), "uri": uri} if {
	some i, c in workload_containers
	args := arr_at(c, "args")
	# Both forms need a flag with "model" in it: one test of the whole list (its JSON text
	# holds every string of it, letters unescaped) spares the per-argument tests when none has.
	contains(lower(json.marshal(args)), "model")
	some j, arg in args
	uri = arg_model_uri(args, j, arg) # `=`: see the note on `:=` at the top
}

workload_arg_uris contains {"path": sprintf("%s/containers/%d/env/%d/value", [workload_pod.path, i, j]), "uri": e.value} if {
	some i, c in workload_containers
	some j, e in arr_at(c, "env")
	# str_at(e, "name") without the call: a name that is not a string reads as "", which
	# holds neither needle
	name := e.name
	is_string(name)
	env_name := upper(name)
	some needle in ["MODEL", "STORAGE_URI"]
	contains(env_name, needle)
	model_scheme(str_at(e, "value"))
}

# `--model-uri=gs://…`
arg_model_uri(_, _, arg) := uri if {
	is_string(arg)
	parts := split(arg, "=")
	count(parts) > 1
	startswith(parts[0], "-")
	contains(lower(parts[0]), "model")
	uri := concat("=", array.slice(parts, 1, count(parts)))
	model_scheme(uri)
}

# `--model-uri gs://…`
arg_model_uri(args, j, arg) := arg if {
	is_string(arg)
	j > 0
	flag := args[j - 1]
	is_string(flag)
	startswith(flag, "-")
	contains(lower(flag), "model")
	model_scheme(arg)
}

model_scheme(uri) if strings.any_prefix_match(uri, params.model_uri_schemes)

uri_of(u) := u if nonempty(u)

uri_of(u) := u.uri if nonempty(object.get(obj(u), "uri", null))

# The model URIs a resource serves: where it stores them (storageUri and friends), else the
# auditor.gitops.ml/model-uri annotation, else a model URI in a workload's args or env, else
# the model the input builder found.
model_uris := storage_uris if count(storage_uris) > 0
else := {{"path": annotation_pointer(annotation_model_uri), "uri": annotations[annotation_model_uri]}} if {
	nonempty(annotations[annotation_model_uri])
} else := workload_arg_uris if {
	count(workload_arg_uris) > 0
} else := {{"path": "", "uri": input.model.uri}} if {
	nonempty(input.model.uri)
} else := set()

annotation_pointer(key) := concat("", ["/metadata/annotations/", escape(key)]) if {
	nonempty(object.get(metadata, ["annotations", key], null))
} else := concat("", [workload_pod_metadata_path, "/annotations/", escape(key)])

workload_pod_metadata_path := "/spec/jobTemplate/spec/template/metadata" if kind == "CronJob"
else := "/spec/template/metadata"

# -- JSON pointers

escape(token) := replace(replace(sprintf("%v", [token]), "~", "~0"), "/", "~1")

pointer(tokens) := concat("", [concat("", ["/", escape(t)]) | some t in tokens])

# -- environment

glob_any(patterns, value) if {
	some pattern in patterns
	glob.match(pattern, null, value)
}

is_prod if glob_any(params.prod_namespaces, namespace)

is_prod if glob_any(params.prod_clusters, str(object.get(input, ["cluster", "name"], null)))

is_prod if {
	some key in ["environment", "env"]
	lower(str_at(labels, key)) in {e | some e in params.prod_environments}
}

# "Namespace/name" (or "Kind name" for cluster-scoped) for messages.
display := sprintf("%s %s/%s", [kind, namespace, name]) if namespace != ""
else := sprintf("%s %s", [kind, name])
