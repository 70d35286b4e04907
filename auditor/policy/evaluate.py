"""Running policies over input documents: Evaluations (every pair) and Findings (every message).

Conventions, as conftest and Gatekeeper have them: `deny`, `warn` and `violation` are sets (or
arrays) of strings or of objects `{msg, ...}`. An evaluation is `fail` with any deny or
violation message, `warn` with only warn messages, `pass` with none, and `error` when the
policy raised: one `policy.error` finding then, and the other policies still run.

Plain Rego policies see the DESIGN input document as it is, all of them in one engine call per
resource (the input is set once). A policy of another kind (Gatekeeper) is evaluated through
its `PolicyKindHooks`: the hook builds that policy's own input, or says it does not apply.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor import checks
from auditor.bounded import read_bounded
from auditor.errors import InputError
from auditor.exit_codes import ExitCode
from auditor.model import (
    Evaluation,
    EvaluationResult,
    Finding,
    PolicyMessage,
    Resource,
    ResourceRef,
    RuleName,
    StageError,
)
from auditor.objects import flatten, is_object, to_resource
from auditor.policy.engine import Policy, PolicyEngine, PolicyEvalError
from auditor.policy.inputs import object_input
from auditor.policy.loader import PolicySet, load_policy_files, with_inventory
from auditor.safeyaml import DEFAULT_MAX_BYTES, load_documents

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    evaluations: tuple[Evaluation, ...]
    findings: tuple[Finding, ...]
    errors: tuple[StageError, ...]  # one per policy that errored, for the run's `incomplete`

    def counts(self) -> dict[str, int]:
        results = Counter(e.result for e in self.evaluations)
        return {r: results.get(r, 0) for r in ("pass", "fail", "warn", "error")}

    def exit_code(self) -> ExitCode:
        """INCOMPLETE (3) when an evaluation errored (an error is not a pass), else FINDINGS (1)
        on any fail, else CLEAN (0)."""
        results = {e.result for e in self.evaluations}
        if "error" in results or self.errors:
            return ExitCode.INCOMPLETE
        return ExitCode.FINDINGS if "fail" in results else ExitCode.CLEAN


# -- messages ------------------------------------------------------------------------------


def _message_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping) and "msg" in item:
        msg = item["msg"]
        return msg if isinstance(msg, str) else json.dumps(msg, sort_keys=True)
    return json.dumps(item, sort_keys=True)


def messages_of(rule: RuleName, value: Any) -> list[PolicyMessage]:
    """The messages in one rule's value.

    A set or array holds one message per item; an object with `msg` is one message; any other
    object (`deny[key] := msg`) one per value; `true` one message naming the rule; a string is
    one message; undefined, false and empty are none.
    """
    if value is None or value is False:
        return []
    if value is True:
        return [PolicyMessage(rule=rule, msg=f"{rule} is true")]
    if isinstance(value, Mapping):
        items: list[Any] = [value] if "msg" in value else list(value.values())
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    out = []
    for item in items:
        details = dict(item) if isinstance(item, Mapping) else {}
        out.append(PolicyMessage(rule=rule, msg=_message_text(item), details=details))
    return out


def _result(policy: Policy, messages: Sequence[PolicyMessage], set_: PolicySet) -> EvaluationResult:
    if any(m.rule in ("deny", "violation") for m in messages):
        hooks = set_.hooks_for(policy.kind)
        if (
            any(m.rule == "violation" for m in messages)
            and not any(m.rule == "deny" for m in messages)
            and hooks is not None
            and hooks.violation_result is not None
        ):
            return hooks.violation_result(policy)
        return "fail"
    return "warn" if messages else "pass"


# -- findings ------------------------------------------------------------------------------


def _ref_from(input_doc: Mapping[str, Any]) -> ResourceRef:
    """A ref for an input that came without one, from its resource as far as it goes."""
    body = input_doc.get("resource")
    body = body if isinstance(body, Mapping) else {}
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    cluster = input_doc.get("cluster")
    return ResourceRef(
        cluster=str(cluster.get("name") or "") if isinstance(cluster, Mapping) else "",
        api_version=str(body.get("apiVersion") or ""),
        kind=str(body.get("kind") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
    )


def _prefix(ref: ResourceRef) -> str:
    return f"{ref.display()}: " if ref.kind or ref.name else ""


def _named(ref: ResourceRef, text: str) -> str:
    """`<Kind ns/name>: <text>`, unless the policy already named the object that way."""
    prefix = _prefix(ref)
    return text if not prefix or text.startswith(prefix) else prefix + text


def message_finding(policy: Policy, ref: ResourceRef, message: PolicyMessage) -> Finding:
    """One finding per message. A message object may carry `path` (a JSON pointer into the
    resource), `expected` and `actual`.

    Each message is its own finding across runs: with a `path`, the rule and path identify it
    (its text may carry values that change); without one, the rule and the text do.
    """
    details = message.details
    path = details.get("path")
    pointer = path if isinstance(path, str) and (path == "" or path.startswith("/")) else None
    return Finding(
        category="policy",
        check=policy.id,
        severity=policy.warn_severity if message.rule == "warn" else policy.severity,
        ref=ref,
        path=pointer or "",
        message=_named(ref, message.msg),
        expected=details.get("expected"),
        actual=details.get("actual"),
        details={
            "rule": message.rule,
            "message": dict(details) if details else message.msg,
            "policy_title": policy.title,
            "source": policy.source,
        },
        controls=policy.controls,
        discriminator=message.rule if pointer is not None else f"{message.rule}:{message.msg}",
    )


def error_finding(policy: Policy, ref: ResourceRef, error: str) -> Finding:
    return checks.finding(
        checks.POLICY_ERROR,
        ref,
        "",
        f"{_prefix(ref)}policy {policy.id} ({policy.source}) failed: {error}",
        details={"policy": policy.id, "source": policy.source, "error": error},
        controls=policy.controls,
    )


# -- evaluation ----------------------------------------------------------------------------


def _rule_paths(policy: Policy) -> list[str]:
    return [f"data.{policy.package}.{rule}" for rule in policy.rules]


class _Collector:
    def __init__(self, policy_set: PolicySet) -> None:
        self.policy_set = policy_set
        self.evaluations: list[Evaluation] = []
        self.findings: list[Finding] = []
        self.failures: dict[str, list[str]] = {}  # policy id -> error texts

    def record(
        self,
        policy: Policy,
        ref: ResourceRef | None,
        input_doc: Mapping[str, Any],
        values: Sequence[Any],
        duration_ms: float,
    ) -> None:
        finding_ref = ref or _ref_from(input_doc)
        errors = [v for v in values if isinstance(v, BaseException)]
        if errors:
            text = "; ".join(dict.fromkeys(str(e) for e in errors))
            self.evaluations.append(
                Evaluation(
                    policy=policy.id,
                    ref=ref,
                    result="error",
                    duration_ms=duration_ms,
                    error=text,
                )
            )
            self.findings.append(error_finding(policy, finding_ref, text))
            self.failures.setdefault(policy.id, []).append(text)
            return
        messages = [
            m for rule, v in zip(policy.rules, values, strict=True) for m in messages_of(rule, v)
        ]
        self.evaluations.append(
            Evaluation(
                policy=policy.id,
                ref=ref,
                result=_result(policy, messages, self.policy_set),
                messages=tuple(messages),
                duration_ms=duration_ms,
            )
        )
        self.findings.extend(message_finding(policy, finding_ref, m) for m in messages)

    def merge(self, part: _Part) -> None:
        self.evaluations.extend(part.evaluations)
        self.findings.extend(part.findings)
        for policy_id, texts in part.failures.items():
            self.failures.setdefault(policy_id, []).extend(texts)

    def stage_errors(self) -> tuple[StageError, ...]:
        out = []
        for policy_id, texts in self.failures.items():
            count = len(texts)
            suffix = f" (and on {count - 1} more resources)" if count > 1 else ""
            message = f"policy {policy_id} failed: {texts[0]}{suffix}"
            out.append(StageError(stage="policy", target=policy_id, message=message))
        return tuple(out)


def evaluate_policies(
    policy_set: PolicySet,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    *,
    engine: PolicyEngine,
    workers: int = 1,
) -> PolicyOutcome:
    """Every policy over every input; `engine` must already be loaded with `policy_set`
    (`load_engine`). One Evaluation per policy x input (none when a plug-in policy does not
    apply to the input), one Finding per message, an error finding per failed evaluation.

    `duration_ms` of plain Rego policies is the resource's batch time shared among them: they
    run in one engine call so the input is serialized once. With `workers` > 1 and an engine
    that survives a fork (the embedded one), large runs are split over that many processes;
    results come back in input order either way.
    """
    collector = _Collector(policy_set)
    size = len(inputs) * max(len(policy_set.policies), 1)
    if workers > 1 and size >= PARALLEL_MIN_EVALUATIONS and _can_fork(engine):
        for part in _evaluate_forked(policy_set, inputs, engine, workers):
            collector.merge(part)
    else:
        _evaluate_into(collector, inputs, engine)
    return PolicyOutcome(
        evaluations=tuple(collector.evaluations),
        findings=tuple(collector.findings),
        errors=collector.stage_errors(),
    )


def _evaluate_into(
    collector: _Collector,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    engine: PolicyEngine,
) -> None:
    policy_set = collector.policy_set
    plain = [p for p in policy_set.policies if p.kind == "rego"]
    others = [p for p in policy_set.policies if p.kind != "rego"]
    plain_rules = [path for p in plain for path in _rule_paths(p)]
    for ref, input_doc in inputs:
        if plain:
            started = time.perf_counter()
            try:
                values: list[Any] = engine.evaluate_many(plain_rules, input_doc)
            except PolicyEvalError as exc:  # the input itself could not be evaluated
                values = [exc] * len(plain_rules)
            share = (time.perf_counter() - started) * 1000 / len(plain)
            offset = 0
            for policy in plain:
                n = len(policy.rules)
                collector.record(policy, ref, input_doc, values[offset : offset + n], share)
                offset += n
        for policy in others:
            _evaluate_other(collector, policy, ref, input_doc, engine)


# -- over several processes ----------------------------------------------------------------

# Below this many evaluations a fork costs more than it saves.
PARALLEL_MIN_EVALUATIONS = 20_000
# What forked workers inherit (set just before the fork, so nothing is pickled on the way in).
_FORK_STATE: tuple[PolicySet, Sequence[tuple[ResourceRef | None, Mapping[str, Any]]], Any] | None
_FORK_STATE = None


@dataclass(frozen=True, slots=True)
class _Part:
    evaluations: list[Evaluation]
    findings: list[Finding]
    failures: dict[str, list[str]]


def _can_fork(engine: PolicyEngine) -> bool:
    # regorus engines are plain memory, safe to copy into a child; a server engine's
    # connections are not. Only fork where fork exists (not Windows, not macOS's default).
    return bool(getattr(engine, "fork_safe", False)) and "fork" in _start_methods()


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _evaluate_part(bounds: tuple[int, int]) -> _Part:
    assert _FORK_STATE is not None
    policy_set, inputs, engine = _FORK_STATE
    collector = _Collector(policy_set)
    _evaluate_into(collector, inputs[bounds[0] : bounds[1]], engine)
    return _Part(collector.evaluations, collector.findings, collector.failures)


def _evaluate_forked(
    policy_set: PolicySet,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    engine: PolicyEngine,
    workers: int,
) -> list[_Part]:
    import multiprocessing

    global _FORK_STATE
    step = -(-len(inputs) // workers)
    bounds = [(i, min(i + step, len(inputs))) for i in range(0, len(inputs), step)]
    _FORK_STATE = (policy_set, inputs, engine)
    try:
        with multiprocessing.get_context("fork").Pool(len(bounds)) as pool:
            return pool.map(_evaluate_part, bounds, chunksize=1)
    finally:
        _FORK_STATE = None


def _evaluate_other(
    collector: _Collector,
    policy: Policy,
    ref: ResourceRef | None,
    input_doc: Mapping[str, Any],
    engine: PolicyEngine,
) -> None:
    hooks = collector.policy_set.hooks_for(policy.kind)
    started = time.perf_counter()
    values: list[Any]
    try:
        if hooks is None:
            raise PolicyEvalError(f"no support for {policy.kind} policies is installed")
        own_input = hooks.prepare_input(policy, input_doc, collector.policy_set.data)
        if own_input is None:
            return  # the policy does not apply to this resource: no evaluation at all
        values = engine.evaluate_many(_rule_paths(policy), own_input)
    except PolicyEvalError as exc:
        values = [exc] * len(policy.rules)
    duration = (time.perf_counter() - started) * 1000
    collector.record(policy, ref, input_doc, values, duration)


def load_engine(policy_set: PolicySet, engine: PolicyEngine | None = None) -> PolicyEngine:
    """`engine` (the embedded one by default) loaded with the set's modules and data."""
    if engine is None:
        from auditor.policy.embedded import EmbeddedEngine

        engine = EmbeddedEngine()
    engine.load(policy_set.modules, policy_set.data)
    return engine


