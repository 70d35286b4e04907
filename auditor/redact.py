"""Secret values never leave the reader that loaded them.

Both sides replace every Secret value with a keyed digest of its decoded bytes,
`hmac-sha256:<hex>` under a random key made when the process starts, before a `Resource`
exists: drift compares digests, and nothing downstream (findings, store, logs, reports) can
see a value. A plain hash would not do: a weak secret (`admin`, a short PIN) is guessed offline
from its sha256 in seconds; without the key, which never leaves memory, a stored digest says
nothing but "equal" or "different" within its run. The last-applied annotation carries a full
copy of the object, values included, so it is redacted too. Digesting the bytes, not the
text, makes what the API server re-serialises compare alike: `stringData` folded into `data`,
base64 with line breaks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DIGEST_PREFIX = "hmac-sha256:"
# One key per process (a CLI run is one process): both sides of a comparison digest alike, and
# digests from two runs cannot be compared, or brute-forced without the key.
_RUN_KEY = secrets.token_bytes(32)


# `scheme://user:token@host/...`: whatever sits between `://` and the last `@` of the authority
_URL_CREDENTIALS = re.compile(r"(://)[^/@]+@")


def redact_url(url: str) -> str:
    """The URL as messages and the store show it: credentials are never printed or stored."""
    return _URL_CREDENTIALS.sub(r"\1***@", url)


def digest_bytes(raw: bytes) -> str:
    """The keyed digest a Secret value is replaced with."""
    return DIGEST_PREFIX + hmac.new(_RUN_KEY, raw, hashlib.sha256).hexdigest()


# An empty value stays "": it hides nothing, and the API server returns an empty `[]byte` as ""
# or null (argoproj/argo-cd#943), so drift must see it is empty to treat those alike.
EMPTY = ""


def decode_bytes_field(value: str) -> bytes | None:
    """A `[]byte` field's bytes as the API server decodes them; None if it would refuse them.

    Go's base64 decoder skips \r and \n: a `|` block or a wrapped `base64` output in Git is
    stored as the same bytes, and read back as one canonical line.
    """
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def _digest_b64(value: Any) -> str:
    if not isinstance(value, str):
        return digest_bytes(json.dumps(value, sort_keys=True).encode())
    raw = decode_bytes_field(value)
    if raw is None:
        # not valid base64: the API server would reject it; digest the text so it still compares
        raw = value.encode()
    return digest_bytes(raw) if raw else EMPTY


def _digest_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return digest_bytes(text.encode()) if text else EMPTY


def is_secret(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and body.get("kind") == "Secret"
        and str(body.get("apiVersion", "v1")) == "v1"
    )


def redact_secret(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Secret whose `data` holds digests; `stringData` is folded into `data`.

    The API server folds stringData into data the same way, so both sides compare alike.
    """
    out = {k: v for k, v in body.items() if k not in ("data", "stringData")}
    data: dict[str, str] = {}
    raw_data = body.get("data")
    if isinstance(raw_data, dict):
        data.update({str(k): _digest_b64(v) for k, v in raw_data.items() if v is not None})
    string_data = body.get("stringData")
    if isinstance(string_data, dict):
        data.update({str(k): _digest_text(v) for k, v in string_data.items() if v is not None})
    if raw_data is not None or string_data is not None:
        out["data"] = data
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = _redact_last_applied(metadata)
    return out


def _redact_last_applied(metadata: dict[str, Any]) -> dict[str, Any]:
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict) or LAST_APPLIED not in annotations:
        return metadata
    try:
        applied = json.loads(annotations[LAST_APPLIED])
    except (TypeError, ValueError):
        applied = None
    if isinstance(applied, dict):
        replacement = json.dumps(redact_secret(applied), sort_keys=True, separators=(",", ":"))
    else:
        # unparseable: drop it rather than risk keeping a value
        replacement = ""
    new_annotations = dict(annotations)
    new_annotations[LAST_APPLIED] = replacement
    return {**metadata, "annotations": new_annotations}


def redact(body: Any) -> Any:
    """The body with Secret values replaced by digests; other kinds unchanged."""
    if is_secret(body):
        return redact_secret(body)
    return body
