# METADATA
# title: ML serving helpers
# description: >-
#   Shared, null-safe views of the resource under audit: what kind of model server it is,
#   its pod specs and containers (KServe InferenceService components, ServingRuntimes,
#   Seldon, and Deployment-like model servers), the model URIs it serves, and its
#   annotations. No deny/warn rules: this package is a library, not a policy.
package auditor.lib.serving

import rego.v1

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
implied_container_keys := {k | some k in array.concat(["model"], array.concat(predictor_frameworks, explainer_frameworks))}

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
# or a key on the way is missing or null.
obj_at(x, path) := obj(object.get(x, path, null)) if is_object(x)
else := {}

arr_at(x, path) := arr(object.get(x, path, null)) if is_object(x)
else := []

str_at(x, path) := str(object.get(x, path, null)) if is_object(x)
else := ""

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

class := c if {
	c := kind_classes[concat("/", [group, kind])]
} else := ""

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
	is_workload
	some c in arr_at(workload_pod.spec, "containers")
	repo := lower(image_repository(str_at(c, "image")))
	some keyword in params.server_image_keywords
	contains(repo, keyword)
}

is_model_server_workload if count(workload_server_reasons) > 0

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

isvc_component[c] := obj(spec[c]) if {
	is_isvc
	some c in isvc_components
	is_object(spec[c])
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
	uri := uri_of(u)
}

# custom containers read STORAGE_URI, as KServe's storage initializer does
isvc_storage_uris contains {"path": sprintf("/spec/%s/containers/%d/env/%d/value", [comp, i, j]), "uri": e.value} if {
	some comp, s in isvc_component
	some i, c in arr_at(s, "containers")
	some j, e in arr_at(c, "env")
	e.name == "STORAGE_URI"
	nonempty(e.value)
}

seldon_storage_uris contains {"path": pointer(array.concat(["spec", "predictors", i, "graph"], p)), "uri": v} if {
	some i, pred in arr_at(spec, "predictors")
	walk(obj_at(pred, "graph"), [p, v])
	count(p) > 0
	count(p) <= graph_depth + 1
	p[count(p) - 1] == "modelUri"
	nonempty(v)
}

graph_depth := 32

seldon_graphs_too_deep contains sprintf("/spec/predictors/%d/graph", [i]) if {
	class == "seldon_deployment"
	some i, pred in arr_at(spec, "predictors")
	walk(obj_at(pred, "graph"), [p, v])
	count(p) == graph_depth + 1
	is_collection(v)
}

is_collection(x) if is_object(x)

is_collection(x) if is_array(x)

seldon_storage_uris contains {"path": sprintf("/spec/predictors/%d/explainer/modelUri", [i]), "uri": pred.explainer.modelUri} if {
	some i, pred in arr_at(spec, "predictors")
	nonempty(object.get(obj(pred), ["explainer", "modelUri"], null))
}

# A workload that names its model on the command line or in the environment:
# `--model-uri gs://…`, `--model_dir=s3://…`, MODEL_URI=hf://…, STORAGE_URI=… .
workload_arg_uris contains {"path": sprintf("%s/containers/%d/args/%d", [workload_pod.path, i, j]), "uri": uri} if {
	is_workload
	some i, c in arr_at(workload_pod.spec, "containers")
	args := arr_at(c, "args")
	some j, arg in args
	uri := arg_model_uri(args, j, arg)
}

workload_arg_uris contains {"path": sprintf("%s/containers/%d/env/%d/value", [workload_pod.path, i, j]), "uri": e.value} if {
	is_workload
	some i, c in arr_at(workload_pod.spec, "containers")
	some j, e in arr_at(c, "env")
	env_name := upper(str_at(e, "name"))
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

model_scheme(uri) if {
	some scheme in params.model_uri_schemes
	startswith(uri, scheme)
}

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

is_prod if glob_any(params.prod_clusters, str_at(input, ["cluster", "name"]))

is_prod if {
	some key in ["environment", "env"]
	lower(str_at(labels, key)) in {e | some e in params.prod_environments}
}

# "Namespace/name" (or "Kind name" for cluster-scoped) for messages.
display := sprintf("%s %s/%s", [kind, namespace, name]) if namespace != ""
else := sprintf("%s %s", [kind, name])
