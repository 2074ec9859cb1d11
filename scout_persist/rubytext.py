"""Ruby's reading of plain text: ``String#to_i``/``to_f``, ``split("\\n")`` and ``Persist.deserialize``.

Shared by input coercion (workflow) and result loading (scout_types), which read text the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .rubyvalues import ScoutPath

TRUE_STRINGS = frozenset("true True TRUE t T 1 yes Yes YES y Y ON on".split())
RUBY_WS = " \t\n\v\f\r\0"  # what Ruby's String#strip removes

_INT_RE = re.compile(r"[ \t\n\v\f\r]*([+-]?\d+(?:_\d+)*)")
_FLOAT_RE = re.compile(
    r"[ \t\n\v\f\r]*([+-]?(?:\d+(?:_\d+)*(?:\.\d+(?:_\d+)*)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?)"
)


def ruby_to_i(s: str) -> int:
    """Ruby ``String#to_i``: leading whitespace, sign, digits with single ``_`` between them; 0 without digits."""
    m = _INT_RE.match(s)
    return int(m.group(1).replace("_", "")) if m else 0


def ruby_to_f(s: str) -> float:
    """Ruby ``String#to_f``: lenient, ``"1e-7"`` -> 1e-07, ``"abc"`` -> 0.0."""
    m = _FLOAT_RE.match(s)
    if not m:
        return 0.0
    text = m.group(1).replace("_", "")
    if text.lstrip("+-").startswith("."):
        text = text.replace(".", "0.", 1)
    return float(text)


def split_lines(s: str) -> list[str]:
    """Ruby ``split("\\n")``: trailing empty fields dropped, ``""`` -> ``[]``."""
    parts = s.split("\n")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def deserialize(text: str, type: str | None, more: Mapping[str, Callable[[str], Any]] | None = None) -> Any:
    """Ruby ``Persist.deserialize`` of a String for the plain-text Scout types (and ``X_array`` of them).

    ``more`` adds parsers for other types (e.g. json for inputs). An unknown type raises LookupError.
    """
    if type in ("text", "stream", "", None):
        return text
    if type in ("string", "file", "select", "folder"):
        return text.strip(RUBY_WS)
    if type == "path":
        return ScoutPath(text.strip(RUBY_WS))
    if type == "integer":
        return ruby_to_i(text)
    if type == "float":
        return ruby_to_f(text)
    if type == "boolean":
        return text.strip(RUBY_WS) in TRUE_STRINGS
    if type == "array":
        return split_lines(text)
    if more and type in more:
        return more[type](text)
    m = re.search(r"(.*)_array", type)  # Ruby matches anywhere in the name
    if m:
        return [deserialize(line, m.group(1), more) for line in split_lines(text)]
    raise LookupError(type)
