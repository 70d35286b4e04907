"""Embedded evaluation in a child process: a time budget per call, and crashes contained.

regorus runs each evaluation in native code that holds the GIL and offers no execution limit
in its Python binding (gordon-to-regorus 0.13: no execution timer, no instruction limit), so
neither a timer nor Ctrl-C can stop a rule that never finishes in the process that runs it.
Here the loaded engine is forked into a worker process that evaluates one call at a time; the
parent waits for each answer in Python, with a deadline:

- a call that overruns its budget: the worker is killed (PolicyTimeout for that call) and the
  next call starts a fresh one, forked again from the loaded engine (copy-on-write, no
  re-parsing);
- a worker that dies (a native crash): PolicyAborted for that call, likewise;
- a call that allocates more than the worker's memory allowance (`memory`, over what it
  inherited): the engine cannot allocate and the worker dies (PolicyAborted, saying so), or
  Python's MemoryError, an error for that call; never the whole machine's memory;
- calls sent ahead (`prefetch`) are answered in groups, so an answer may be held back behind
  a later call that overruns or crashes: the worker shows which call it is on, and a call
  it was past is asked again on its own, so the blame falls on the call that earned it;
- Ctrl-C or SIGTERM in the parent: the wait is Python code, so the exception arrives at once
  and `stop()` kills the worker; the worker ignores SIGINT itself, so the parent alone decides
  when it ends;
- the parent killed outright (SIGKILL): on Linux the worker asked the kernel to kill it too
  (PR_SET_PDEATHSIG); elsewhere it exits when it next reads from its closed pipe.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from auditor.defaults import DEFAULT_POLICY_MEMORY_BYTES
from auditor.policy.engine import (
    PolicyAborted,
    PolicyEvalError,
    PolicyTimeout,
    RegoModule,
    VmDisagreement,
    depth_error,
    depth_over_limit,
)
from auditor.rlimits import lowered

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Held while a worker is forked: a worker forked by another thread at the same time would
# inherit the new pipe's child end and keep it open after that worker died.
_FORKING = threading.Lock()
# The parent's ends of every worker's pipe. A forked worker closes its copies: while it holds
# one, that pipe never reads as closed (its own: it would not notice the parent's death).
_PARENT_ENDS: weakref.WeakSet[Connection] = weakref.WeakSet()

# What `vm.load_embedded` takes: modules, data, the VM's batches and their packages (none: the
# interpreter alone)
Spec = (
    tuple[Sequence[RegoModule], Mapping[str, Any]]
    | tuple[Sequence[RegoModule], Mapping[str, Any], Sequence[tuple[str, ...]], Sequence[str]]
)
Job = TypeVar("Job")
Result = TypeVar("Result")


class WorkerStopped(Exception):
    """The worker was stopped from outside (the run is being interrupted): not an evaluation
    result, so it ends the evaluation loop that was using the worker instead of being
    recorded."""


def _die_with_parent(parent: int) -> None:
    """In the worker: be killed when the process that forked it dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


def _allow_memory(allowance: int) -> None:
    """In the worker: no more than `allowance` bytes of memory beyond what it has now (what it
    inherited is shared with the parent, copied only where written). RLIMIT_DATA counts the
    heap and every private anonymous mapping (Linux 4.7 and later), which is where both
    Python's and regorus's allocations go; where the size in use cannot be read, no limit."""
    in_use = _data_bytes()
    if in_use is None:
        return
    # past what the system can count (a limit of exabytes): no limit, as asked
    with contextlib.suppress(OSError, ValueError, OverflowError):
        resource.setrlimit(resource.RLIMIT_DATA, lowered(resource.RLIMIT_DATA, in_use + allowance))


