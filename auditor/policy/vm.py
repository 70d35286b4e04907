"""The embedded engine on regorus's compiled VM (the RVM), with the interpreter as its safety net.

regorus compiles Rego to bytecode (`regorus.Program`) that its VM (`regorus.Rvm`) runs about
3.5x faster than its tree-walking interpreter on the shipped library (bench/policy). The VM is
young, so nothing it says is recorded unless the interpreter would say the same:

- Compiled once at load: every module and one generated entry point per list of rules the
  stage asks for together (one per kind, `compile_batches`). What the compiler does not
  support (`walk`, `with`, `print`, Rego v0 that plain policies might read, ...) leaves the
  whole set on the interpreter, with one info line saying why.
- An input the VM fails on (a run-time error, its instruction limit) or whose result holds
  its `<undefined>` sentinel anywhere (a function whose `else` chain all fails yields that
  string as a value instead of being undefined) is evaluated by the interpreter, whose value
  or error, with its file and line, is what is recorded.
- A differential self-check in every run: the first input of each entry point and one in
  CHECK_EVERY after it are evaluated by both; a difference raises VmDisagreement, on which
  the caller (evaluate.py) evaluates the whole run on the interpreter and warns.

Why it is used by default for the shipped library alone (`policy.vm: auto`): what the
self-check cannot see between its samples. gordon-to-regorus 0.13's VM keeps an undefined value
where Rego drops it (docs/rvm.md lists its defects): `x := <undefined>` binds it and the body
goes on, a comprehension keeps an undefined element (`[p.t | some p in ps]`). Where that value
reaches a result it shows as the sentinel; where it only steers a comparison (`max`, `!=`,
`not ... in`) a policy passes or fails silently otherwise (before the library avoided it,
canary_bounds passed a SeldonDeployment the interpreter denies). The shipped library is
written and tested to give the same results on both (tests/policy/test_rvm_equivalence.py);
other Rego is not, so it stays on the interpreter unless `policy.vm: true`. The VM also follows
OPA's default semantics for a builtin that fails (`to_number("x")`: undefined) and for
conflicting rule values (one wins), where the interpreter reports an error; the Rust VM can be
strict (`set_strict_builtin_errors`), but the binding does not expose it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import regorus

from auditor.policy.datarefs import ANY, module_data_keys
from auditor.policy.embedded import EmbeddedEngine, RegoError, describe_error
from auditor.policy.engine import MAX_DEPTH, RegoModule, VmDisagreement

log = logging.getLogger(__name__)

# The string the VM gives for an undefined value it kept (above); a result that holds it
# anywhere, in a message too, is the interpreter's to give.
UNDEFINED_MARK = "<undefined>"
# One input in this many per entry point is also evaluated by the interpreter, besides the
# first. The interpreter takes 2-3.5x the VM's time on the shipped library (bench/README.md),
# so 1 in 100 costs 2-3.5% of the VM's time (about 1% of the interpreter's), and at 10,000
# resources still checks 100 inputs over every kind; the first input of each kind (in each
# worker process) is checked however few there are.
CHECK_EVERY = 100
_BATCH_PACKAGE = "auditor_vm_batch"

RuleList = tuple[str, ...]

_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"{}[]")


def within_depth(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text json.dumps wrote nests at most `limit` objects and arrays deep
    (`engine.nesting_depth` of the document), from its brackets alone: strings removed, each
    round strips the containers left empty, and the rounds it takes are the depth. Half the
    time of walking the document in Python (`engine.plain_depth`)."""
    # outside strings (escaped backslashes and quotes taken out first, every other quote opens
    # or closes one), only the brackets
    unquoted = text.encode().replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2]
    brackets = b"".join(unquoted).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return True
        # the empty ones as they stand: one marked first stays between the other kind's brackets
        brackets = brackets.replace(b"{}", b"o").replace(b"[]", b"o").replace(b"o", b"")
    return not brackets


def _batch_module(package: str, rules: RuleList) -> str:
    """One rule whose value is the array of `rules`' values, null where one is undefined
    (what the interpreter's batch gives, `embedded.EmbeddedEngine._batch_rules`)."""
    lines = [f"package {package}", "", "import rego.v1", ""]
    # `x = rule`, not `x := rule`: the VM binds an undefined value with `:=` (docs/rvm.md)
    lines.extend(f"r{i} := x if {{ x = {rule} }} else := null" for i, rule in enumerate(rules))
    # one rule a line: regorus refuses a line over 1,024 columns
    lines.extend(["all := [", *(f"\tr{i}," for i in range(len(rules))), "]"])
    return "\n".join(lines) + "\n"


