"""JSON text of stored values, with the C encoder built once per way of writing it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def encoder(**options: Any) -> Callable[[Any], str]:
    """`json.JSONEncoder(**options).encode`, with its C encoder built once.

    `encode` builds a new C encoder for every list or object it is given, which costs more
    than encoding a small value: a large run encodes a few hundred thousand of them.
    Circular values are not looked for (what the store is given was parsed from JSON or
    YAML); one would end in RecursionError, which callers report like any value that is not
    JSON.
    """
    encoder = json.JSONEncoder(check_circular=False, **options)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    strings = (
        json.encoder.encode_basestring_ascii
        if encoder.ensure_ascii
        else (json.encoder.encode_basestring)
    )
    try:
        chunks = make(
            None,
            encoder.default,
            strings,
            encoder.indent,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )
    except TypeError:  # another Python's C encoder: the plain way
        return encoder.encode

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return strings(value)  # type: ignore[no-any-return]
        return "".join(chunks(value, 0))

    return encode
