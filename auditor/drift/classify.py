"""What a drifted path means for a model server: model, runtime, traffic, scale or config.

A table of rows, first match wins. A row names the kinds it applies to and a path pattern
over the pointer's tokens: a literal, `{a,b}` for alternatives, `*` for one token and
`**` for any number of tokens. The model rows come first: a model that changed is the
most important thing to say about a path, whatever else it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from auditor.drift.pointer import ElementStep, Step, tokens_of
from auditor.model import DriftClass

KSERVE = "serving.kserve.io"
SELDON = "machinelearning.seldon.io"
SELDON_V2 = "mlops.seldon.io"

# Kinds whose whole object (missing, unmanaged) is a model-serving object.
MODEL_KINDS: frozenset[tuple[str, str]] = frozenset(
    {(KSERVE, "InferenceService"), (SELDON, "SeldonDeployment"), (SELDON_V2, "Model")}
)

_COMPONENTS = "{predictor,transformer,explainer}"
# KServe v1beta1 per-framework predictor specs (each embeds a container plus storageUri).
_FRAMEWORKS = (
    "{sklearn,xgboost,tensorflow,pytorch,onnx,triton,lightgbm,pmml,paddle,huggingface,custom,model}"
)
_CONTAINER_LISTS = "{containers,initContainers,ephemeralContainers}"
_MODEL_ANNOTATIONS = ("auditor.gitops.ml/model-uri", "auditor.gitops.ml/model-digest")
_MODEL_ANNOTATION_PREFIXES = ("serving.kserve.io/storage-initializer-sourceuri",)
_SCALE_ANNOTATION_PREFIXES = (
    "autoscaling.knative.dev/",
    "serving.kserve.io/autoscalerClass",
    "serving.kserve.io/metrics",
    "serving.kserve.io/targetUtilizationPercentage",
)

Pattern = tuple[frozenset[str] | None, ...]  # None is `*`; a `**` token is _ANY_DEPTH
_ANY_DEPTH: frozenset[str] = frozenset({"**"})


def _compile(pattern: str) -> Pattern:
    out: list[frozenset[str] | None] = []
    for part in pattern.split("/"):
        if part == "*":
            out.append(None)
        elif part == "**":
            out.append(_ANY_DEPTH)
        elif part.startswith("{") and part.endswith("}"):
            out.append(frozenset(part[1:-1].split(",")))
        else:
            out.append(frozenset({part}))
    return tuple(out)


def _match(pattern: Pattern, tokens: Sequence[str]) -> bool:
    if not pattern:
        return not tokens
    head = pattern[0]
    if head is _ANY_DEPTH:
        return any(_match(pattern[1:], tokens[i:]) for i in range(len(tokens) + 1))
    if not tokens or (head is not None and tokens[0] not in head):
        return False
    return _match(pattern[1:], tokens[1:])


Extra = Callable[[Sequence[str], Sequence[Step]], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """Paths matching `pattern` (on these kinds and groups) drift in `drift_class`."""

    drift_class: DriftClass
    pattern: str
    kinds: frozenset[tuple[str, str]] | None = None  # None: every kind
    groups: frozenset[str] | None = None  # None: every group
    extra: Extra | None = None  # a further test on the tokens and steps
    compiled: Pattern = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", _compile(self.pattern))

    def matches(self, group: str, kind: str, tokens: Sequence[str], steps: Sequence[Step]) -> bool:
        if self.kinds is not None and (group, kind) not in self.kinds:
            return False
        if self.groups is not None and group not in self.groups:
            return False
        if not _match(self.compiled, tokens):
            return False
        return self.extra is None or self.extra(tokens, steps)


def _env_storage_uri(tokens: Sequence[str], steps: Sequence[Step]) -> bool:
    """An env element (or its value) named STORAGE_URI, as KServe's storage initializer reads."""
    for i, step in enumerate(steps):
        if i and tokens[i - 1] == "env" and isinstance(step, ElementStep):
            element = step.element
            return isinstance(element, Mapping) and element.get("name") == "STORAGE_URI"
    return False


def _annotation(names: tuple[str, ...], prefixes: tuple[str, ...]) -> Extra:
    def check(tokens: Sequence[str], steps: Sequence[Step]) -> bool:
        key = tokens[-1]
        return key in names or key.startswith(prefixes)

    return check


