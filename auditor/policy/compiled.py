"""The configured policies loaded once and kept ready, for callers that judge one object at a
time for as long as they live (the admission webhook: one instance per server worker).

`evaluate_inputs` (the audit) loads and compiles the policies for every run; a webhook that did
that per request would spend tens of milliseconds on parsing alone. Here they are loaded once,
and every call evaluates through one worker process (`worker.WorkerEngine`) forked from the
compiled engine: each call has the time budget, a policy that never finishes is stopped (regorus
holds the GIL, so it would otherwise freeze the server), and callers from several threads take
turns (the engine and its pipe serve one call at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from auditor.config import PolicySettings
from auditor.model import PolicyInfo, ResourceRef
from auditor.policy.engine import PolicyEngine
from auditor.policy.evaluate import PolicyOutcome, evaluate_policies, load_engine, vm_packages
from auditor.policy.loader import PolicySet, load_policy_files, with_inventory
from auditor.policy.stage import policy_info, remote_engine

# Gatekeeper's own enforcement point for its validating webhook: a constraint's
# `scopedEnforcementActions` for it apply at admission, as they would under Gatekeeper.
WEBHOOK = "validation.gatekeeper.sh"


class CompiledPolicies:
    """Every configured policy, loaded and compiled once; `evaluate` judges one input."""

    def __init__(self, settings: PolicySettings, *, timeout: float) -> None:
        """Raises PolicyLoadError (a usage error naming the file) for a policy that does not
        load: a webhook must not start with part of its policies."""
        from auditor.policy.gatekeeper import hooks

        loaded = load_policy_files(
            settings.resolved_paths(), data_files=settings.data, hooks=(hooks(WEBHOOK),)
        )
        # No inventory at admission: the API server's objects are not in the webhook's hands.
        self.policy_set: PolicySet = with_inventory(loaded, [])
        self.policies: tuple[PolicyInfo, ...] = tuple(
            policy_info(p, self.policy_set) for p in self.policy_set.policies
        )
        self._lock = threading.Lock()
        remote = remote_engine(settings)
        self._engine: PolicyEngine
        if remote is not None:
            # an OPA server's requests carry their own timeout (policy.opa.timeout_seconds)
            self._engine = load_engine(self.policy_set, remote)
        else:
            from auditor.policy.worker import WorkerEngine

            compiled = load_engine(self.policy_set, vm=settings.uses_vm())
            batches: tuple[tuple[str, ...], ...] = getattr(compiled, "batches", tuple)()
            spec = (self.policy_set.modules, self.policy_set.data, batches, vm_packages(loaded))
            self._engine = WorkerEngine(
                spec, timeout, engine=compiled, memory=settings.memory_bytes
            )
            # forked now, from the thread that compiled: the worker inherits the engine
            # instead of compiling again on the first request
            self._engine.evaluate_many([], {})

    def evaluate(self, ref: ResourceRef | None, document: Mapping[str, Any]) -> PolicyOutcome:
        """Every policy over one input document; an overrun or a crash is an `error`
        evaluation of the policy concerned, never an exception."""
        with self._lock:
            return evaluate_policies(self.policy_set, [(ref, document)], engine=self._engine)

    def close(self) -> None:
        close = getattr(self._engine, "close", None)
        if close is not None:
            close()


__all__ = ["WEBHOOK", "CompiledPolicies"]
