"""Values from Git and the cluster, made safe to show: every report escapes through here.

Anything a report prints may come from someone the audit is checking on: an annotation value,
a resource name in Git, a policy message built from either, a field manager's name, an API
server's error text. Shown raw, such a value could break a Markdown table (a `|` or a newline),
inject HTML or a link into a rendered report, move or recolour a terminal's text (escape
sequences), or reorder what a reader sees (bidirectional-override characters).
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import Any

# C0/C1 controls (newline, tab, ESC...), format characters (bidi overrides and isolates,
# zero-width characters) and the Unicode line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# CommonMark lets any ASCII punctuation be backslash-escaped; these are the characters that
# can open inline syntax (code, emphasis, links and images, HTML, entities, strikethrough) or
# end a table cell. A backslash is escaped too, so a value can never escape what follows it.
# An `_` between two letters or digits can neither open nor close emphasis (CommonMark's
# flanking rules), so `model_signed` stays readable in the raw file.
# `<`, `>` and `&` become entities first (no HTML, and an entity in a value is shown, not
# decoded); the rest is backslash-escaped.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|~]|(?<![^\W_])_|_(?![^\W_])")


def printable(text: str) -> str:
    """`text` with every invisible or control character shown as a visible escape (`\\n`,
    `\\x1b`, `\\u202e`), so one value stays on one line and shows what it holds."""
    if text.isprintable():  # the common case: nothing to do
        return text
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def as_text(value: Any) -> str:
    """A string as it is, anything else as compact, key-sorted JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_text(value: Any, *, limit: int | None = None) -> str:
    """`value` as literal inline Markdown text, safe in a table cell and in running text:
    shown, not interpreted. Cut to `limit` characters (before escaping, so an escape is
    never cut in half)."""
    text = printable(as_text(value))
    if limit is not None:
        text = truncated(text, limit)
    text = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


__all__ = ["as_text", "markdown_text", "printable", "truncated"]
