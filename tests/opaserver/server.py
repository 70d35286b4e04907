"""An OPA server for tests: OPA's REST API on 127.0.0.1, evaluated with regorus.

It speaks OPA's wire format closely enough that the unmodified `opa-python-client` (and so
`OpaServerEngine`) works against it, so the `opa` engine is tested end to end instead of
against mocks of the client:

- policy API: `GET /v1/policies`, `GET|PUT|DELETE /v1/policies/{id}`; a PUT parses and
  compiles the module with every other one and answers 400 `invalid_parameter` with
  `errors[].location` (file = the policy id, row, col) as OPA does;
- data API: `GET|POST /v1/data/{path}` (POST with `{"input": ...}`; an undefined document is
  `{}` without `result`), `PUT|PATCH|DELETE /v1/data/{path}` (JSON Patch, 204);
- query API: `GET|POST /v1/query`; `GET /health`;
- bearer-token authentication (401 `unauthorized`, OPA's body), everything but /health;
- faults as a test double should have them: latency, a status for a path, a dropped
  connection; every request is recorded.

Rego syntax per module, like OPA: `import rego.v1` means v1; otherwise `rego_version="v1"`
(OPA 1.x) parses v1 only, `"v0"` (OPA 0.x, or 1.x with `--v0-compatible`) parses v0, and
`"auto"` (the default) tries v1 then v0 and reports the error of the parse that got further.

Evaluation is regorus's: a built-in error is always fatal, as in OPA with
`strict-builtin-errors=true` (which `OpaServerEngine` always sends); OPA's default would make
the expression undefined instead.

    with OpaTestServer(token="s3cret") as opa:
        opa.put_policy("example", "package example\\nimport rego.v1\\nallow if input.ok\\n")
        opa.inject(Fault(path="/v1/data/example", status=500))
        opa.requests  # [Request(method, path, query, body, authorization), ...]
"""

from __future__ import annotations

import copy
import gc
import json
import re
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import regorus

from tests.loopback import LoopbackHandler, LoopbackServer

RegoVersion = Literal["auto", "v1", "v0"]
_T = TypeVar("_T")

MSG_COMPILE_MODULE = "error(s) occurred while compiling module(s)"
MSG_PARSE_QUERY = "error(s) occurred while parsing query"
MSG_EVALUATION = "error(s) occurred while evaluating query"
MSG_UNAUTHORIZED = "request rejected by administrative policy"
MSG_INPUT_KEY_MISSING = "'input' key missing from the request"

