"""Ruby Scout's ``Log.fingerprint`` (SCOUT_FORMAT §11.1) and the ANSI colours of its CLI.

``fingerprint`` prints a decoded ``.info`` value the way ``scout workflow info`` does: strings quoted and cut in the
middle past 150 characters, floats with 1/3/6 decimals, long arrays and maps abbreviated.
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_STRING = 150
MAX_ARRAY = 20
MAX_HASH = 10

COLORS = {"red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35, "cyan": 36}


def color(name: str | None, text: str) -> str:
    """``text`` wrapped in the ANSI escape of ``name`` (Ruby's ``Log.color``); plain when ``name`` is None."""
    if name is None:
        return text
    return f"\x1b[{COLORS[name]}m{text}\x1b[0m"


def status_color(status: str) -> str:
    """Ruby ``Step.status_color``: the colour of a job status in ``prov``."""
    if status in ("error", "aborted", "dead", "unsync"):
        return "red"
    if status in ("done", "noinfo"):
        return "green"
    if status in ("dependencies", "waiting", "setup"):
        return "yellow"
    if status in ("notfound", "cleaned", "missing"):
        return "blue"
    return "cyan"


def truncate_string(s: str, limit: int = MAX_STRING) -> str:
    """Cut ``s`` in the middle with ``<...LEN - md5...>`` when longer than ``limit`` characters."""
    if len(s) <= limit:
        return s
    middle = f"<...{len(s)} - {hashlib.md5(s.encode('utf-8')).hexdigest()[:5]}...>"
    half = (limit - len(middle)) // 2
    return s[: max(half - 1, 0)] + middle + s[-half:]


def _float(x: float) -> str:
    if abs(x) > 10:
        return "%.1f" % x
    if abs(x) > 1:
        return "%.3f" % x
    return "%.6f" % x


def fingerprint(obj: Any) -> str:
    """The text Ruby's ``Log.fingerprint`` prints for a JSON-decoded value."""
    if obj is None:
        return "nil"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        if type(obj).__name__ == "Symbol":
            return ":" + str(obj)
        return "'" + truncate_string(obj.replace("\n", "\\n")) + "'"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, (list, tuple)):
        n = len(obj)
        if n > MAX_ARRAY:
            picks = [obj[0], obj[1], obj[n // 2], obj[-2], obj[-1]]
            return f"[{n}--" + ",".join(fingerprint(e) for e in picks) + "]"
        return "[" + ", ".join(fingerprint(e) for e in obj) + "]"
    if isinstance(obj, dict):
        if len(obj) > MAX_HASH:
            return "H:{" + fingerprint(list(obj)) + ";" + fingerprint(list(obj.values())) + "}"
        return "{" + " ".join(fingerprint(k) + "=>" + fingerprint(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (set, frozenset)):
        return fingerprint(sorted(obj, key=repr))
    if isinstance(obj, bytes):
        return fingerprint(obj.decode("utf-8", "replace"))
    return str(obj)
