"""Running policies over input documents: Evaluations (every pair) and Findings (every message).

Conventions, as conftest and Gatekeeper have them: `deny`, `warn` and `violation` are sets (or
arrays) of strings or of objects `{msg, ...}`. An evaluation is `fail` with any deny or
violation message, `warn` with only warn messages, `pass` with none, and `error` when the
policy raised: one `policy.error` finding then, and the other policies still run.

Plain Rego policies see the DESIGN input document as it is, all of them in one engine call per
resource (the input is set once). A policy of another kind (Gatekeeper) is evaluated through
its `PolicyKindHooks`: the hook builds that policy's own input, or says it does not apply.

Hostile input and runaway policies cost evaluations, never the run: an input nested deeper than
the engines read (`MAX_DEPTH`) is an error evaluation for each policy, and with a time budget
the embedded engine evaluates in worker processes (`worker.py`), where a call that overruns is
stopped. When the one call for all plain policies overruns, each is evaluated alone to find
the one that did; a policy that overran runs alone from then on, and after `MAX_OVERRUNS`
overruns it is not run on the remaining resources (an error evaluation each, saying so), so a
policy that never finishes costs a few budgets per run rather than one per resource.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor import checks
from auditor.bounded import read_bounded
from auditor.config import DEFAULT_POLICY_MEMORY_BYTES, DEFAULT_POLICY_TIMEOUT_SECONDS
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
    policy_failure,
    result_counts,
)
from auditor.objects import flatten, is_object, to_resource
from auditor.policy.applies import ANY_GROUP, applies
from auditor.policy.engine import (
    Policy,
    PolicyAborted,
    PolicyEngine,
    PolicyEvalError,
    PolicyTimeout,
    VmDisagreement,
    depth_error,
    depth_over_limit,
)
from auditor.policy.inputs import object_input
from auditor.policy.loader import PolicySet, load_policy_files, with_inventory
from auditor.safeyaml import DEFAULT_MAX_BYTES, load_documents

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    evaluations: tuple[Evaluation, ...]
    findings: tuple[Finding, ...]
    errors: tuple[StageError, ...]  # one per policy that errored, for the run's `incomplete`
    # What people should know that is neither a finding nor an error (the VM disagreed with
    # the interpreter, so the run was evaluated by the interpreter alone)
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        return result_counts(self.evaluations)

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
    def __init__(self, policy_set: PolicySet, overruns: Counter[str] | None = None) -> None:
        self.policy_set = policy_set
        self.evaluations: list[Evaluation] = []
        self.findings: list[Finding] = []
        self.failures: dict[str, list[str]] = {}  # policy id -> error texts
        # policy id -> evaluations that timed out (shared by the chunks of a run)
        self.overruns: Counter[str] = Counter() if overruns is None else overruns
        # (id of a kind's list of plain policies, overruns so far) -> their batch's rules
        self.batches: dict[tuple[int, int], list[str]] = {}

    def overran(self, policy: Policy) -> bool:
        return self.overruns[policy.id] > 0

    def given_up(self, policy: Policy) -> PolicyEvalError | None:
        """Why `policy` is no longer run, once it overran its budget MAX_OVERRUNS times."""
        if self.overruns[policy.id] < MAX_OVERRUNS:
            return None
        return PolicyEvalError(
            f"not evaluated: it overran its time budget on {MAX_OVERRUNS} objects already"
        )

    def record(
        self,
        policy: Policy,
        ref: ResourceRef | None,
        input_doc: Mapping[str, Any],
        values: Sequence[Any],
        duration_ms: float,
    ) -> None:
        if all(v is None or v is False or (type(v) is list and not v) for v in values):
            # the usual case (nine in ten at 10,000 resources): no message, nothing to find
            self.evaluations.append(
                Evaluation(policy=policy.id, ref=ref, result="pass", duration_ms=duration_ms)
            )
            return
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

    def passed(self, policies: Sequence[Policy], ref: ResourceRef | None, share: float) -> None:
        """`record` of policies whose every value was undefined or empty: each a pass."""
        self.evaluations.extend(
            Evaluation(policy=p.id, ref=ref, result="pass", duration_ms=share) for p in policies
        )

    def merge(self, part: _Collector) -> None:
        self.evaluations.extend(part.evaluations)
        self.findings.extend(part.findings)
        for policy_id, texts in part.failures.items():
            self.failures.setdefault(policy_id, []).extend(texts)

    def stage_errors(self) -> tuple[StageError, ...]:
        return tuple(
            policy_failure(policy_id, texts[0], len(texts))
            for policy_id, texts in self.failures.items()
        )


def evaluate_policies(
    policy_set: PolicySet,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    *,
    engine: PolicyEngine,
    workers: int = 1,
    timeout: float | None = None,
    memory: int | None = DEFAULT_POLICY_MEMORY_BYTES,
) -> PolicyOutcome:
    """Every policy over every input it applies to; `engine` must already be loaded with
    `policy_set` (`load_engine`). One Evaluation per policy x input, none where the policy
    does not apply (its kinds, `applies.py`, or a plug-in's match exclude the object: outside
    its scope, not a pass), one Finding per message, an error finding per failed evaluation.

    `duration_ms` of plain Rego policies is the resource's batch time shared among them: they
    run in one engine call so the input is serialized once. With an engine that can run in a
    worker process (the embedded one), `timeout` (seconds per engine call) evaluates in
    workers that are stopped on overrun, and `workers` > 1 splits large runs over that many;
    results come back in input order either way; a worker may allocate `memory` bytes beyond
    what it inherits (None: no limit). Other engines (an OPA server: its requests have their
    own timeout) evaluate here.
    """
    size = len(inputs) * max(len(policy_set.policies), 1)
    parts = workers if workers > 1 and size >= PARALLEL_MIN_EVALUATIONS else 1
    notes: tuple[str, ...] = ()
    try:
        collector = _evaluate_all(policy_set, inputs, engine, parts, timeout, memory)
    except VmDisagreement as exc:
        # Every result of the VM in this run is suspect: all of them again, on the interpreter.
        note = disagreement_note(policy_set, exc)
        log.warning("%s", note)
        getattr(engine, "use_interpreter")()  # noqa: B009 (only engines with a VM raise it)
        collector = _evaluate_all(policy_set, inputs, engine, parts, timeout, memory)
        notes = (note,)
    return PolicyOutcome(
        evaluations=tuple(collector.evaluations),
        findings=tuple(collector.findings),
        errors=collector.stage_errors(),
        notes=notes,
    )


def _evaluate_all(
    policy_set: PolicySet,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    engine: PolicyEngine,
    parts: int,
    timeout: float | None,
    memory: int | None,
) -> _Collector:
    collector = _Collector(policy_set)
    if _isolatable(engine) and (timeout is not None or parts > 1):
        for part in _evaluate_in_workers(policy_set, inputs, engine, parts, timeout, memory):
            collector.merge(part)
    else:
        _evaluate_into(collector, inputs, engine)
    return collector


def disagreement_note(policy_set: PolicySet, exc: VmDisagreement) -> str:
    """The run's warning: which policy, object and rule the VM got wrong."""
    package, _, rule = exc.rule.removeprefix("data.").rpartition(".")
    policy = next((p.id for p in policy_set.policies if p.package == package), package)
    what = exc.ref.display() if isinstance(exc.ref, ResourceRef) else "an input"
    return (
        f"policy {policy}: regorus's VM and its interpreter disagreed on {what} "
        f"(rule {rule}); every policy of this run was evaluated by the interpreter instead. "
        "Please report it (policy and object) so it can be fixed; `policy: {vm: false}` in "
        "auditor.yaml keeps the interpreter until then."
    )