_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<row>\d+):(?P<col>\d+)")
_V1_IMPORT = re.compile(r"^\s*import\s+rego\.v1\b", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([^\s#]+)", re.MULTILINE)
_RULE_HEAD = re.compile(r"^(?:default\s+)?([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\.)", re.MULTILINE)
_NOT_RULES = {"package", "import", "default", "else"}
# regorus compiles lazily, on the first evaluation: these messages are what OPA reports when a
# module is PUT (unsafe variables, unknown functions, recursion), anything else is run time.
_COMPILE_MARKERS: tuple[tuple[str, str], ...] = (
    ("is unsafe", "rego_unsafe_var_error"),
    ("could not find function", "rego_type_error"),
    ("recursion detected", "rego_recursion_error"),
)


class Request(NamedTuple):
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, the text of a policy, or None
    authorization: str | None


@dataclass
class Fault:
    """A misbehaviour for requests whose path matches `path` (a regex) and `method`.

    Effects, in order: `latency` seconds of delay, then `drop` (close the connection without
    answering) or `status` (that code with an OPA error body). `skip`: let that many matching
    requests through first; `times`: then apply it that many times, None for always.
    """

    path: str | None = None
    method: str | None = None
    status: int | None = None
    message: str | None = None
    latency: float = 0.0
    drop: bool = False
    skip: int = 0
    times: int | None = None
    applied: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)

    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times


class OpaError(Exception):
    """An API error: answered with OPA's body `{"code", "message", "errors"?}`."""

    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


class _NotFound(Exception):
    """A path no handler serves: answered like Go's mux, in plain text."""


@dataclass(frozen=True)
class _Module:
    text: str
    v0: bool


def _regorus_error(exc: BaseException, code: str) -> dict[str, Any]:
    """An OPA error object (code, message, location) from a regorus error text."""
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("error:")]
    message = lines[0].removeprefix("error:").strip() if lines else text.splitlines()[-1]
    error: dict[str, Any] = {"code": code, "message": message}
    match = _LOCATION.search(text)
    if match:
        error["location"] = {
            "file": match["file"],
            "row": int(match["row"]),
            "col": int(match["col"]),
        }
    return error


def _where(error: Mapping[str, Any]) -> tuple[int, int]:
    location = error.get("location") or {}
    return (int(location.get("row", 0)), int(location.get("col", 0)))


def _add(engine: regorus.Engine, policy_id: str, module: _Module) -> None:
    engine.set_rego_v0(module.v0)
    try:
        engine.add_policy(policy_id, module.text)
    finally:
        engine.set_rego_v0(False)


def _ref(parts: list[str]) -> str:
    """`data["a"][0]`: OPA reads a path segment that is an integer as an array index."""
    return "data" + "".join(f"[{p}]" if p.isdigit() else f"[{json.dumps(p)}]" for p in parts)


def _split(path: str) -> list[str]:
    return [unquote(p) for p in path.split("/") if p]


def _ast(text: str) -> dict[str, Any]:
    """The parts of OPA's module AST that clients read: the package path and rule names."""
    match = _PACKAGE.search(text)
    package = match.group(1) if match else ""
    path = [{"type": "var", "value": "data"}] + [
        {"type": "string", "value": p} for p in package.split(".") if p
    ]
    names: list[str] = []
    for name in _RULE_HEAD.findall(text):
        if name not in _NOT_RULES and name not in names:
            names.append(name)
    return {"package": {"path": path}, "rules": [{"head": {"name": n}} for n in names]}


class OpaTestServer(LoopbackServer):
    """The test OPA server. Thread-safe; policies, data and faults may change while it serves.

    Policies, data and every regorus engine belong to one worker thread (a regorus engine may
    only be used, and dropped, on the thread that made it): handlers and tests hand it jobs,
    which also serializes writes and evaluations as OPA's transactions would.
    """

    def __init__(self, *, token: str | None = None, rego_version: RegoVersion = "auto") -> None:
        self.token = token
        self.rego_version = rego_version
        self.requests: list[Request] = []
        self._policies: dict[str, _Module] = {}
        self._data: dict[str, Any] = {}
        self._faults: list[Fault] = []
        # worker-thread state
        self._engine: regorus.Engine | None = None  # compiled, never given an input
        self._worker: regorus.Engine | None = None  # its clone that evaluates inputs
        self._rego: ThreadPoolExecutor | None = None
        self._lock = threading.RLock()  # requests and faults
        super().__init__()

    # lifecycle

    def _call(self, job: Callable[..., _T], *args: Any) -> _T:
        """Runs `job` on the worker thread and returns (or raises) what it does."""
        with self._lock:
            if self._rego is None:
                self._rego = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opa-regorus")
            rego = self._rego

        def run() -> tuple[bool, Any]:
            try:
                return True, job(*args)
            except BaseException as exc:
                # the traceback's frames hold engines: they must die on this thread
                exc.__traceback__ = exc.__context__ = exc.__cause__ = None
                return False, exc

        ok, value = rego.submit(run).result()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def start(self) -> OpaTestServer:
        # Collect garbage now, on this thread: a regorus engine left in a reference cycle by
        # earlier code would otherwise be collected on whichever server thread triggers the
        # cyclic GC, and regorus refuses to be dropped on another thread than its own.
        gc.collect()
        return super().start()

    def handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def stop(self) -> None:
        super().stop()
        if self._rego is not None:
            self._call(self._drop_engines)
            self._rego.shutdown(wait=True)
            self._rego = None

    def _drop_engines(self) -> None:
        self._engine = None
        self._worker = None

    # state, for tests (the same code paths the API uses)

    def put_policy(self, policy_id: str, text: str) -> None:
        """Installs a module as `PUT /v1/policies/{id}` does; raises OpaError when invalid."""
        self._call(self._do_put_policy, policy_id, text)

    def delete_policy(self, policy_id: str) -> None:
        """Removes a module as `DELETE /v1/policies/{id}` does."""
        self._call(self._do_delete_policy, policy_id)

    def policy_ids(self) -> list[str]:
        return self._call(lambda: list(self._policies))

    def put_data(self, path: str, value: Any) -> None:
        """Creates or overwrites a document as `PUT /v1/data/{path}` does."""
        self._call(self._do_put_data, path, value)

    def data(self) -> dict[str, Any]:
        return self._call(lambda: copy.deepcopy(self._data))

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, method: str, path_prefix: str) -> list[Request]:
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # policies (worker thread)

    def _do_put_policy(self, policy_id: str, text: str) -> None:
        module = self._parse(policy_id, text)
        self._install({**self._policies, policy_id: module})

    def _do_delete_policy(self, policy_id: str) -> None:
        if policy_id not in self._policies:
            raise OpaError(
                404, "resource_not_found", f'storage_not_found_error: policy id "{policy_id}"'
            )
        rest = {k: v for k, v in self._policies.items() if k != policy_id}
        self._install(rest, code="invalid_operation")

    def _parse(self, policy_id: str, text: str) -> _Module:
        """The module in the syntax OPA would parse it with, or OpaError like OPA's 400."""
        if not _PACKAGE.search(text):
            raise OpaError(400, "invalid_parameter", "empty module")
        if _V1_IMPORT.search(text) or self.rego_version == "v1":
            candidates = [False]
        elif self.rego_version == "v0":
            candidates = [True]
        else:
            candidates = [False, True]
        errors: list[dict[str, Any]] = []
        for v0 in candidates:
            module = _Module(text, v0)
            try:
                _add(regorus.Engine(), policy_id, module)
            except RuntimeError as exc:
                errors.append(_regorus_error(exc, "rego_parse_error"))
                continue
            return module
        # The dialect that parsed further is the one the author meant.
        best = max(errors, key=_where)
        raise OpaError(400, "invalid_parameter", MSG_COMPILE_MODULE, [best])

    def _install(self, policies: dict[str, _Module], code: str = "invalid_parameter") -> None:
        engine = self._build(policies, code)
        self._policies = policies
        self._engine = engine
        self._worker = None

    def _build(self, policies: Mapping[str, _Module], code: str) -> regorus.Engine:
        engine = regorus.Engine()
        for policy_id, module in policies.items():
            try:
                _add(engine, policy_id, module)
            except RuntimeError as exc:
                error = _regorus_error(exc, "rego_parse_error")
                raise OpaError(400, code, MSG_COMPILE_MODULE, [error]) from None
        engine.add_data_json(json.dumps(self._data))
        # OPA compiles every module on PUT; regorus compiles on first evaluation, so evaluate
        # the whole tree once (no input) and keep only the errors OPA's compiler would report.
        try:
            engine.eval_query_as_json("data")
        except RuntimeError as exc:
            text = str(exc)
            for marker, error_code in _COMPILE_MARKERS:
                if marker in text:
                    error = _regorus_error(exc, error_code)
                    raise OpaError(400, code, MSG_COMPILE_MODULE, [error]) from None
        return engine

    def _compiled(self) -> regorus.Engine:
        if self._engine is None:
            # data changed: rebuild (policies were valid when they were installed)
            self._engine = self._build(self._policies, "internal_error")
        return self._engine

    # data (worker thread)

    def _do_put_data(self, path: str, value: Any) -> None:
        parts = _split(path)
        if not parts:
            if not isinstance(value, dict):
                raise OpaError(400, "invalid_parameter", "root must be an object")
            self._data = copy.deepcopy(value)
        else:
            parent = self._make_dirs(parts[:-1])
            parent[parts[-1]] = copy.deepcopy(value)
        self._drop_engines()

    def _make_dirs(self, parts: list[str]) -> dict[str, Any]:
        node: Any = self._data
        for part in parts:
            if not isinstance(node, dict):
                raise OpaError(404, "resource_conflict", "storage_write_conflict_error")
            node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise OpaError(404, "resource_conflict", "storage_write_conflict_error")
        return node

    def _patch(self, root: list[str], ops: Any) -> None:
        if not isinstance(ops, list):
            raise OpaError(400, "invalid_parameter", "patch body must be a JSON array")
        data = copy.deepcopy(self._data)
        for op in ops:
            kind = op.get("op") if isinstance(op, dict) else None
            if kind not in ("add", "remove", "replace"):
                raise OpaError(400, "invalid_parameter", f"bad patch operation: {kind}")
            parts = root + _split(str(op.get("path", "")))
            if not parts:
                if kind == "remove" or not isinstance(op.get("value"), dict):
                    raise OpaError(400, "invalid_parameter", "bad patch path: /")
                data = copy.deepcopy(op["value"])
                continue
            parent: Any = data
            for part in parts[:-1]:
                parent = _child(parent, part)
            last = parts[-1]
            if isinstance(parent, dict):
                if kind != "add" and last not in parent:
                    raise _missing(parts)
                if kind == "remove":
                    del parent[last]
                else:
                    parent[last] = copy.deepcopy(op.get("value"))
            elif isinstance(parent, list):
                if kind == "add" and last == "-":
                    parent.append(copy.deepcopy(op.get("value")))
                    continue
                if (
                    not last.isdigit()
                    or int(last) > len(parent)
                    or (kind != "add" and int(last) >= len(parent))
                ):
                    raise _missing(parts)
                index = int(last)
                if kind == "add":
                    parent.insert(index, copy.deepcopy(op.get("value")))
                elif kind == "remove":
                    del parent[index]
                else:
                    parent[index] = copy.deepcopy(op.get("value"))
            else:
                raise _missing(parts)
        self._data = data
        self._drop_engines()

    # evaluation

    def _query_value(self, query: str, input_doc: Any, has_input: bool) -> tuple[bool, Any]:
        """(defined, value) of a single-expression query."""
        results = self._eval(query, input_doc, has_input)
        if not results:
            return False, None
        return True, results[0]["expressions"][0]["value"]

    def _eval(self, query: str, input_doc: Any, has_input: bool) -> list[dict[str, Any]]:
        return self._call(self._do_eval, query, input_doc, has_input)

    def _do_eval(self, query: str, input_doc: Any, has_input: bool) -> list[dict[str, Any]]:
        try:
            if has_input:
                if self._worker is None:
                    self._worker = self._compiled().clone()
                engine = self._worker
                engine.set_input_json(json.dumps(input_doc))
            else:
                # regorus cannot unset an input: a fresh clone has none (undefined input)
                engine = self._compiled().clone()
            answer = json.loads(engine.eval_query_as_json(query))
        except RuntimeError as exc:
            text = str(exc)
            if "<query" in text:
                raise OpaError(
                    400,
                    "invalid_parameter",
                    MSG_PARSE_QUERY,
                    [_regorus_error(exc, "rego_parse_error")],
                ) from None
            code = "eval_conflict_error" if "conflict" in text else "eval_builtin_error"
            raise OpaError(
                500, "internal_error", MSG_EVALUATION, [_regorus_error(exc, code)]
            ) from None
        return list(answer.get("result") or [])

    # faults and auth

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _authorized(self, path: str, header: str | None) -> bool:
        return self.token is None or path == "/health" or header == f"Bearer {self.token}"

    def _find_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.exhausted():
                    continue
                if fault.method is not None and fault.method != request.method:
                    continue
                if fault.path is not None and not re.search(fault.path, request.path):
                    continue
                if fault.skipped < fault.skip:
                    fault.skipped += 1
                    continue
                fault.applied += 1
                return fault
        return None

    # routing

    def _serve(self, request: Request) -> tuple[int, Any]:
        """(status, JSON body or None for 204) for one request."""
        method, path = request.method, request.path
        if path == "/health":
            if method != "GET":
                raise OpaError(405, "invalid_parameter", "method not allowed")
            return 200, {}
        if path == "/v1/policies" or path == "/v1/policies/":
            if method != "GET":
                raise OpaError(405, "invalid_parameter", "method not allowed")
            listed = self._call(lambda: [self._policy_json(k) for k in self._policies])
            return 200, {"result": listed}
        if path.startswith("/v1/policies/"):
            return self._serve_policy(method, unquote(path.removeprefix("/v1/policies/")), request)
        if path == "/v1/data" or path.startswith("/v1/data/"):
            return self._serve_data(method, _split(path.removeprefix("/v1/data")), request)
        if path == "/v1/query":
            return self._serve_query(method, request)
        raise _NotFound(path)

    def _policy_json(self, policy_id: str) -> dict[str, Any]:
        module = self._policies[policy_id]
        return {"id": policy_id, "raw": module.text, "ast": _ast(module.text)}

    def _serve_policy(self, method: str, policy_id: str, request: Request) -> tuple[int, Any]:
        if method == "GET":

            def get() -> dict[str, Any]:
                if policy_id not in self._policies:
                    raise OpaError(
                        404,
                        "resource_not_found",
                        f'storage_not_found_error: policy id "{policy_id}"',
                    )
                return self._policy_json(policy_id)

            return 200, {"result": self._call(get)}
        if method == "PUT":
            self.put_policy(policy_id, str(request.body or ""))
            return 200, {}
        if method == "DELETE":
            self.delete_policy(policy_id)
            return 200, {}
        raise OpaError(405, "invalid_parameter", "method not allowed")

    def _serve_data(self, method: str, parts: list[str], request: Request) -> tuple[int, Any]:
        if method in ("GET", "POST"):
            if method == "POST":
                body = request.body if request.body is not None else {}
                if not isinstance(body, dict):
                    raise OpaError(400, "invalid_parameter", "body must be a JSON object")
                has_input = "input" in body
                input_doc = body.get("input")
            else:
                has_input = "input" in request.query
                input_doc = json.loads(request.query["input"]) if has_input else None
            defined, value = self._query_value(_ref(parts), input_doc, has_input)
            out: dict[str, Any] = {"result": value} if defined else {}
            if method == "POST" and not has_input:
                out["warning"] = {"code": "api_usage_warning", "message": MSG_INPUT_KEY_MISSING}
            return 200, out
        if method == "PUT":
            self.put_data("/".join(parts), request.body)
            return 204, None
        if method == "PATCH":
            self._call(self._patch, parts, request.body)
            return 204, None
        if method == "DELETE":
            if not parts:
                raise OpaError(400, "invalid_parameter", "bad patch path: /")
            self._call(self._patch, parts[:-1], [{"op": "remove", "path": parts[-1]}])
            return 204, None
        raise OpaError(405, "invalid_parameter", "method not allowed")

    def _serve_query(self, method: str, request: Request) -> tuple[int, Any]:
        if method == "GET":
            if "q" not in request.query:
                raise OpaError(400, "invalid_parameter", "missing parameter 'q'")
            query, input_doc, has_input = request.query["q"], None, False
        elif method == "POST":
            body = request.body if isinstance(request.body, dict) else {}
            query = str(body.get("query", ""))
            has_input = "input" in body
            input_doc = body.get("input")
        else:
            raise OpaError(405, "invalid_parameter", "method not allowed")
        results = self._eval(query, input_doc, has_input)
        bindings = [
            {k: v for k, v in (row.get("bindings") or {}).items() if not k.startswith("_")}
            for row in results
        ]
        return 200, ({"result": bindings} if bindings else {})


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise OpaError(404, "resource_not_found", f"storage_not_found_error: {part}: document missing")