def vm_modules(
    modules: Mapping[str, RegoModule], batched_packages: Sequence[str]
) -> dict[str, RegoModule] | str:
    """The modules the VM program is compiled from, or why there can be none. The VM compiles
    Rego v1 only; v0 modules (Gatekeeper templates, whose policies the interpreter evaluates)
    are left out when nothing compiled may read them: no v1 module reads `data` whole or by a
    computed key, or under the first key of a v0 package (`datarefs`), and no batched policy
    is in such a package. Else leaving them out could turn a reference into an undefined
    one, so the VM is not used."""
    old = {key: m for key, m in modules.items() if m.v0}
    if not old:
        return dict(modules)
    tops = {m.package.split(".")[0] for m in old.values()}
    for package in batched_packages:
        if package.split(".")[0] in tops:
            return f"policy package {package} is Rego v0, which the VM does not compile"
    kept = {key: m for key, m in modules.items() if not m.v0}
    for module in kept.values():
        keys = module_data_keys(module)
        if ANY in keys or keys & tops:
            where = f"{module.source}:{module.line_offset + 1}"
            return f"{where} may read a Rego v0 module, which the VM does not compile"
    return kept


def _same(vm_value: Any, interpreter_value: Any) -> bool:
    return not isinstance(interpreter_value, BaseException) and vm_value == interpreter_value