def _evaluate_into(
    collector: _Collector,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    engine: PolicyEngine,
) -> None:
    """Each input judged by the policies that apply to its kind (`applies.py`)."""
    chosen: dict[tuple[str, str], tuple[list[Policy], list[Policy]]] = {}
    for ref, input_doc in inputs:
        key = _kind_of(ref, input_doc)
        if key not in chosen:
            chosen[key] = _applicable(collector.policy_set, *key)
    prefetch = getattr(engine, "prefetch", None)
    if prefetch is not None:  # a worker process: the batch calls below, sent ahead
        requests = [(_batch_rules(collector, chosen[_kind_of(r, d)][0]), d) for r, d in inputs]
        prefetch([(rules, d) for rules, d in requests if rules])
    for ref, input_doc in inputs:
        plain, others = chosen[_kind_of(ref, input_doc)]
        if plain:
            _evaluate_plain(collector, plain, ref, input_doc, engine)
        for policy in others:
            _evaluate_other(collector, policy, ref, input_doc, engine)


def _kind_of(ref: ResourceRef | None, input_doc: Mapping[str, Any]) -> tuple[str, str]:
    """The group and kind of the object an input judges."""
    if ref is None:
        ref = _ref_from(input_doc)
    return ref.group, ref.kind


def _applicable(policy_set: PolicySet, group: str, kind: str) -> tuple[list[Policy], list[Policy]]:
    """The plain Rego policies and the plug-in ones that judge objects of this kind."""
    policies = [p for p in policy_set.policies if applies(p.kinds, group, kind)]
    return [p for p in policies if p.kind == "rego"], [p for p in policies if p.kind != "rego"]


