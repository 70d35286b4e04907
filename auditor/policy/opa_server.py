"""The `opa` engine: a running OPA server, through its REST API (`opa-python-client`).

Same contract and same results as the embedded engine (tests/policy/test_engine_parity.py):

- `load` PUTs every module under `/v1/policies/<prefix>/<source>` and every top-level data key
  under `/v1/data/<key>` (`upload=True`), or checks that the server already serves every
  module's package (`upload=False`: policies deployed as bundles, nothing is written);
- `evaluate` POSTs `{"input": ...}` to `/v1/data/<rule path>`: `result`, or None when the
  response has none (undefined);
- `evaluate_many` asks once for several rules: a small generated module whose rules are the
  requested ones (`r0 := data.<rule 0>` ...) is uploaded once per rule set and its package
  queried; one rule failing fails that query, so the rules are then asked one by one to tell
  which failed;
- every query sends `strict-builtin-errors=true`, so a built-in error is an error as it is in
  regorus, not OPA's default silent undefined.

Failures say who must act: a module OPA will not compile is a PolicyLoadError naming the
module's own file and line (exit 2); a rule failing at run time (a conflict, a built-in error)
is a PolicyEvalError for that policy only; a server that cannot answer (unreachable, timed
out, 5xx, 401/403, policies gone after a restart that re-uploading does not bring back) is a
PolicyServerError: the policy stage did not finish, so the run is incomplete (exit 3), never
a pass.

Rego syntax: a v1 module gets `import rego.v1` after its package line (unless it imports
`rego.v1` or `future.keywords` already), which is a no-op on OPA 1.x and makes v1 parse on
OPA 0.59+ and on 1.x with `--v0-compatible`; v0 modules (Gatekeeper templates) are sent as
they are, so OPA 1.x must run with `--v0-compatible` to serve them. Reported lines are
mapped back through that insertion and `RegoModule.line_offset`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from opa_client import OpaClient
from opa_client.errors import (
    DeleteDataError,
    DeletePolicyError,
    PatchDataError,
    PolicyNotFoundError,
    RegoParseError,
)

from auditor.bounded import read_bounded
from auditor.errors import ConfigError, SourceError
from auditor.exit_codes import ExitCode
from auditor.policy.embedded import module_keys
from auditor.policy.engine import PolicyEvalError, PolicyLoadError, RegoModule

log = logging.getLogger(__name__)

# Built-in errors fail the query, as they do in regorus (OPA's default makes them undefined).
_STRICT = {"strict-builtin-errors": "true"}
# Evaluation errors that come from the policy and the input, not from the server: OPA answers
# them with 500 `internal_error` and `errors[].code`; `eval_cancel_error` (the server's own
# timeout or shutdown) is not among them.
_POLICY_EVAL_CODES = frozenset(
    {
        "eval_conflict_error",
        "eval_type_error",
        "eval_builtin_error",
        "eval_with_merge_error",
        "eval_internal_error",
    }
)
_V1_COMPATIBLE_IMPORT = re.compile(r"^\s*import\s+(rego\.v1|future\.keywords)\b", re.MULTILINE)
_PACKAGE_LINE = re.compile(r"^\s*package\s")
_V0_REJECTED = ("`if` keyword is required", "`contains` keyword is required")
_REF_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\["((?:[^"\\]|\\.)*)"\]')
_REASON = re.compile(
    r"(?:\[Errno -?\d+\]|RemoteDisconnected\(|ConnectionResetError\()\s*'?([^'\")\]]+)"
)
# Rule sets with their own generated module; beyond this, rules are asked one by one rather
# than filling a shared server with modules.
_MAX_BATCHES = 128
MAX_TOKEN_BYTES = 64 * 1024  # a bearer token, never more


class PolicyServerError(SourceError):
    """The OPA server could not answer (unreachable, timed out, 5xx, 401/403): the policy
    stage did not finish, so the run is `incomplete` (exit 3), never a pass."""

    exit_code = ExitCode.INCOMPLETE


@dataclass(frozen=True, slots=True)
class _Upload:
    """One module as sent: its policy id, its text, and where `import rego.v1` went."""

    policy_id: str
    module: RegoModule
    text: str
    inserted_after: int | None  # 1-based line of the package clause the import follows

    def source_line(self, row: int) -> int:
        """The line in the module's own file of `row` in the uploaded text."""
        if self.inserted_after is not None and row > self.inserted_after:
            row -= 1
        return row + self.module.line_offset


