"""Git's object in the canonical form the API server stores it in.

Two things Git commonly writes are stored in another, equivalent form, field by field
different from what Git says:
- Endpoints: the registry canonicalises subsets on every write (`RepackSubsets` in
  pkg/api/endpoints): subsets that serve the same ports are merged into one, addresses
  are sorted by IP and de-duplicated, a port's protocol defaults to TCP. The hand-written
  Endpoints of a Service without a selector (one subset per address) come back repacked.
- ConfigMap `binaryData`: `[]byte` values are base64-decoded (Go's decoder skips line
  breaks) and re-encoded on one line; an empty value comes back as null.
Secret `data` and `stringData` are made alike where they are read (`auditor/redact.py`):
their values never reach drift.

Like `kserve.admitted_view`, the desired body is rewritten and never mutated; what differs
after the rewrite is compared and reported as usual.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from auditor.drift.merge_keys import KEY_DEFAULTS
from auditor.redact import decode_bytes_field

PortKey = tuple[Any, ...]
AddressKey = tuple[str, str]


def canonical_view(
    group: str, kind: str, desired: Mapping[str, Any], live: Mapping[str, Any]
) -> Mapping[str, Any]:
    """`desired` as the API server would store it; `desired` itself when nothing applies."""
    if group != "":
        return desired
    if kind == "Endpoints":
        return _endpoints(desired, live)
    if kind == "ConfigMap":
        return _binary_data(desired)
    return desired


# -- ConfigMap binaryData ------------------------------------------------------------------


def canonical_base64(value: Any) -> Any:
    """One line of padded base64 for the same bytes; "" for none; anything else as it is."""
    if not isinstance(value, str):
        return value
    raw = decode_bytes_field(value)
    if raw is None:
        return value  # the API server would refuse it: compare it as written
    return base64.b64encode(raw).decode() if raw else ""


def _binary_data(desired: Mapping[str, Any]) -> Mapping[str, Any]:
    data = desired.get("binaryData")
    if not isinstance(data, Mapping):
        return desired
    canonical = {k: canonical_base64(v) for k, v in data.items()}
    return desired if canonical == data else {**desired, "binaryData": canonical}


# -- Endpoints -------------------------------------------------------------------------------


def _endpoints(desired: Mapping[str, Any], live: Mapping[str, Any]) -> Mapping[str, Any]:
    subsets = desired.get("subsets")
    if not isinstance(subsets, list) or not all(isinstance(s, Mapping) for s in subsets):
        return desired
    live_subsets = live.get("subsets")
    order = live_subsets if isinstance(live_subsets, list) else []
    return {**desired, "subsets": _in_live_order(repack(subsets), order)}


def _port_key(port: Mapping[str, Any]) -> PortKey:
    protocol = port.get("protocol") or KEY_DEFAULTS["protocol"]
    return (port.get("name", ""), port.get("port"), protocol, port.get("appProtocol"))


def _address_key(address: Mapping[str, Any]) -> AddressKey:
    ref = address.get("targetRef")
    uid = ref.get("uid", "") if isinstance(ref, Mapping) else ""
    return (str(address.get("ip", "")), str(uid))


def _address_order(key: AddressKey) -> tuple[str, bool, str]:
    # LessEndpointAddress: by IP bytes, then addresses without a targetRef first, then by uid
    ip, uid = key
    return (ip, bool(uid), uid)


def repack(subsets: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The subsets as `RepackSubsets` stores them: one per distinct set of addresses.

    Every (address, port) pair is kept with its readiness (not ready wins), then ports that
    reach the same addresses are grouped. Order follows the server where it is defined
    (addresses by IP); the order of subsets and ports, an md5 of Go structs there, is left to
    `_in_live_order`.
    """
    addresses: dict[AddressKey, Mapping[str, Any]] = {}
    ports: dict[PortKey, dict[str, Any]] = {}
    reach: dict[PortKey, dict[AddressKey, bool]] = {}
    for subset in subsets:
        for port in subset.get("ports") or ():
            if isinstance(port, Mapping):
                pk = _port_key(port)
                ports.setdefault(pk, {**port, "protocol": pk[2]})
                _reached(subset, reach.setdefault(pk, {}), addresses)
    groups: dict[frozenset[tuple[AddressKey, bool]], list[PortKey]] = {}
    for pk, seen in reach.items():
        groups.setdefault(frozenset(seen.items()), []).append(pk)
    out = []
    for members, port_keys in groups.items():
        packed: dict[str, Any] = {}
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            keys = sorted((ak for ak, r in members if r is ready), key=_address_order)
            if keys:
                packed[field] = [addresses[k] for k in keys]
        packed["ports"] = [ports[pk] for pk in port_keys]
        out.append(packed)
    return out


def _reached(
    subset: Mapping[str, Any],
    seen: dict[AddressKey, bool],
    addresses: dict[AddressKey, Mapping[str, Any]],
) -> None:
    """Records the subset's addresses for one of its ports; an address not ready anywhere
    for that port is not ready (mapAddressByPort)."""
    for field, ready in (("addresses", True), ("notReadyAddresses", False)):
        for address in subset.get(field) or ():
            if isinstance(address, Mapping):
                ak = _address_key(address)
                addresses.setdefault(ak, address)
                seen[ak] = seen.get(ak, True) and ready


def _in_live_order(subsets: list[dict[str, Any]], live: list[Any]) -> list[dict[str, Any]]:
    """Subsets, and the ports in each, in the order live holds the same ones; the rest after."""
    position: dict[frozenset[PortKey], int] = {}
    port_position: dict[PortKey, int] = {}
    for i, subset in enumerate(live):
        if not isinstance(subset, Mapping):
            continue
        live_ports = [p for p in subset.get("ports") or () if isinstance(p, Mapping)]
        position.setdefault(frozenset(_port_key(p) for p in live_ports), i)
        for j, port in enumerate(live_ports):
            port_position.setdefault(_port_key(port), j)
    unplaced = len(live)
    for subset in subsets:
        subset["ports"].sort(key=lambda p: port_position.get(_port_key(p), unplaced))

    def place(subset: dict[str, Any]) -> int:
        return position.get(frozenset(_port_key(p) for p in subset["ports"]), unplaced)

    return sorted(subsets, key=place)