def _data_bytes() -> int | None:
    """The process's data size as RLIMIT_DATA counts it (VmData), None where /proc has none."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _serve(
    conn: Connection,
    spec: Spec,
    inherited: Any,
    parent: int,
    shared: Sequence[Any],
    progress: Any,
    memory: int | None,
) -> None:
    """The worker: the engine it inherited, else one it loads from `spec`; says it is ready,
    then answers one request at a time until EOF: `(rules, "json", input JSON)`, or
    `(rules, "at", i)` for `shared[i]`, an input it has in its own memory (forked after the
    inputs were built), which it checks and hands to the engine itself; or
    `((), "many", ([(rules, i), ...], seconds))`, requests sent ahead, answered in groups
    (`_answer_in_groups`), while `progress` shows which of them it is on."""
    from auditor.policy.vm import load_embedded

    _die_with_parent(parent)
    if memory is not None:
        _allow_memory(memory)
    for end in list(_PARENT_ENDS):
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The objects inherited from the parent (a whole cluster's snapshot) stay shared: a
    # collection here would write to every one of them and copy their pages.
    gc.freeze()
    engine = inherited
    if engine is None:
        engine = load_embedded(*spec)
    conn.send(("ready", None))
    while True:
        try:
            rules, form, payload = conn.recv()
        except (EOFError, OSError):
            return
        if form == "many":
            _answer_in_groups(conn, engine, shared, *payload, progress=progress)
        else:
            conn.send(_answer(engine, shared, rules, form, payload))


def _answer_in_groups(
    conn: Connection,
    engine: Any,
    shared: Sequence[Any],
    requests: Sequence[tuple[tuple[str, ...], int]],
    within: float,
    *,
    progress: Any,
) -> None:
    """The answers to requests sent ahead, in order, a message of them at a time: when they
    are all answered, and as soon as the first answer not sent yet is `within` seconds old.
    A message per answer woke the parent's waiting thread for each: a third of the policy
    stage's time at 10,000 resources (the parent's threads and the workers taking turns on
    the cores). An answer may so wait behind a later evaluation that never ends: `progress`
    (shared memory, no system call) holds the number of the request being answered, 1 for
    the first, so the parent can tell that case from the evaluation it waits for being the
    one that overran (`WorkerEngine.evaluate_many`)."""
    group: list[tuple[str, Any]] = []
    oldest = 0.0
    for number, (rules, position) in enumerate(requests, 1):
        progress.value = number
        group.append(_answer(engine, shared, rules, "at", position))
        if len(group) == 1:
            oldest = time.monotonic()
        elif time.monotonic() - oldest >= within:
            conn.send(("many", group))
            group = []
    progress.value = 0
    if group:
        conn.send(("many", group))


def _answer(
    engine: Any, shared: Sequence[Any], rules: tuple[str, ...], form: str, payload: Any
) -> tuple[str, Any]:
    """The worker's answer to one request."""
    from auditor.policy.embedded import of_modules

    try:
        if form == "at":
            engine.set_input(shared[payload], checked=True, whole=not of_modules(rules))
        else:
            engine.set_input_json(payload)
        return ("ok", engine.evaluate_loaded_many(rules))
    except PolicyEvalError as exc:
        return ("error", str(exc))
    except MemoryError:
        return ("error", f"the policy engine ran out of memory: {_OVER_ALLOWANCE}")
    except VmDisagreement as exc:
        return ("disagree", (exc.rule, exc.vm_value, _plain(exc.interpreter_value)))
    except Exception as exc:  # a bug: the parent reports it as one
        return ("bug", f"{type(exc).__name__}: {exc}")


def _plain(value: Any) -> Any:
    """A value, or an error's text, as the pipe carries it."""
    return str(value) if isinstance(value, BaseException) else value


def _checked_json(input_doc: Mapping[str, Any]) -> str:
    """The input as the JSON text the engine reads, once it is within MAX_DEPTH (else the
    PolicyEvalError every evaluation of it records)."""
    from auditor.policy.embedded import input_json

    depth = depth_over_limit(input_doc)
    if depth is not None:
        raise PolicyEvalError(f"input {depth_error(depth)}: not evaluated")
    return input_json(input_doc)


# How long a worker may hold an answer to an evaluation sent ahead, to send it with the next
# ones (`_answer_in_groups`): a few milliseconds, a chunk of inputs' worth (evaluate.py).
GROUP_SECONDS = 0.01