def _prepare(policy_id: str, module: RegoModule) -> _Upload:
    if module.v0 or _V1_COMPATIBLE_IMPORT.search(module.text):
        return _Upload(policy_id, module, module.text, None)
    lines = module.text.split("\n")
    for index, line in enumerate(lines):
        if _PACKAGE_LINE.match(line):
            lines.insert(index + 1, "import rego.v1")
            return _Upload(policy_id, module, "\n".join(lines), index + 1)
    return _Upload(policy_id, module, module.text, None)


def rule_path(rule: str) -> list[str]:
    """`data.a.b["c-d"].deny` -> ["a", "b", "c-d", "deny"]; raises ValueError when not a ref."""
    text = rule.strip()
    text = text[4:] if text.startswith("data") and text[4:5] in ("", ".", "[") else text
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        match = _REF_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"{rule!r} is not a reference to a rule (data.<package>.<rule>)")
        parts.append(match[1] if match[1] is not None else match[2].replace('\\"', '"'))
        pos = match.end()
    return parts


def _url_path(parts: Sequence[str]) -> str:
    # opa-python-client turns "." into "/" in the path it is given: escape dots as well
    return "/".join(quote(p, safe="").replace(".", "%2E") for p in parts)


def _rego_ref(parts: Sequence[str]) -> str:
    return "data" + "".join(
        '["' + p.replace("\\", "\\\\").replace('"', '\\"') + '"]' for p in parts
    )