# -- files in, outcome out (`auditor policy eval`) ---------------------------------------


def read_reviews(
    files: Sequence[str], *, cluster: str = "", what: str = "resource file"
) -> list[tuple[Resource, dict[str, Any] | None]]:
    """Kubernetes objects from YAML/JSON files (multi-document, Lists unpacked), each with the
    admission request it came in, when the document is an AdmissionReview (as Gatekeeper's
    suites and the webhook give them: UPDATE and DELETE reviews carry oldObject)."""
    out: list[tuple[Resource, dict[str, Any] | None]] = []
    for name in files:
        content = read_bounded(name, max_bytes=DEFAULT_MAX_BYTES, what=what)
        for data, line in flatten(load_documents(content, name), name):
            request = admission_request(data)
            if request is not None:
                # a DELETE review has no object: the object being deleted is oldObject
                data = request["object"] or request["oldObject"]
                if not isinstance(data, dict):
                    raise InputError(
                        "AdmissionReview request has no object or oldObject", file=name, line=line
                    )
            if not is_object(data):
                raise InputError(
                    "not a Kubernetes object (no apiVersion/kind)", file=name, line=line
                )
            resource = to_resource(
                data, source=name, line=line, side="desired", cluster=cluster, origin=name
            )
            out.append((resource, request))
    return out