def _evaluate_plain(
    collector: _Collector,
    plain: Sequence[Policy],
    ref: ResourceRef | None,
    input_doc: Mapping[str, Any],
    engine: PolicyEngine,
) -> None:
    """Every plain policy over one input, in one engine call but for the policies that overran
    before (alone) or too often (not at all); recorded in policy order."""
    # an engine that checks depth itself (a worker process) records the same error
    depth = None if getattr(engine, "checks_depth", False) else depth_over_limit(input_doc)
    if depth is not None:
        error = PolicyEvalError(f"input {depth_error(depth)}: not evaluated")
        for policy in plain:
            collector.record(policy, ref, input_doc, [error] * len(policy.rules), 0.0)
        return
    outcome: dict[int, tuple[list[Any], float]] = {}
    alone: list[int] = []
    batch: list[int] = []
    if not collector.overruns:  # the usual case: nothing overran, every policy in the batch
        batch = list(range(len(plain)))
    for i, policy in enumerate(plain if collector.overruns else ()):
        skip = collector.given_up(policy)
        if skip is not None:
            outcome[i] = ([skip] * len(policy.rules), 0.0)
        else:
            (alone if collector.overran(policy) else batch).append(i)
    if batch:
        rules = _batch_rules(collector, plain)
        started = time.perf_counter()
        try:
            values: list[Any] = engine.evaluate_many(rules, input_doc)
        except VmDisagreement as exc:
            exc.ref = ref or _ref_from(input_doc)  # for the run's warning
            raise
        except PolicyAborted:  # one of them overran or crashed the engine: find out which
            alone, batch = sorted(alone + batch), []
        except PolicyEvalError as exc:  # the input itself could not be evaluated
            values = [exc.kept()] * len(rules)
        share = (time.perf_counter() - started) * 1000 / max(len(batch), 1)
        if len(batch) == len(plain) and _no_messages(values):
            collector.passed(plain, ref, share)  # nine inputs in ten
            return
        offset = 0
        for i in batch:
            n = len(plain[i].rules)
            outcome[i] = (values[offset : offset + n], share)
            offset += n
    for i in alone:
        outcome[i] = _evaluate_alone(collector, plain[i], input_doc, engine)
    for i, policy in enumerate(plain):
        collector.record(policy, ref, input_doc, *outcome[i])


def _no_messages(values: list[Any]) -> bool:
    """Whether every value of a batch is undefined or an empty set: no message from any of its
    policies. Counted in C: of what JSON decodes to, only None equals None and only an empty
    list equals []."""
    return values.count(None) + values.count([]) == len(values)