class VmEngine(EmbeddedEngine):
    """The embedded engine that evaluates the stage's batches on the VM when their program
    compiled (`compile_batches`), and everything else (a policy alone, a Gatekeeper
    constraint, `policy test`, an input the VM failed on) on the interpreter it is."""

    def __init__(self) -> None:
        super().__init__()
        self._vm: regorus.Rvm | None = None
        self._data: Mapping[str, Any] = {}
        self._entries: dict[RuleList, str] = {}
        self.reason: str | None = "not compiled"  # why the interpreter alone is used
        self._text: str | None = None  # the input set last, as JSON text, for the VM
        self._vm_has_input = False
        # the input set last, not yet given to the interpreter (it may never need it)
        self._pending: Mapping[str, Any] | None = None
        self._seen: Counter[str] = Counter()  # evaluations per entry point, for the self-check
        self.fallbacks = 0  # inputs the VM could not answer, which the interpreter did

    # -- load --------------------------------------------------------------------------------

    def compile_batches(self, batches: Sequence[RuleList], packages: Sequence[str]) -> None:
        """The VM program of every module and one entry point per list in `batches` (the
        rules of `packages`' policies); on any failure the interpreter is used, saying why."""
        self._vm, self._entries = None, {}
        if not batches:
            self.reason = "no policy to batch"
            return
        modules = vm_modules(self._modules, packages)
        if isinstance(modules, str):
            self._interpreter_only(modules)
            return
        entries = {rules: f"data.{_BATCH_PACKAGE}.b{n}.all" for n, rules in enumerate(batches)}
        sources = [(key, m.text) for key, m in modules.items()]
        sources.extend(
            (f"<{entry}>", _batch_module(entry.removeprefix("data.").removesuffix(".all"), rules))
            for rules, entry in entries.items()
        )
        data = json.dumps(self._data)
        try:
            program = regorus.Program.compile_from_modules(data, sources, list(entries.values()))
            vm = regorus.Rvm()
            vm.load_program(program)
            vm.set_data_json(data)
        except (RuntimeError, ValueError) as exc:
            self._interpreter_only(_compile_error(exc, modules))
            return
        self._vm, self._entries, self.reason = vm, entries, None

    def load(self, modules: Sequence[RegoModule], data: Mapping[str, Any]) -> None:
        super().load(modules, data)
        self._data = data
        self._vm, self._entries, self.reason = None, {}, "not compiled"

    def _interpreter_only(self, reason: str) -> None:
        self._vm, self._entries, self.reason = None, {}, reason
        log.info("policies are evaluated by regorus's interpreter, not its VM: %s", reason)

    def use_interpreter(self) -> None:
        """From now on every evaluation is the interpreter's (after a disagreement)."""
        self._sync()
        self._vm, self._entries, self.reason = None, {}, "the VM disagreed with the interpreter"

    @property
    def uses_vm(self) -> bool:
        return self._vm is not None

    def batches(self) -> tuple[RuleList, ...]:
        """The rule lists the VM evaluates (none once it does not)."""
        return tuple(self._entries)

    def clone(self) -> EmbeddedEngine:
        """The interpreter alone: an Rvm may only be used by the thread that made it."""
        self._sync()
        return super().clone()

    # -- input -------------------------------------------------------------------------------

    def set_input(
        self, input_doc: Mapping[str, Any], *, checked: bool = False, whole: bool = False
    ) -> None:
        """As the interpreter's; a document within MAX_DEPTH is kept as its JSON text for the
        VM (what the interpreter reads of anything but plain JSON data too) and given to the
        interpreter only if it is asked (a fallback, a check)."""
        self._text, self._vm_has_input, self._pending = None, False, None
        if self._vm is not None:
            if not whole:
                input_doc = self.readable(input_doc)
                whole = True  # made readable: the interpreter's path below need not again
            try:
                text = json.dumps(input_doc)
            except (TypeError, ValueError, RecursionError):
                text = None  # the interpreter's path says what is wrong with it
            if text is not None and within_depth(text):
                self._text, self._pending = text, input_doc
                return
        super().set_input(input_doc, checked=checked, whole=whole)

    def set_input_json(self, text: str) -> None:
        self._text, self._vm_has_input, self._pending = None, False, None
        super().set_input_json(text)
        self._text = text

    def _sync(self) -> None:
        """The interpreter given the input the VM was given alone so far."""
        pending, self._pending = self._pending, None
        if pending is not None:
            super().set_input(pending, whole=True)  # made readable when it was kept

    def _loaded(self) -> regorus.Engine:
        if self._pending is not None:
            self._sync()
        return super()._loaded()

    # -- evaluation --------------------------------------------------------------------------

    def evaluate_loaded_many(self, rules: Sequence[str]) -> list[Any]:
        entry = self._entries.get(tuple(rules)) if self._text is not None else None
        if entry is None:
            return super().evaluate_loaded_many(rules)
        values = self._run(entry, len(rules))
        if values is None:
            self.fallbacks += 1
            return super().evaluate_loaded_many(rules)
        seen = self._seen[entry]
        self._seen[entry] = seen + 1
        if seen % CHECK_EVERY == 0:
            expected = super().evaluate_loaded_many(rules)
            for rule, mine, theirs in zip(rules, values, expected, strict=True):
                if not _same(mine, theirs):
                    raise VmDisagreement(rule, mine, theirs)
        return values

    def _run(self, entry: str, count: int) -> list[Any] | None:
        """The entry point's values on the VM, or None where the interpreter must answer."""
        vm = self._vm
        assert vm is not None and self._text is not None
        try:
            if not self._vm_has_input:
                vm.set_input_json(self._text)
                self._vm_has_input = True
            text = vm.execute_entry_point(entry)
        except (RuntimeError, ValueError, OverflowError):
            return None  # an error or a limit of the VM: the interpreter says what it is
        if UNDEFINED_MARK in text:
            return None
        try:
            values = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(values, list) or len(values) != count:
            return None
        return values


def _compile_error(exc: BaseException, modules: Mapping[str, RegoModule]) -> str:
    """Why the VM program did not compile, at the policy's file and line when regorus says."""
    error: RegoError = describe_error(exc, modules)
    text = str(error)
    if "Compilation error:" in str(exc) and error.source is None:
        text = str(exc).split("Compilation error:", 1)[1].splitlines()[0].strip()
    return f"the VM cannot compile the policies: {text}"


def load_embedded(
    modules: Sequence[RegoModule],
    data: Mapping[str, Any],
    batches: Sequence[RuleList] = (),
    packages: Sequence[str] = (),
) -> EmbeddedEngine:
    """The embedded engine loaded with `modules` and `data`: on the VM for `batches` when they
    are given and compile, else the interpreter alone."""
    if not batches:
        engine = EmbeddedEngine()
        engine.load(modules, data)
        return engine
    vm_engine = VmEngine()
    vm_engine.load(modules, data)
    vm_engine.compile_batches(batches, packages)
    return vm_engine


__all__ = [
    "CHECK_EVERY",
    "UNDEFINED_MARK",
    "VmDisagreement",
    "VmEngine",
    "load_embedded",
    "vm_modules",
]