_OVER_ALLOWANCE = (
    "an evaluation may use policy.memory_bytes of memory (auditor.yaml) beyond its inputs"
)


def _signal_name(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-exitcode).name
    return f"exit code {exitcode}"


class WorkerEngine:
    """A PolicyEngine that evaluates through a worker process, `timeout` seconds per call
    (None: no budget, but still interruptible). Owned by one thread; `stop()` may be called
    from any thread."""

    name = "embedded"
    # evaluate_many checks each input's depth itself (the worker, for a shared input)
    checks_depth = True

    def __init__(
        self,
        spec: Spec,
        timeout: float | None,
        *,
        engine: Any = None,
        shared: Sequence[Mapping[str, Any]] = (),
        memory: int | None = DEFAULT_POLICY_MEMORY_BYTES,
    ) -> None:
        """`spec`: the modules and data of the loaded EmbeddedEngine `engine`. A worker forked
        from the thread that loaded `engine` evaluates with its copy (shared pages, no
        re-parsing); any other worker loads `spec` again (30 ms for the shipped library,
        220 ms with 10,000 objects as inventory): a regorus engine may only be used by the
        thread that made it, and a forked process has only the thread that forked it."""
        self._spec = spec
        self._engine = engine
        self.timeout = timeout
        # bytes a worker may allocate beyond what it inherits (None: no limit)
        self.memory = memory
        self._lock = threading.Lock()
        self._stopped = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = False  # the worker has said it loaded its engine
        # Inputs that exist before the worker is forked are in its memory too: only their
        # position is sent, and the worker encodes them (JSON and the depth check were a
        # third of the parent's time, on one core, while the workers waited).
        self._shared = shared
        self._positions = {id(doc): i for i, doc in enumerate(shared)}
        self._forked = False  # the running worker has `shared` in its memory
        # (rules, id(input), its number among the requests sent with it) sent ahead by
        # prefetch, answers not read yet, in order
        self._pending: deque[tuple[tuple[str, ...], int, int]] = deque()
        # the number of the request sent ahead the worker is answering (0: none)
        self._progress = multiprocessing.RawValue(ctypes.c_int64, 0)
        # answers read from the pipe in a group and not asked for yet, in order
        self._answers: deque[tuple[str, Any]] = deque()

    # -- the PolicyEngine interface ---------------------------------------------------------

    def load(self, modules: Sequence[RegoModule], data: Mapping[str, Any]) -> None:
        raise RuntimeError("a WorkerEngine's workers load the modules and data it was made with")

    def evaluate(self, rule: str, input_doc: Mapping[str, Any]) -> Any:
        (value,) = self.evaluate_many([rule], input_doc)
        if isinstance(value, PolicyEvalError):
            raise value
        return value

    def _shared_position(self, input_doc: Mapping[str, Any]) -> int | None:
        position = self._positions.get(id(input_doc))
        if self._forked and position is not None and self._shared[position] is input_doc:
            return position
        return None

    def prefetch(self, requests: Sequence[tuple[Sequence[str], Mapping[str, Any]]]) -> None:
        """Sends these evaluations ahead, in the order they will be asked for
        (`evaluate_many`), so the worker goes from one to the next without waiting for this
        process to read each answer and send the next: on a busy machine each such hand-over
        waits for a core. Only inputs the worker has in memory; the budget of each still
        runs from when its answer is waited for. The worker sends their answers in groups,
        each at most `GROUP_SECONDS` (or a tenth of the budget) after its first was ready."""
        conn = self._connection()
        items: list[tuple[tuple[str, ...], int]] = []
        for rules, input_doc in requests:
            position = self._shared_position(input_doc)
            if position is None:
                break
            items.append((tuple(rules), position))
        if not items:
            return
        # one message for them all: a message each costs the worker a wake-up and a read
        try:
            conn.send(((), "many", (items, self._group_seconds())))
        except (BrokenPipeError, ConnectionResetError):
            return  # the next evaluate_many finds the worker lost
        self._pending.extend(
            (rules, id(self._shared[position]), number)
            for number, (rules, position) in enumerate(items, 1)
        )

    def _group_seconds(self) -> float:
        """How long the worker may hold an answer to send it with the next ones: short
        next to the budget, which runs while the parent waits for it."""
        if self.timeout is None:
            return GROUP_SECONDS
        return min(GROUP_SECONDS, self.timeout / 10)

    def evaluate_many(self, rules: Sequence[str], input_doc: Mapping[str, Any]) -> list[Any]:
        conn = self._connection()
        key = (tuple(rules), id(input_doc))
        if self._pending and self._pending[0][:2] != key:
            # asked out of the order sent (a policy overran since): the answers ahead are
            # nobody's now; a fresh worker is cheaper than waiting for them
            self._discard()
            conn = self._connection()
        # sent ahead: its number among the requests sent with it (0: sent alone)
        number = self._pending.popleft()[2] if self._pending else 0
        if not number:
            self._send(conn, rules, input_doc)
        try:
            answer = self._next_answer(conn)
        except PolicyAborted:
            if not self._held_back(number):
                raise
            answer = None
        if answer is None:
            held_back = self._held_back(number)
            self._discard()
            if held_back:
                # Its answer was held back behind a later evaluation that overran or
                # crashed (`_answer_in_groups`): asked again on its own, it answers.
                return self.evaluate_many(rules, input_doc)
            raise PolicyTimeout(
                f"evaluation did not finish within {self.timeout:g} s, "
                "the time budget per evaluation: stopped"
            )
        status, payload = answer
        if status == "ok":
            return list(payload)
        if status == "error":
            raise PolicyEvalError(payload)
        if status == "disagree":
            raise VmDisagreement(*payload)
        raise RuntimeError(f"policy worker: {payload}")

    def _held_back(self, number: int) -> bool:
        """Whether the worker is past the request sent ahead with this number, its answer
        not sent yet (or was when it died)."""
        return number > 0 and self._progress.value != number

    def _send(self, conn: Connection, rules: Sequence[str], input_doc: Mapping[str, Any]) -> None:
        """One request, answered on its own."""
        position = self._shared_position(input_doc)
        request: tuple[tuple[str, ...], str, Any]
        if position is not None:
            request = (tuple(rules), "at", position)
        else:
            # JSON text, which the engine reads anyway: cheaper to send than the nested dicts
            request = (tuple(rules), "json", _checked_json(input_doc))
        try:
            conn.send(request)
        except (BrokenPipeError, ConnectionResetError):
            raise self._lost() from None

    def _next_answer(self, conn: Connection) -> tuple[str, Any] | None:
        """The next answer in the order asked, waiting for it up to the budget (None when it
        did not come in time); PolicyAborted or WorkerStopped when the worker is gone."""
        if self._answers:
            return self._answers.popleft()
        if not conn.poll(self.timeout):
            return None
        try:
            status, payload = conn.recv()
        except (EOFError, OSError):
            raise self._lost() from None
        if status != "many":
            return status, payload
        self._answers.extend(payload)
        return self._answers.popleft()

    def use_interpreter(self) -> None:
        """From now on the interpreter alone (after the VM disagreed with it): the next call
        forks a worker from the engine switched over."""
        use = getattr(self._engine, "use_interpreter", None)
        if use is not None:
            use()
        self._spec = (self._spec[0], self._spec[1])
        self._discard()

    # -- the process ---------------------------------------------------------------------------

    def _connection(self) -> Connection:
        """The pipe to a worker that has loaded its engine, started if need be."""
        conn, ready = self.start()
        if not ready:
            # loading is work the parent has already done once: no budget for it
            try:
                conn.recv()
            except (EOFError, OSError):
                raise self._lost() from None
            self._ready = True
        return conn

    def start(self) -> tuple[Connection, bool]:
        """Forks the worker now, from this thread, unless it runs (else the first call does
        it); its pipe, and whether it has said it is ready."""
        with self._lock:
            if self._stopped:
                raise WorkerStopped("the policy evaluation was stopped")
            if self._conn is None:
                self._start()
            conn, ready = self._conn, self._ready
        assert conn is not None
        return conn, ready

    def _start(self) -> None:
        # fork is cheaper (nothing pickled); spawn where fork does not exist
        inherited = None
        forked = "fork" in multiprocessing.get_all_start_methods()
        if forked:
            context: Any = multiprocessing.get_context("fork")
            if self._engine is not None and self._engine.usable_here():
                inherited = self._engine  # not pickled: the child has it in its memory
        else:
            context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._progress.value = 0
        with _FORKING:  # no other worker may inherit this pipe's child end
            _PARENT_ENDS.add(ours)
            process = context.Process(
                target=_serve,
                # forked, `shared` is in the child's memory as it is; spawned, it is not sent
                args=(
                    theirs,
                    self._spec,
                    inherited,
                    os.getpid(),
                    self._shared if forked else (),
                    self._progress,
                    self.memory,
                ),
                name="auditor-policy",
                daemon=True,
            )
            process.start()
            theirs.close()
        self._process, self._conn, self._ready = process, ours, False
        self._forked = forked

    def _discard(self) -> None:
        """Kills the worker (if any) and forgets it; the next call starts a new one."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
            self._pending.clear()
            self._answers.clear()
        if process is not None:
            with contextlib.suppress(OSError, ValueError):
                process.kill()
            process.join()
            process.close()
        if conn is not None:
            conn.close()

    def _lost(self) -> Exception:
        """The worker's pipe closed mid-call: stopped from outside, or it died."""
        process = self._process
        if process is not None:
            process.join()
        code = process.exitcode if process is not None else None
        self._discard()
        if self._stopped:
            return WorkerStopped("the policy evaluation was stopped")
        why = ""
        if code == -signal.SIGABRT and self.memory is not None:
            # what regorus does when an allocation fails, over the allowance or not
            why = f": most likely out of memory ({_OVER_ALLOWANCE})"
        return PolicyAborted(
            f"the policy engine's process died ({_signal_name(code)}) during this evaluation{why}"
        )

    def stop(self) -> None:
        """From any thread: no more calls; a call in progress ends with WorkerStopped."""
        with self._lock:
            self._stopped = True
            process = self._process
        if process is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                process.kill()

    def close(self) -> None:
        """From the owning thread, once its calls are over: stops and reaps the worker."""
        self.stop()
        self._discard()

    @property
    def pid(self) -> int | None:
        """The running worker's process id (None before the first call)."""
        return self._process.pid if self._process is not None else None


