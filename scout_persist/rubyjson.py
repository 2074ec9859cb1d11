"""Ruby's JSON text for the values Scout writes: compact, raw UTF-8, Ruby float notation (SCOUT_FORMAT.md §6.2)."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import pathlib
from typing import Any

from .errors import UnsupportedValueError


def ruby_float(x: float) -> str:
    """Ruby ``Float#to_s``: shortest round-trip digits, fixed when -4 < decpt <= 15, else ``d.ddde±XX``."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise UnsupportedValueError(
            f"float {x!r} cannot be written as Scout JSON (Ruby's JSON raises on NaN/Infinity); "
            "store it as a string or use the 'pickle' serializer"
        )
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    mant, _, exp = repr(abs(x)).partition("e")
    ip, _, fp = mant.partition(".")
    all_digits = ip + fp
    lead = len(all_digits) - len(all_digits.lstrip("0"))
    digits = all_digits.strip("0") or "0"
    decpt = len(ip) + int(exp or 0) - lead
    if -4 < decpt <= 15:
        if decpt <= 0:
            text = "0." + "0" * (-decpt) + digits
        elif decpt >= len(digits):
            text = digits + "0" * (decpt - len(digits)) + ".0"
        else:
            text = digits[:decpt] + "." + digits[decpt:]
    else:
        e = decpt - 1
        text = f"{digits[0]}.{digits[1:] or '0'}e{'+' if e >= 0 else '-'}{abs(e):02d}"
    return sign + text


def ruby_time(dt: _dt.datetime | None = None) -> str:
    """Ruby ``Time#to_s`` in local time: ``YYYY-MM-DD HH:MM:SS ±HHMM``."""
    dt = (dt or _dt.datetime.now()).astimezone() if (dt is None or dt.tzinfo is None) else dt
    return dt.strftime("%Y-%m-%d %H:%M:%S %z")


def parse_ruby_time(s: str) -> _dt.datetime:
    """Inverse of :func:`ruby_time` (timezone-aware)."""
    return _dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S %z")


def dumps(value: Any) -> str:
    """Compact JSON as Ruby's ``to_json`` writes it (keys in insertion order, no trailing newline)."""
    out: list[str] = []
    _encode(value, out, 0)
    return "".join(out)


# JSON text of a str, raw UTF-8 (``json.dumps(s, ensure_ascii=False)`` without building an encoder per call)
_string = json.encoder.encode_basestring  # (the C function where there is one)
_SCALARS: dict[type, Any] = {  # the JSON text of a value of exactly this type (subclasses take the long way)
    str: _string,
    int: int.__repr__,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
}


def _key(k: Any) -> str:
    if isinstance(k, str):
        return str(k)
    if isinstance(k, bool) or k is None:
        return "" if k is None else ("true" if k else "false")
    if isinstance(k, float):
        return ruby_float(k)
    if isinstance(k, int):
        return str(k)
    if isinstance(k, (os.PathLike, pathlib.PurePath)):
        return os.fspath(k)
    raise UnsupportedValueError(f"JSON object key {k!r} ({type(k).__name__}) has no Ruby to_s form; use str keys")


def _encode(v: Any, out: list[str], depth: int) -> None:
    if depth > 200:
        raise UnsupportedValueError("value nests more than 200 levels (or contains itself); Ruby's JSON refuses it")
    scalar = _SCALARS.get(type(v))
    if scalar is not None:
        out.append(scalar(v))
    elif type(v) is dict:
        if not v:
            out.append("{}")
            return
        sep = "{"
        for k, item in v.items():
            out.append(sep)
            out.append(_string(k) if type(k) is str else _string(_key(k)))
            out.append(":")
            _encode(item, out, depth + 1)
            sep = ","
        out.append("}")
    elif type(v) is list:
        if not v:
            out.append("[]")
            return
        sep = "["
        for item in v:
            out.append(sep)
            _encode(item, out, depth + 1)
            sep = ","
        out.append("]")
    else:
        _encode_other(v, out, depth)


def _encode_other(v: Any, out: list[str], depth: int) -> None:
    """Every other value: subclasses of the plain types, floats, times, paths, steps."""
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(_string(str(v)))
    elif isinstance(v, int):
        out.append(str(int(v)))
    elif isinstance(v, float):
        out.append(ruby_float(v))
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, item) in enumerate(v.items()):
            if i:
                out.append(",")
            out.append(_string(_key(k)))
            out.append(":")
            _encode(item, out, depth + 1)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _encode(item, out, depth + 1)
        out.append("]")
    elif isinstance(v, _dt.datetime):
        out.append(json.dumps(ruby_time(v)))
    elif isinstance(v, (_dt.date, _dt.time)):  # as Ruby's Date / a time of day turn into JSON: their ISO string
        out.append(json.dumps(v.isoformat()))
    elif isinstance(v, _dt.timedelta):  # a duration as its number of seconds
        out.append(ruby_float(v.total_seconds()))
    elif isinstance(v, (os.PathLike, pathlib.PurePath)):
        out.append(_string(os.fspath(v)))
    elif hasattr(v, "scout_step_path"):
        out.append(_string(str(getattr(v, "path", None) or v.scout_step_path)))
    else:
        raise UnsupportedValueError(
            f"{type(v).__name__} value {v!r:.80} has no Scout JSON form; JSON holds str, int, float, bool, None, "
            "list and dict (use the 'marshal' or 'pickle' serializer instead)"
        )
