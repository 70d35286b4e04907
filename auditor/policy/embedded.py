"""The embedded engine: regorus, the Rust Rego interpreter, in process.

Modules are parsed and compiled once in `load`; each input is then set once and every rule
evaluated against it, which runs at ~100,000 rule evaluations a second on one core
(bench/policy). regorus reports errors as text (`--> file:line:col` then `error: ...`); this
module turns them into PolicyLoadError and PolicyEvalError naming the policy's own file and
line, also for a module that starts part-way through a file (`RegoModule.line_offset`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regorus

from auditor.policy.datarefs import modules_input_keys
from auditor.policy.engine import (
    MAX_DEPTH,
    PolicyEvalError,
    PolicyLoadError,
    RegoModule,
    depth_error,
    depth_over_limit,
    plain_depth,
)

# regorus returns this JSON string for an undefined rule; a rule whose value really is that
# string is told apart by asking again through a query (which returns no result when undefined).
_UNDEFINED = '"<undefined>"'
_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_NOT_A_RULE = "not a valid rule path"
_BATCH_PACKAGE = "auditor_engine_batch"


@dataclass(frozen=True, slots=True)
class RegoError:
    """A regorus error, located in the policy's own file."""

    message: str  # the `error:` text, without the source excerpt
    source: str | None
    line: int | None
    column: int | None

    def __str__(self) -> str:
        if self.source and self.line is not None:
            return f"{self.source}:{self.line}: {self.message}"
        return self.message


def _strip_backtrace(text: str) -> str:
    # With RUST_BACKTRACE set regorus appends a native stack trace nobody can act on.
    return text.split("Stack backtrace:", 1)[0].strip()


def input_json(input_doc: Mapping[str, Any]) -> str:
    """The input document as the JSON text regorus reads."""
    try:
        return json.dumps(input_doc)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PolicyEvalError(f"input is not JSON: {exc}") from None


def of_modules(rules: Sequence[str]) -> bool:
    """Whether these are all rules of loaded modules (`data.` paths), which read of the input
    only what the modules do (`EmbeddedEngine.readable`)."""
    return all(rule.startswith("data.") for rule in rules)


def _first_line(exc: BaseException) -> str:
    text = _strip_backtrace(str(exc))
    return text.splitlines()[0] if text else type(exc).__name__


def describe_error(exc: BaseException, modules: Mapping[str, RegoModule]) -> RegoError:
    """The message, file and line of a regorus error; `modules` maps the names the modules were
    added under to the modules (for their real source and line offset)."""
    text = _strip_backtrace(str(exc))
    match = _LOCATION.search(text)
    message_lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("error:")]
    if message_lines:
        message = message_lines[0].removeprefix("error:").strip()
    else:
        message = text.splitlines()[-1].strip() if text else type(exc).__name__
    if "recursion detected" in text:
        message = "recursion detected: a rule depends on itself"
    if match is None:
        return RegoError(message=message, source=None, line=None, column=None)
    key = match["file"]
    module = modules.get(key)
    line = int(match["line"])
    if module is not None:
        return RegoError(
            message=message,
            source=module.source,
            line=line + module.line_offset,
            column=int(match["col"]),
        )
    return RegoError(message=message, source=key, line=line, column=int(match["col"]))


def load_error(exc: BaseException, modules: Mapping[str, RegoModule]) -> PolicyLoadError:
    error = describe_error(exc, modules)
    where = f" (column {error.column})" if error.column else ""
    return PolicyLoadError(f"Rego: {error.message}{where}", file=error.source, line=error.line)


def module_keys(modules: Sequence[RegoModule]) -> dict[str, RegoModule]:
    """A unique name for each module as regorus sees it: its source, made unique when several
    modules share one file (a ConstraintTemplate's rego and libs)."""
    keys: dict[str, RegoModule] = {}
    for module in modules:
        key = module.source
        n = 1
        while key in keys:
            n += 1
            key = f"{module.source}#{n}"
        keys[key] = module
    return keys


def add_module(engine: regorus.Engine, key: str, module: RegoModule) -> None:
    """Parses one module in its own syntax; the engine is left in v1 mode."""
    engine.set_rego_v0(module.v0)
    try:
        engine.add_policy(key, module.text)
    finally:
        engine.set_rego_v0(False)