def admission_request(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request of an AdmissionReview document (admission.k8s.io v1 or v1beta1), else None."""
    if data.get("kind") != "AdmissionReview" or not isinstance(data.get("request"), Mapping):
        return None
    request = data["request"]
    return {
        "uid": request.get("uid") or "",
        "operation": request.get("operation") or "",
        "userInfo": request.get("userInfo") or {},
        "object": request.get("object"),
        "oldObject": request.get("oldObject"),
        "dryRun": request.get("dryRun"),
    }


def read_objects(
    files: Sequence[str], *, cluster: str = "", what: str = "resource file"
) -> list[Resource]:
    """The objects of `read_reviews`, without their admission requests."""
    return [resource for resource, _ in read_reviews(files, cluster=cluster, what=what)]


def read_inventory(files: Sequence[str]) -> list[dict[str, Any]]:
    """Objects from `--inventory` files, as plain bodies for a plug-in's `data.inventory`."""
    return [dict(r.body) for r in read_objects(files, what="inventory file")]


def evaluate_files(
    policy_paths: Sequence[str],
    resource_files: Sequence[str],
    *,
    data_files: Sequence[str] = (),
    inventory_files: Sequence[str] = (),
    engine: PolicyEngine | None = None,
) -> PolicyOutcome:
    """`auditor policy eval`: each object of `resource_files` judged on its own (admission
    input: resource and desired are the object; no live, drift or Git)."""
    from auditor.policy.gatekeeper import GATOR, hooks

    # Judged like `gator test`: scoped enforcement actions pick the gator enforcement point.
    policy_set = load_policy_files(policy_paths, data_files=data_files, hooks=(hooks(GATOR),))
    if inventory_files:
        if not any(h.inventory is not None for h in policy_set.hooks):
            log.warning("--inventory is only read by Gatekeeper policies; none is loaded")
        policy_set = with_inventory(policy_set, read_inventory(inventory_files))
    reviews = read_reviews(resource_files)
    loaded = load_engine(policy_set, engine)
    inputs = [(r.ref, object_input(r, request=request)) for r, request in reviews]
    return evaluate_policies(policy_set, inputs, engine=loaded)


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "policy": evaluation.policy,
        "resource": evaluation.ref.to_json() if evaluation.ref else None,
        "result": evaluation.result,
        "messages": [m.msg for m in evaluation.messages],
    }