def _batch_rules(collector: _Collector, plain: Sequence[Policy]) -> list[str]:
    """The rules of the one engine call for these plain policies: those that neither overran
    before (they run alone) nor were given up. The same list for every input of a kind until
    a policy overruns (overruns only grow), so it is made once per kind and overrun count."""
    key = (id(plain), collector.overruns.total())
    rules = collector.batches.get(key)
    if rules is None:
        rules = [
            path
            for policy in plain
            if collector.given_up(policy) is None and not collector.overran(policy)
            for path in _rule_paths(policy)
        ]
        collector.batches[key] = rules
    return rules


def _evaluate_alone(
    collector: _Collector, policy: Policy, input_doc: Mapping[str, Any], engine: PolicyEngine
) -> tuple[list[Any], float]:
    """One policy's rules in an engine call of its own: (values, duration in ms)."""
    started = time.perf_counter()
    try:
        values: list[Any] = engine.evaluate_many(_rule_paths(policy), input_doc)
    except PolicyEvalError as exc:
        if isinstance(exc, PolicyTimeout):
            collector.overruns[policy.id] += 1
        values = [exc.kept()] * len(policy.rules)
    return values, (time.perf_counter() - started) * 1000


# -- over several processes ----------------------------------------------------------------

# Below this many evaluations, splitting a run over several workers costs more than it saves
# (a worker is one fork of the loaded engine, a few milliseconds; 2,000 evaluations take 0.2 s
# or more).
PARALLEL_MIN_EVALUATIONS = 2_000
# Inputs a worker takes at a time: small enough that workers finish together, large enough
# that taking one costs nothing.
CHUNK_INPUTS = 32
# After this many overruns, a policy is not run on the rest of the resources.
MAX_OVERRUNS = 3


def _isolatable(engine: PolicyEngine) -> bool:
    # A worker loads the set's modules and data into an engine of the same kind; only the
    # embedded engine is that self-contained (an OPA server's requests time out on their own).
    return bool(getattr(engine, "isolatable", False))


def _evaluate_in_workers(
    policy_set: PolicySet,
    inputs: Sequence[tuple[ResourceRef | None, Mapping[str, Any]]],
    engine: PolicyEngine,
    parts: int,
    timeout: float | None,
    memory: int | None,
) -> list[_Collector]:
    """The inputs in chunks of CHUNK_INPUTS, which `parts` worker processes
    (`worker.run_in_workers`) take one at a time as they finish the last: inputs come sorted
    by kind and kinds cost very different amounts (a ConfigMap a fraction of an
    InferenceService), so fixed shares would leave one worker idle while the other works.
    The collectors in input order."""
    from auditor.policy.worker import run_in_workers

    if not inputs:
        return []
    chunks = [(i, min(i + CHUNK_INPUTS, len(inputs))) for i in range(0, len(inputs), CHUNK_INPUTS)]
    done: list[_Collector | None] = [None] * len(chunks)
    taken = itertools.count()  # its next() is atomic: each chunk goes to one worker
    # one count of overruns for the run, whichever worker saw them (MAX_OVERRUNS)
    overruns: Counter[str] = Counter()
    disagreed = threading.Event()  # the run starts over on the interpreter: stop taking chunks

    def run(_: int, worker: PolicyEngine) -> None:
        while not disagreed.is_set() and (index := next(taken)) < len(chunks):
            start, end = chunks[index]
            collector = _Collector(policy_set, overruns)
            try:
                _evaluate_into(collector, inputs[start:end], worker)
            except VmDisagreement:
                disagreed.set()
                raise
            done[index] = collector

    batches: tuple[tuple[str, ...], ...] = getattr(
        engine, "batches", tuple
    )()  # the VM's, which a spawned worker compiles
    spec = (policy_set.modules, policy_set.data, batches, vm_packages(policy_set))
    shared = [document for _, document in inputs]
    run_in_workers(
        spec, timeout, list(range(parts)), run, engine=engine, shared=shared, memory=memory
    )
    assert all(c is not None for c in done)  # run_in_workers returns once every job has
    return [c for c in done if c is not None]


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
        skip = collector.given_up(policy)
        if skip is not None:
            raise skip
        depth = depth_over_limit(own_input)
        if depth is not None:
            raise PolicyEvalError(f"input {depth_error(depth)}: not evaluated")
        values = engine.evaluate_many(_rule_paths(policy), own_input)
    except PolicyEvalError as exc:
        if isinstance(exc, PolicyTimeout):
            collector.overruns[policy.id] += 1
        values = [exc.kept()] * len(policy.rules)
    duration = (time.perf_counter() - started) * 1000
    collector.record(policy, ref, input_doc, values, duration)