def _missing(parts: list[str]) -> OpaError:
    return OpaError(
        404, "resource_not_found", f"storage_not_found_error: /{'/'.join(parts)}: document missing"
    )


class _Handler(LoopbackHandler):
    server_version = "opa-test"

    @property
    def opa(self) -> OpaTestServer:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body: Any = None
        if raw:
            text = raw.decode("utf-8", errors="replace")
            if path.startswith("/v1/policies/"):
                body = text
            else:
                try:
                    body = json.loads(text)
                except ValueError:
                    self._send_json(
                        400, {"code": "invalid_parameter", "message": "body is not valid JSON"}
                    )
                    return
        opa = self.opa
        request = Request(self.command, path, query, body, self.headers.get("Authorization"))
        opa._record(request)

        if not opa._authorized(path, request.authorization):
            self._send_json(401, {"code": "unauthorized", "message": MSG_UNAUTHORIZED})
            return

        fault = opa._find_fault(request)
        if fault is not None and fault.latency and opa._stopping.wait(fault.latency):
            self.close_connection = True  # the server is stopping: abandon the request
            return
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.status is not None:
            code = "internal_error" if fault.status >= 500 else "invalid_parameter"
            if fault.status in (401, 403):
                code = "unauthorized"
            self._send_json(
                fault.status, {"code": code, "message": fault.message or "injected fault"}
            )
            return

        try:
            status, payload = opa._serve(request)
        except _NotFound:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        except OpaError as exc:
            self._send_json(exc.status, exc.body())
            return
        if payload is None:
            self._send(status, b"", None)
            return
        self._send_json(status, payload)

    def _send_json(self, code: int, body: Mapping[str, Any]) -> None:
        self._send(code, json.dumps(body).encode() + b"\n", "application/json")

    def _send(self, code: int, raw: bytes, content_type: str | None) -> None:
        self.send_response(code)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if raw:
            self.wfile.write(raw)


__all__ = ["Fault", "OpaError", "OpaTestServer", "Request"]
