"""The oracle's equality: two task values are the same only when no ordinary computation tells them apart."""

from __future__ import annotations

import math
import struct
from typing import Any


def difference(a: Any, b: Any, path: str = "") -> str | None:
    """None when ``a`` and ``b`` are indistinguishable (types all the way down, float bits, dict order, numpy dtype,
    shape, memory order and mask, pandas labels, dtypes, categories, attrs); else where they differ."""
    try:
        from scout_persist.equality import difference as core_difference
    except ImportError:
        return _difference(a, b, path or "value")
    return core_difference(a, b)


def _difference(a: Any, b: Any, path: str) -> str | None:
    if type(a) is not type(b):
        return f"{path}: type {type(a).__qualname__} != {type(b).__qualname__}"
    if isinstance(a, float):
        same = struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
        return None if same else f"{path}: {a!r} != {b!r}"
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)!r:.80} != {list(b)!r:.80}"
        for k in a:
            found = _difference(a[k], b[k], f"{path}[{k!r}]")
            if found:
                return found
        return None
    module = type(a).__module__.partition(".")[0]
    if module == "numpy":
        return _numpy(a, b, path)
    if module == "pandas":
        return _pandas(a, b, path)
    same = a == b and repr(a) == repr(b)  # Decimal('1.0') == Decimal('1.00'), yet they print (and scale) apart
    return None if same else f"{path}: {a!r:.80} != {b!r:.80}"


def _numpy(a: Any, b: Any, path: str) -> str | None:
    import numpy as np

    if isinstance(a, np.ndarray):
        order = lambda x: "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"  # noqa: E731
        for what, x, y in (("dtype", a.dtype, b.dtype), ("shape", a.shape, b.shape), ("order", order(a), order(b))):
            if x != y:
                return f"{path}: {what} {x} != {y}"
        if isinstance(a, np.ma.MaskedArray) and not np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)):
            return f"{path}: mask differs"
        if a.tobytes() != b.tobytes():
            return f"{path}: values differ"
        return None
    return None if a.tobytes() == b.tobytes() and a.dtype == b.dtype else f"{path}: {a!r} != {b!r}"


def _pandas(a: Any, b: Any, path: str) -> str | None:
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        checks = [
            ("columns", list(a.columns), list(b.columns)),
            ("column types", [type(c) for c in a.columns], [type(c) for c in b.columns]),
            ("columns.name", a.columns.name, b.columns.name),
            ("dtypes", [str(t) for t in a.dtypes], [str(t) for t in b.dtypes]),
            ("attrs", a.attrs, b.attrs),
        ]
        for what, x, y in checks:
            if x != y:
                return f"{path}: {what} {x!r:.80} != {y!r:.80}"
        found = _difference(a.index, b.index, f"{path}.index")
        if found:
            return found
        for i in range(a.shape[1]):
            found = _difference(a.iloc[:, i], b.iloc[:, i], f"{path}[{a.columns[i]!r}]")
            if found:
                return found
        return None
    if isinstance(a, pd.Series):
        if str(a.dtype) != str(b.dtype) or a.name != b.name:
            return f"{path}: dtype/name {a.dtype}/{a.name!r} != {b.dtype}/{b.name!r}"
        found = _difference(a.index, b.index, f"{path}.index")
        return found or _difference(list(a), list(b), f"{path}.values")
    if isinstance(a, pd.Index):
        if str(a.dtype) != str(b.dtype) or list(a.names) != list(b.names):
            return f"{path}: index dtype/names differ"
        return _difference(list(a), list(b), f"{path}.values")
    return None if repr(a) == repr(b) else f"{path}: {a!r:.80} != {b!r:.80}"