def load_engine(
    policy_set: PolicySet, engine: PolicyEngine | None = None, *, vm: bool = False
) -> PolicyEngine:
    """`engine` (the embedded one by default) loaded with the set's modules and data. The
    embedded engine evaluates the plain policies' batches on regorus's VM when `vm` and they
    compile (`vm.py`), else on its interpreter."""
    if engine is None:
        from auditor.policy.vm import load_embedded

        batches = batch_lists(policy_set) if vm else ()
        return load_embedded(policy_set.modules, policy_set.data, batches, vm_packages(policy_set))
    engine.load(policy_set.modules, policy_set.data)
    return engine


def batch_lists(policy_set: PolicySet) -> list[tuple[str, ...]]:
    """Every list of rules `_evaluate_plain` asks for in one call before any policy overran:
    one per kind a policy names, and one for the kinds none names (an admission request may
    bring any kind, so this does not depend on the inputs)."""
    unnamed = "\0"  # a group or kind no policy names
    kinds: set[tuple[str, str]] = {(unnamed, unnamed)}
    for policy in policy_set.policies:
        for group, kind in policy.kinds or ():
            kinds.add((unnamed if group == ANY_GROUP else group, kind))
    lists: dict[tuple[str, ...], None] = {}
    for group, kind in sorted(kinds):
        plain, _ = _applicable(policy_set, group, kind)
        rules = tuple(path for policy in plain for path in _rule_paths(policy))
        if rules:
            lists[rules] = None
    return list(lists)


def vm_packages(policy_set: PolicySet) -> tuple[str, ...]:
    """The packages of the policies `batch_lists` batches."""
    return tuple(sorted({p.package for p in policy_set.policies if p.kind == "rego"}))


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
    """Objects from `--inventory` files, as plain bodies for a plug-in's `data.inventory`.
    An object nested too deeply for the engine is refused here, naming it: left out, a
    conflict with it would go unseen."""
    objects = []
    for resource in read_objects(files, what="inventory file"):
        depth = depth_over_limit(resource.body)
        if depth is not None:
            raise InputError(
                f"{resource.ref.display()} {depth_error(depth)}: it cannot be in data.inventory",
                file=resource.origin,
            )
        objects.append(dict(resource.body))
    return objects


def evaluate_files(
    policy_paths: Sequence[str],
    resource_files: Sequence[str],
    *,
    data_files: Sequence[str] = (),
    inventory_files: Sequence[str] = (),
    engine: PolicyEngine | None = None,
    timeout: float | None = DEFAULT_POLICY_TIMEOUT_SECONDS,
    vm: bool = False,
) -> PolicyOutcome:
    """`auditor policy eval`: each object of `resource_files` judged on its own (admission
    input: resource and desired are the object; no live, drift or Git), each engine call
    within `timeout` seconds."""
    from auditor.policy.gatekeeper import GATOR, hooks

    # Judged like `gator test`: scoped enforcement actions pick the gator enforcement point.
    policy_set = load_policy_files(policy_paths, data_files=data_files, hooks=(hooks(GATOR),))
    if inventory_files:
        if not any(h.inventory is not None for h in policy_set.hooks):
            log.warning("--inventory is only read by Gatekeeper policies; none is loaded")
        policy_set = with_inventory(policy_set, read_inventory(inventory_files))
    reviews = read_reviews(resource_files)
    loaded = load_engine(policy_set, engine, vm=vm)
    inputs = [(r.ref, object_input(r, request=request)) for r, request in reviews]
    return evaluate_policies(policy_set, inputs, engine=loaded, timeout=timeout)


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
