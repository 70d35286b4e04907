"""A Prometheus Pushgateway for tests, on 127.0.0.1: the push API's grouping and replace rules.

`PUT /metrics/job/<job>{/<label>/<value>}` replaces every metric of the group; `POST` replaces
only the metric families it sends; `DELETE` drops the group. Bodies are parsed with
prometheus_client's parser, as the real gateway parses them (a body that does not parse is a
400), so a test reads back exactly what Prometheus would scrape.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.loopback import LoopbackHandler, LoopbackServer

Group = tuple[tuple[str, str], ...]  # (("job", "auditor"), ...)


@dataclass(frozen=True)
class Push:
    method: str
    path: str
    body: str


class Pushgateway(LoopbackServer):
    def __init__(self) -> None:
        super().__init__()
        self.pushes: list[Push] = []
        self.groups: dict[Group, dict[str, Any]] = {}  # family name -> Metric
        self._lock = threading.Lock()

    def handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def samples(self, group: Group) -> dict[str, float]:
        """`name{label="v",...}` -> value, for every sample the group holds."""
        out = {}
        for family in self.groups.get(group, {}).values():
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def _apply(self, method: str, path: str, body: str) -> int:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 3 or parts[:2] != ["metrics", "job"] or len(parts[1:]) % 2:
            return 404
        labels = parts[1:]
        group: Group = tuple(zip(labels[::2], labels[1::2], strict=True))
        with self._lock:
            self.pushes.append(Push(method, path, body))
            if method == "DELETE":
                self.groups.pop(group, None)
                return 202
            try:
                families = {f.name: f for f in text_string_to_metric_families(body)}
            except ValueError:
                return 400
            if method == "PUT":
                self.groups[group] = families
            elif method == "POST":
                self.groups.setdefault(group, {}).update(families)
            else:
                return 405
        return 200


class _Handler(LoopbackHandler):
    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        gateway: Pushgateway = self.server.owner  # type: ignore[attr-defined]
        code = gateway._apply(self.command, self.path, body)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