def outcome_document(outcome: PolicyOutcome) -> dict[str, Any]:
    """The `policy eval -o json` object of DESIGN."""
    return {
        "evaluations": [evaluation_json(e) for e in outcome.evaluations],
        "findings": [f.to_json() for f in outcome.findings],
    }


def format_outcome(outcome: PolicyOutcome) -> str:
    """Text for people: one line per evaluation that did not pass, its messages below it,
    then the counts."""
    lines: list[str] = []
    for evaluation in outcome.evaluations:
        if evaluation.result == "pass":
            continue
        what = evaluation.ref.display() if evaluation.ref else "(input)"
        lines.append(f"{evaluation.result.upper():5} {evaluation.policy}  {what}")
        if evaluation.error:
            lines.append(f"      error: {evaluation.error}")
        lines.extend(f"      {m.rule}: {m.msg}" for m in evaluation.messages)
    counts = outcome.counts()
    total = len(outcome.evaluations)
    lines.append(
        f"{total} evaluations: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['warn']} warned, {counts['error']} errored"
    )
    return "\n".join(lines) + "\n"


__all__ = [
    "PolicyOutcome",
    "error_finding",
    "evaluate_files",
    "evaluate_policies",
    "evaluation_json",
    "format_outcome",
    "load_engine",
    "message_finding",
    "messages_of",
    "outcome_document",
    "read_inventory",
    "read_objects",
    "read_reviews",
]