def run_in_workers(
    spec: Spec,
    timeout: float | None,
    jobs: Sequence[Job],
    run: Callable[[Job, WorkerEngine], Result],
    *,
    engine: Any = None,
    shared: Sequence[Mapping[str, Any]] = (),
    memory: int | None = DEFAULT_POLICY_MEMORY_BYTES,
) -> list[Result]:
    """`run(job, worker)` for every job, each with a worker process of its own, at the same
    time; results in job order. The parent's threads only wait on pipes: the evaluating
    happens in the workers. Every worker is stopped on the way out, also when the run is
    interrupted (KeyboardInterrupt, or SIGTERM turned into an exception)."""
    workers = [
        WorkerEngine(spec, timeout, engine=engine, shared=shared, memory=memory) for _ in jobs
    ]
    try:
        for worker in workers:
            # forked here, by the thread that loaded `engine`, each inherits it (no re-parsing:
            # 220 ms with 10,000 objects of inventory); the threads below only use them
            worker.start()
        if len(jobs) == 1:
            return [run(jobs[0], workers[0])]
        pool = ThreadPoolExecutor(len(jobs), thread_name_prefix="auditor-policy")
        try:
            futures = [pool.submit(run, job, w) for job, w in zip(jobs, workers, strict=True)]
            return [f.result() for f in futures]
        finally:
            for worker in workers:  # before waiting for the threads: they may be mid-call
                worker.stop()
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for worker in workers:
            worker.close()


__all__ = ["WorkerEngine", "WorkerStopped", "run_in_workers"]