def _fill(
    engine: regorus.Engine, keys: Mapping[str, RegoModule], data: Mapping[str, Any]
) -> PolicyLoadError | None:
    """The modules and data added to `engine` and compiled, or why they cannot be."""
    for key, module in keys.items():
        try:
            add_module(engine, key, module)
        except RuntimeError as exc:
            return load_error(exc, keys)
    try:
        engine.add_data_json(json.dumps(data))
    except (RuntimeError, RecursionError) as exc:
        # the loaders keep data within MAX_DEPTH; this is the engine's own refusal
        return PolicyLoadError(f"policy data cannot be loaded: {_first_line(exc)}")
    # regorus compiles (unsafe variables, unknown references, recursion) on the first
    # evaluation: do it now, so a broken policy is a load error, not an error per resource.
    try:
        engine.eval_query("true")
    except RuntimeError as exc:
        return load_error(exc, keys)
    return None


class EmbeddedEngine:
    """PolicyEngine on regorus. Not thread-safe: give each thread its own `clone()`."""

    name = "embedded"
    # Self-contained (modules and data in memory): worker processes can load the same and
    # evaluate with a time budget (worker.py).
    isolatable = True

    def __init__(self) -> None:
        self._engine: regorus.Engine | None = None
        self._modules: dict[str, RegoModule] = {}
        self._batches: dict[tuple[str, ...], tuple[str, str]] = {}
        # the input's keys some module may read (datarefs.input_keys); None: any of them
        self._read: frozenset[str] | None = None
        # regorus engines may only be used from the thread that made them (pyo3 panics)
        self._thread: int | None = None

    def load(self, modules: Sequence[RegoModule], data: Mapping[str, Any]) -> None:
        engine = regorus.Engine()
        keys = module_keys(modules)
        error = _fill(engine, keys, data)
        if error is not None:
            # Raised with no regorus engine among this frame's locals: whoever keeps the error
            # keeps its frames, and a regorus engine freed with them by the garbage collector,
            # in whichever thread it runs, is never freed ("unsendable").
            del engine
            raise error
        # print() in a policy goes to the gathered prints, not into our stderr.
        engine.set_gather_prints(True)
        self._engine = engine
        self._modules = keys
        self._batches = {}
        self._thread = threading.get_ident()
        self._read = modules_input_keys(modules)

    def _loaded(self) -> regorus.Engine:
        if self._engine is None:
            raise RuntimeError("EmbeddedEngine.load() was not called")
        return self._engine

    def clone(self) -> EmbeddedEngine:
        """An independent engine over the same compiled policies and data (no re-parsing)."""
        other = EmbeddedEngine()
        other._engine = self._loaded().clone()
        other._modules = dict(self._modules)
        other._batches = dict(self._batches)
        other._read = self._read
        other._thread = threading.get_ident()
        return other

    def usable_here(self) -> bool:
        """Loaded, and by this thread: the only thread that may use it (and the one a process
        forked from this thread inherits it in)."""
        return self._engine is not None and self._thread == threading.get_ident()

    def readable(self, input_doc: Mapping[str, Any]) -> Mapping[str, Any]:
        """The input without the top-level keys no loaded module can read: what a policy sees
        of it is the same, and the rest is neither converted nor checked."""
        read = self._read
        if read is None or type(input_doc) is not dict:
            return input_doc
        return {key: value for key, value in input_doc.items() if key in read}

    def set_input(
        self, input_doc: Mapping[str, Any], *, checked: bool = False, whole: bool = False
    ) -> None:
        """The input, from Python values when it is plain JSON data within MAX_DEPTH: the binding
        converts them to exactly what it reads from their JSON text, without encoding and
        parsing that text (most of the cost of setting a 3-6 KB audit input). Anything else
        goes through its JSON text, as it always did (and fails as it did). `checked`: an input
        nested deeper than MAX_DEPTH is refused first with the PolicyEvalError every evaluation
        of it records (a worker process, which checks what it is sent); one walk of the input
        decides both. `whole`: for a query of its own (not a rule of the loaded modules), which
        may read any of the input, not only what the modules read."""
        if not whole:
            input_doc = self.readable(input_doc)
        depth = plain_depth(input_doc, MAX_DEPTH)
        if depth is not None and depth <= MAX_DEPTH:
            self._loaded().set_input(input_doc)
            return
        if checked:
            over = depth_over_limit(input_doc)
            if over is not None:
                raise PolicyEvalError(f"input {depth_error(over)}: not evaluated")
        self.set_input_json(input_json(input_doc))

    def set_input_json(self, text: str) -> None:
        """The input as JSON text (what a worker process receives)."""
        try:
            self._loaded().set_input_json(text)
        except RuntimeError as exc:  # serde_json's depth limit, past what MAX_DEPTH lets in
            raise PolicyEvalError(f"the engine cannot read the input: {_first_line(exc)}") from None

    def _eval(self, rule: str) -> Any:
        engine = self._loaded()
        try:
            text = engine.eval_rule_as_json(rule)
        except RuntimeError as exc:
            message = str(exc)
            if _NOT_A_RULE in message:
                # A package, a path into a rule, or a rule no module defines: a query answers.
                return self._query(rule)
            raise PolicyEvalError(str(describe_error(exc, self._modules))) from None
        if text == _UNDEFINED:
            return self._query(rule)
        try:
            return json.loads(text)
        except RecursionError:
            raise PolicyEvalError(f"the value of {rule} nests too deeply to read") from None

    def _query(self, rule: str) -> Any:
        try:
            answer = json.loads(self._loaded().eval_query_as_json(rule))
        except RuntimeError as exc:
            raise PolicyEvalError(str(describe_error(exc, self._modules))) from None
        results = answer.get("result") or []
        if not results:
            return None
        return results[0]["expressions"][0]["value"]

    def evaluate(self, rule: str, input_doc: Mapping[str, Any]) -> Any:
        self.set_input(input_doc, whole=not of_modules([rule]))
        return self._eval(rule)

    def evaluate_many(self, rules: Sequence[str], input_doc: Mapping[str, Any]) -> list[Any]:
        self.set_input(input_doc, whole=not of_modules(rules))
        return self.evaluate_loaded_many(rules)

    def evaluate_loaded_many(self, rules: Sequence[str]) -> list[Any]:
        """`evaluate_many` against the input set last."""
        if len(rules) > 1:
            for batch in self._batch_rules(tuple(rules)):
                try:
                    values = self._eval(batch)
                except PolicyEvalError:
                    break  # some rule failed: evaluate them one by one to say which
                if isinstance(values, list) and len(values) == len(rules):
                    return values
        out: list[Any] = []
        for rule in rules:
            try:
                out.append(self._eval(rule))
            except PolicyEvalError as exc:
                out.append(exc.kept())
        return out

    def _batch_rules(self, rules: tuple[str, ...]) -> tuple[str, str]:
        """Two generated rules whose value is the array of `rules`' values, added once per
        distinct list of rules: `all`, the plain array, undefined when one of them is (a
        complete rule whose bodies all fail); then `each`, with null where one is undefined,
        which costs a generated rule per rule (about a fifth more engine time on the shipped
        library), so it is asked only when `all` is undefined.

        One evaluation instead of one per rule: regorus caches rule values within an
        evaluation, so helpers shared by many policies (a `lib` package) are computed once per
        input, not once per policy (3-4x faster on the shipped library).
        """
        paths = self._batches.get(rules)
        if paths is not None:
            return paths
        package = f"{_BATCH_PACKAGE}.b{len(self._batches) + 1}"
        lines = [f"package {package}", "", "import rego.v1", ""]
        # one rule a line: regorus refuses a line over 1,024 columns
        lines.extend(["all := [", *(f"\t{rule}," for rule in rules), "]"])
        for i, rule in enumerate(rules):
            lines.append(f"r{i} := x if {{ x := {rule} }} else := null")
        lines.extend(["each := [", *(f"\tr{i}," for i in range(len(rules))), "]"])
        key = f"<{package}>"
        module = RegoModule(source=key, package=package, text="\n".join(lines) + "\n")
        try:
            add_module(self._loaded(), key, module)
        except RuntimeError as exc:  # a rule path that is not a valid reference
            raise PolicyEvalError(str(describe_error(exc, self._modules))) from None
        self._modules[key] = module
        paths = (f"data.{package}.all", f"data.{package}.each")
        self._batches[rules] = paths
        return paths

    def evaluate_loaded_input(self, rule: str) -> Any:
        """`rule` against the input set last (for `policy test`, which has none of its own)."""
        return self._eval(rule)

    def take_prints(self) -> list[str]:
        """Output of print() calls since the last call."""
        return list(self._loaded().take_prints())


__all__ = ["EmbeddedEngine", "RegoError", "describe_error", "load_error", "module_keys"]