def _kinds(*pairs: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(pairs)


ISVC = _kinds((KSERVE, "InferenceService"))
SELDON_DEPLOYMENT = _kinds((SELDON, "SeldonDeployment"))
HPA = _kinds(("autoscaling", "HorizontalPodAutoscaler"))

RULES: tuple[Rule, ...] = (
    # -- model: what is served
    Rule(
        "model", f"spec/{_COMPONENTS}/model/{{storageUri,storageUris,storage,modelFormat}}/**", ISVC
    ),
    Rule("model", f"spec/predictor/{_FRAMEWORKS}/{{storageUri,storage}}/**", ISVC),
    Rule("model", "spec/predictor/storageUri", ISVC),  # the v0.11+ shorthand
    Rule("model", "spec/explainer/{art,alibi}/storageUri", ISVC),
    Rule("model", "spec/model/{storageUri,framework}/**", _kinds((KSERVE, "TrainedModel"))),
    Rule("model", "**/env/*/**", extra=_env_storage_uri),
    Rule(
        "model",
        "**/annotations/*",
        extra=_annotation(_MODEL_ANNOTATIONS, _MODEL_ANNOTATION_PREFIXES),
    ),
    Rule("model", "spec/predictors/*/graph/**/modelUri", SELDON_DEPLOYMENT),
    Rule("model", "spec/{storageUri,artifactVersion}", _kinds((SELDON_V2, "Model"))),
    # -- runtime: what serves it
    Rule("runtime", f"**/{_CONTAINER_LISTS}/*/{{image,command,args}}/**"),
    Rule("runtime", f"**/{_CONTAINER_LISTS}/*"),  # a whole container added or removed
    Rule(
        "runtime",
        f"spec/{_COMPONENTS}/**/{{image,command,args,runtime,runtimeVersion,protocolVersion}}/**",
        ISVC,
    ),
    Rule("runtime", "spec/predictors/*/graph/**/implementation", SELDON_DEPLOYMENT),
    Rule(
        "runtime",
        "spec/{protocolVersions,supportedModelFormats,builtInAdapter}/**",
        _kinds((KSERVE, "ServingRuntime"), (KSERVE, "ClusterServingRuntime")),
    ),
    Rule(
        "runtime",
        "spec/{serverConfig,server}/**",
        _kinds((SELDON_V2, "Server"), (SELDON_V2, "Model")),
    ),
    # -- traffic: who gets which requests
    Rule("traffic", "spec/**/canaryTrafficPercent", ISVC),
    Rule("traffic", "spec/predictors/*/traffic", SELDON_DEPLOYMENT),
    Rule("traffic", "spec/http/*/route/*/weight", groups=frozenset({"networking.istio.io"})),
    Rule("traffic", "spec/traffic/**", groups=frozenset({"serving.knative.dev"})),
    Rule(
        "traffic",
        "spec/rules/*/backendRefs/*/weight",
        groups=frozenset({"gateway.networking.k8s.io"}),
    ),
    Rule("traffic", "spec/candidates/**", _kinds((SELDON_V2, "Experiment"))),
    # -- scale: how many serve it
    Rule(
        "scale",
        "spec/**/{replicas,minReplicas,maxReplicas,scaleTarget,scaleMetric,scaleMetricType}",
    ),
    Rule("scale", "spec/**/autoScaling/**", ISVC),
    Rule("scale", "spec/**", HPA),
    Rule("scale", "spec/**", groups=frozenset({"keda.sh"})),
    Rule("scale", "**/annotations/*", extra=_annotation((), _SCALE_ANNOTATION_PREFIXES)),
)


def classify_path(group: str, kind: str, steps: Sequence[Step]) -> DriftClass:
    """The class of a drifted path of an object; `config` when no row matches."""
    tokens = tokens_of(steps)
    if not tokens:
        return classify_kind(group, kind)
    if group == "" and kind in ("ConfigMap", "Secret"):
        return "config"  # data keys named like spec fields are still just data
    for rule in RULES:
        if rule.matches(group, kind, tokens, steps):
            return rule.drift_class
    return "config"


def classify_kind(group: str, kind: str) -> DriftClass:
    """The class of a whole object (missing or unmanaged): model-serving kinds are `model`."""
    return "model" if (group, kind) in MODEL_KINDS else "config"