def _plain(value: Any) -> Any:
    """JSON-ready copy: frozen mappings and tuples (the typed model) become dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    return value


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def read_token(token_file: str) -> str:
    """The bearer token in `token_file`, whitespace stripped (a trailing newline is usual)."""
    content = read_bounded(
        token_file, max_bytes=MAX_TOKEN_BYTES, what="OPA bearer-token file", error=ConfigError
    )
    try:
        token = content.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError("the OPA bearer-token file is not UTF-8 text", file=token_file) from None
    if not token:
        raise ConfigError("the OPA bearer-token file is empty", file=token_file)
    return token


class OpaServerEngine:
    """PolicyEngine on a running OPA server. Thread-safe; `close()` removes what it uploaded."""

    name = "opa"

    def __init__(
        self,
        url: str,
        *,
        token_file: str | None = None,
        upload: bool = True,
        timeout: float = 10.0,
        policy_prefix: str = "auditor",
        retries: int = 2,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"OPA server URL {url!r} is not http(s)://host[:port][/path]")
        https = parts.scheme == "https"
        try:
            port = parts.port or (443 if https else 80)
        except ValueError:
            raise ConfigError(f"OPA server URL {url!r} has an invalid port") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        base_path = parts.path.strip("/")
        # userinfo and query never reach messages or logs
        self.url = f"{parts.scheme}://{host}:{port}" + (f"/{base_path}" if base_path else "")
        self.upload = upload
        self.policy_prefix = policy_prefix.strip("/") or "auditor"
        namespace = re.sub(r"[^A-Za-z0-9_]", "_", self.policy_prefix)
        self._batch_package = f"{namespace}_batch"
        self._client = OpaClient(
            host=host,
            port=port,
            # the client builds <scheme>://<host>:<port>/<version>: a path prefix (OPA behind
            # a proxy) goes in front of the API version
            version=f"{base_path}/v1" if base_path else "v1",
            ssl=https,
            token=read_token(token_file) if token_file else None,
            retries=retries,
            timeout=timeout,
        )
        self._lock = threading.RLock()
        self._modules: list[_Upload] = []
        self._by_id: dict[str, _Upload] = {}
        self._data: dict[str, Any] = {}
        self._uploaded: list[str] = []  # policy ids on the server, in upload order
        self._data_keys: list[str] = []
        self._batches: dict[tuple[str, ...], _Upload | None] = {}

    def __repr__(self) -> str:
        return f"OpaServerEngine({self.url!r}, upload={self.upload})"

    # lifecycle

    def __enter__(self) -> OpaServerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when the server answers GET /health with 200."""
        return bool(self._client.check_health(diagnostic_url=self.url + "/health"))

    def load(self, modules: Sequence[RegoModule], data: Mapping[str, Any]) -> None:
        with self._lock:
            self._unload()
            prepared = [
                _prepare(f"{self.policy_prefix}/{key.lstrip('/')}", module)
                for key, module in module_keys(modules).items()
            ]
            self._modules = prepared
            self._by_id = {up.policy_id: up for up in prepared}
            self._data = {str(k): _plain(v) for k, v in data.items()}
            if not self.upload:
                if self._data:
                    log.info(
                        "OPA server %s: upload disabled, data keys %s not sent: the server's "
                        "own data is used",
                        self.url,
                        ", ".join(sorted(self._data)),
                    )
                self._check_served(prepared)
                return
            try:
                self._put_all()
            except BaseException:
                self._unload()  # leave no half-loaded policy set on a shared server
                raise

    def close(self) -> None:
        """Deletes the policies, generated modules and data this engine uploaded (best effort)."""
        with self._lock:
            self._unload()
            self._client.close_connection()

    # evaluation

    def evaluate(self, rule: str, input_doc: Mapping[str, Any]) -> Any:
        path = self._path(rule)
        body = self._query(path, input_doc, rule)
        if "result" in body:
            return body["result"]
        if self._reloaded_after_loss():
            body = self._query(path, input_doc, rule)
        return body.get("result")

    def evaluate_many(self, rules: Sequence[str], input_doc: Mapping[str, Any]) -> list[Any]:
        rules = list(rules)
        if len(rules) < 2 or not self.upload:
            return [self._evaluate_or_error(rule, input_doc) for rule in rules]
        for attempt in range(2):
            batch = self._batch(rules)
            if batch is None:
                break
            try:
                body = self._query(self._batch_path(batch), input_doc, "(several rules)")
            except PolicyEvalError:
                break  # one of them failed: ask each, to tell which
            if "result" in body and isinstance(body["result"], dict):
                values = body["result"]
                return [values.get(f"r{i}") for i in range(len(rules))]
            if attempt == 0:
                # the server lost the generated module (a restart, another client): upload
                # again what is missing and ask once more
                with self._lock:
                    self._batches.pop(tuple(rules), None)
                self._reloaded_after_loss()
            else:
                raise PolicyServerError(
                    f"OPA server {self.url} answers no document for the generated module "
                    f"{batch.policy_id} it accepted",
                    hint="another client may be deleting this engine's policies: give each "
                    "auditor its own policy prefix",
                )
        return [self._evaluate_or_error(rule, input_doc) for rule in rules]

    def _evaluate_or_error(self, rule: str, input_doc: Mapping[str, Any]) -> Any:
        try:
            return self.evaluate(rule, input_doc)
        except PolicyEvalError as exc:
            return exc

    # requests

    def _path(self, rule: str) -> str:
        try:
            return _url_path(rule_path(rule))
        except ValueError as exc:
            raise PolicyEvalError(str(exc)) from None

    def _query(self, path: str, input_doc: Mapping[str, Any], rule: str) -> dict[str, Any]:
        try:
            body = self._client.query_rule(
                input_data=_plain(input_doc), package_path=path, query_params=_STRICT
            )
        except requests.HTTPError as exc:
            if exc.response is None:
                raise self._unreachable(f"evaluating {rule}", exc) from None
            raise self._eval_failure(exc.response, rule) from None
        except requests.RequestException as exc:
            raise self._unreachable(f"evaluating {rule}", exc) from None
        if not isinstance(body, dict):
            raise PolicyServerError(f"OPA server {self.url} answered {rule} with a non-object")
        return body

    def _eval_failure(self, response: requests.Response, rule: str) -> Exception:
        status = response.status_code
        body = _json_body(response)
        code = str(body.get("code", "")) or f"HTTP {status}"
        message = str(body.get("message", "")) or response.reason or ""
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if status in (401, 403):
            return self._refused(status, code, message)
        if status == 500 and any(e.get("code") in _POLICY_EVAL_CODES for e in errors):
            return PolicyEvalError(f"{rule}: " + "; ".join(self._describe(e) for e in errors))
        if status == 400:
            details = "; ".join(self._describe(e) for e in errors) or f"{code}: {message}"
            return PolicyEvalError(f"{rule}: {details}")
        return PolicyServerError(
            f"OPA server {self.url} failed evaluating {rule}: {status} {code}: {message}"
        )

    def _describe(self, error: Mapping[str, Any]) -> str:
        """`code: message (file:line)` with the module's own file and line."""
        text = f"{error.get('code', 'error')}: {error.get('message', '')}"
        location = error.get("location")
        if isinstance(location, dict) and location.get("file"):
            upload = self._by_id.get(str(location["file"]))
            row = int(location.get("row") or 0)
            if upload is not None:
                text += f" ({upload.module.source}:{upload.source_line(row)})"
            else:
                text += f" ({location['file']}:{row})"
        return text

    def _refused(self, status: int, code: str, message: str) -> PolicyServerError:
        return PolicyServerError(
            f"OPA server {self.url} refused the request: {status} {code}: {message}",
            hint="check the bearer token file (token_file) and the server's authorization policy",
        )

    def _unreachable(self, action: str, exc: Exception) -> PolicyServerError:
        if isinstance(exc, requests.JSONDecodeError):
            what = "answered something that is not JSON"
        elif isinstance(exc, requests.Timeout):
            what = f"did not answer within {self._client.timeout}s"
        else:
            # the socket-level reason (refused, reset, closed without a response); requests
            # messages name the URL path but never a header, so no token can leak here
            match = _REASON.search(str(exc))
            what = "is unreachable: " + (match.group(1).strip() if match else type(exc).__name__)
        return PolicyServerError(f"OPA server {self.url} {what} ({action})")

    def _server_refusal(self, action: str, code: str, message: str) -> PolicyServerError:
        """A client-library error whose code says the server, not the policy, is at fault."""
        if code == "unauthorized":
            return self._refused(401, code, message)
        return PolicyServerError(f"OPA server {self.url} failed ({action}): {code}: {message}")

    # upload

    def _put_all(self) -> None:
        for key, value in self._data.items():
            self._put_data(key, value)
        self._put_modules(self._modules)

    def _put_data(self, key: str, value: Any) -> None:
        try:
            if isinstance(value, dict):
                self._client.update_or_create_data(value, _url_path([key]))
            else:
                pointer = "/" + key.replace("~", "~0").replace("/", "~1")
                self._client.patch_data("", [{"op": "add", "path": pointer, "value": value}])
        except (RegoParseError, PatchDataError) as exc:
            code, message = str(exc.expression), str(exc.message)
            if code in ("invalid_parameter", "resource_conflict"):
                raise PolicyLoadError(
                    f"OPA server {self.url} refused data.{key}: {message}",
                    hint="data keys must not overlap the packages of the policies",
                ) from None
            raise self._server_refusal(f"writing data.{key}", code, message) from None
        except requests.RequestException as exc:
            raise self._unreachable(f"writing data.{key}", exc) from None
        if key not in self._data_keys:
            self._data_keys.append(key)

    def _put_modules(self, uploads: Sequence[_Upload]) -> None:
        # OPA compiles each PUT against the modules it already has, so a module calling a
        # function of one not sent yet is refused: send the rest, then retry, while that helps.
        pending = list(uploads)
        while pending:
            failed: list[tuple[_Upload, RegoParseError]] = []
            for upload in pending:
                try:
                    self._put_module(upload)
                except RegoParseError as exc:
                    failed.append((upload, exc))
            if len(failed) == len(pending):
                parse_errors = [f for f in failed if _has_code(f[1], "rego_parse_error")]
                raise self._load_error(*(parse_errors or failed)[0])
            pending = [upload for upload, _ in failed]

    def _put_module(self, upload: _Upload) -> None:
        """PUTs one module; RegoParseError when OPA will not compile it."""
        if not upload.text.strip():
            raise PolicyLoadError("empty Rego module", file=upload.module.source)
        try:
            self._client.update_policy_from_string(
                upload.text, quote(upload.policy_id, safe="/"), rego_compat=False
            )
        except RegoParseError as exc:
            if str(exc.expression) not in ("invalid_parameter", "invalid_operation"):
                raise self._server_refusal(
                    f"uploading {upload.module.source}", str(exc.expression), str(exc.message)
                ) from None
            raise
        except requests.RequestException as exc:
            raise self._unreachable(f"uploading {upload.module.source}", exc) from None
        log.debug("OPA server %s: uploaded %s", self.url, upload.policy_id)
        if upload.policy_id not in self._uploaded:
            self._uploaded.append(upload.policy_id)

    def _load_error(self, upload: _Upload, exc: RegoParseError) -> PolicyLoadError:
        errors = [e for e in exc.errors or [] if isinstance(e, dict)]
        located = [e for e in errors if isinstance(e.get("location"), dict)]
        error = (located or errors or [{}])[0]
        found = error.get("location")
        location: dict[str, Any] = found if isinstance(found, dict) else {}
        target = self._by_id.get(str(location.get("file", "")), upload)
        row = location.get("row")
        message = str(error.get("message") or exc.message)
        hint = None
        if target.module.v0 and any(marker in message for marker in _V0_REJECTED):
            hint = (
                "this OPA server parses Rego v1 only: run OPA 1.x with --v0-compatible to "
                "serve Rego v0 modules such as Gatekeeper templates"
            )
        return PolicyLoadError(
            f"OPA server {self.url} refused the module: {error.get('code', exc.expression)}: "
            f"{message}",
            file=target.module.source,
            line=target.source_line(int(row)) if row else None,
            hint=hint,
        )

    def _check_served(self, uploads: Sequence[_Upload]) -> None:
        """upload=False: every module's package must be on the server, or it would pass."""
        if not uploads:
            return
        try:
            info = self._client.get_policies_info()
        except requests.HTTPError as exc:
            if exc.response is None:
                raise self._unreachable("listing policies", exc) from None
            failure = self._eval_failure(exc.response, "listing policies")
            if isinstance(failure, PolicyEvalError):
                failure = PolicyServerError(str(failure))
            raise failure from None
        except requests.RequestException as exc:
            raise self._unreachable("listing policies", exc) from None
        prefix = f"{self._client.root_url}/data/"
        served = {
            entry["path"].removeprefix(prefix).replace("/", ".")
            for entry in info.values()
            if isinstance(entry, dict) and isinstance(entry.get("path"), str)
        }
        missing = sorted({up.module.package for up in uploads} - served)
        if missing:
            raise PolicyServerError(
                f"OPA server {self.url} serves no policy for package(s) {', '.join(missing)}",
                hint="deploy them to the server (a bundle), or let auditor upload them "
                "(upload: true)",
            )

    def _reloaded_after_loss(self) -> bool:
        """After an undefined answer: True when the server had lost this engine's policies
        (a restart empties OPA's in-memory store) and they were uploaded again."""
        if not self.upload or not self._uploaded:
            return False
        probe = self._uploaded[0]
        try:
            self._client.get_policy(quote(probe, safe="/"))
            return False
        except PolicyNotFoundError as exc:
            if str(exc.expression) != "resource_not_found":
                raise self._server_refusal(
                    "checking policies", str(exc.expression), str(exc.message)
                ) from None
        except requests.RequestException as exc:
            raise self._unreachable("checking policies", exc) from None
        log.warning("OPA server %s lost the uploaded policies: uploading them again", self.url)
        with self._lock:
            self._uploaded.clear()
            self._batches.clear()
            self._put_all()
        return True

    # several rules in one query

    def _batch(self, rules: Sequence[str]) -> _Upload | None:
        key = tuple(rules)
        with self._lock:
            if key in self._batches:
                return self._batches[key]
            if len(self._batches) >= _MAX_BATCHES:
                return None
            digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
            lines = [f"package {self._batch_package}.b{digest}", "", "import rego.v1", ""]
            try:
                for i, rule in enumerate(rules):
                    lines.append(f"r{i} := {_rego_ref(rule_path(rule))}")
            except ValueError:
                self._batches[key] = None
                return None
            module = RegoModule(
                source=f"(generated for {len(rules)} rules)",
                package=f"{self._batch_package}.b{digest}",
                text="\n".join(lines) + "\n",
            )
            upload = _Upload(f"{self.policy_prefix}/_batch/{digest}", module, module.text, None)
            try:
                self._put_module(upload)
            except RegoParseError as exc:
                # not fatal: the rules are still answered one by one
                log.debug("OPA server %s refused a generated module: %s", self.url, exc)
                self._batches[key] = None
                return None
            self._batches[key] = upload
            return upload

    def _batch_path(self, upload: _Upload) -> str:
        return _url_path(upload.module.package.split("."))

    # removal

    def _unload(self) -> None:
        """Deletes what was uploaded, newest first (a module may depend on an older one)."""
        try:
            for policy_id in reversed(self._uploaded):
                try:
                    self._client.delete_policy(quote(policy_id, safe="/"))
                except DeletePolicyError as exc:
                    log.warning(
                        "OPA server %s: could not delete %s: %s", self.url, policy_id, exc.message
                    )
            for key in reversed(self._data_keys):
                try:
                    self._client.delete_data(_url_path([key]))
                except DeleteDataError as exc:
                    log.warning(
                        "OPA server %s: could not delete data.%s: %s", self.url, key, exc.message
                    )
        except (requests.RequestException, ValueError) as exc:
            # unreachable: nothing more can be removed now (an OPA restart forgets them anyway)
            log.warning(
                "OPA server %s: could not remove uploaded policies: %s",
                self.url,
                type(exc).__name__,
            )
        self._uploaded.clear()
        self._data_keys.clear()
        self._batches.clear()


def _has_code(exc: RegoParseError, code: str) -> bool:
    return any(isinstance(e, dict) and e.get("code") == code for e in exc.errors or [])


__all__ = ["OpaServerEngine", "PolicyServerError", "read_token", "rule_path"]
