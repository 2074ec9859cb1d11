"""Input operators of the differential oracle: pairs of inputs that a computation can tell apart.

Each operator makes ``(a, b)``; a task that *probes* its input (:func:`describe`: types all the way down, float
bits, dtype, shape, memory order, mask, pandas labels by type, categories and order, ``attrs``, ``freq``, what a
path names on disk) gives different values for them, so a run with ``b`` over the store of a run with ``a`` must
recompute.  The same pairs drive the property test of the digest (equal digests imply equal probes).
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import hashlib
import math
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


# ------------------------------------------------------------------------------------------------ the probe
def describe(x: Any, depth: int = 0) -> Any:
    """What a computation can observe of ``x``, as JSON."""
    if depth > 12:
        return "deep"
    t = f"{type(x).__module__}.{type(x).__qualname__}"
    if isinstance(x, bool) or x is None:
        return [t, repr(x)]
    if isinstance(x, float):
        return [t, struct.pack(">d", x).hex()]
    if isinstance(x, (int, str, bytes, bytearray, decimal.Decimal, dt.date, dt.time, dt.timedelta, range)):
        extra = repr(getattr(x, "tzinfo", None)) if isinstance(x, (dt.datetime, dt.time)) else ""
        return [t, repr(x), extra]
    if isinstance(x, Path):
        return [t, str(x), _disk(x.expanduser())]
    if isinstance(x, re.Pattern):
        return [t, x.pattern, int(x.flags)]
    if isinstance(x, enum.Enum):
        return [t, x.name, describe(x.value, depth + 1)]
    if isinstance(x, np.ndarray):
        order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
        mask = np.ma.getmaskarray(x).tolist() if isinstance(x, np.ma.MaskedArray) else None
        data = x.data if isinstance(x, np.ma.MaskedArray) else x
        body = [describe(v, depth + 1) for v in data.ravel().tolist()] if x.dtype.hasobject else data.tobytes().hex()
        return [t, x.dtype.str, list(x.shape), order, mask, body, x.tobytes(order="A").hex()[:64]]
    if isinstance(x, np.generic):
        return [t, x.dtype.str, np.asarray(x).tobytes().hex()]
    if isinstance(x, pd.DataFrame):
        return [
            t,
            describe(x.columns, depth + 1),
            describe(x.index, depth + 1),
            [describe(x.iloc[:, i], depth + 1) for i in range(x.shape[1])],
            describe(dict(x.attrs), depth + 1),
        ]
    if isinstance(x, pd.Series):
        return [t, describe(x.name, depth + 1), _dtype(x.dtype), describe(x.index, depth + 1), _values(x, depth)]
    if isinstance(x, pd.Index):
        return [t, _dtype(x.dtype), list(map(str, x.names)), str(getattr(x, "freq", None)), _values(x, depth)]
    if isinstance(x, dict):
        extra = repr(x.default_factory) if isinstance(x, collections.defaultdict) else ""
        return [t, extra, [[describe(k, depth + 1), describe(v, depth + 1)] for k, v in x.items()]]
    if isinstance(x, (set, frozenset)):
        return [t, sorted(json_text(describe(v, depth + 1)) for v in x)]
    if isinstance(x, (list, tuple)):
        return [t, [describe(v, depth + 1) for v in x]]
    if hasattr(x, "__dataclass_fields__"):
        return [t, {k: describe(getattr(x, k), depth + 1) for k in x.__dataclass_fields__}, x.describe_me()]
    return [t, repr(x)]


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _dtype(dtype: Any) -> Any:
    cats = getattr(dtype, "categories", None)
    if cats is not None:
        return [str(dtype), list(map(repr, cats)), bool(dtype.ordered)]
    return str(dtype)


def _values(x: Any, depth: int) -> Any:
    if x.dtype.kind in "fiub":
        return np.asarray(x).tobytes().hex()
    return [describe(v, depth + 1) for v in list(x)]


def _disk(path: Path) -> Any:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        return sorted((str(p.relative_to(path)), _disk(p)) for p in path.rglob("*"))
    return "missing"


# -------------------------------------------------------------------------------------------- the operators
class Colour(enum.Enum):
    RED = 1


class Shade(enum.Enum):
    RED = 1


class Pair(NamedTuple):
    x: int
    y: int


@dataclass
class Reading:
    value: float

    def describe_me(self) -> str:
        return "reading"


@dataclass
class Measure:
    value: float

    def describe_me(self) -> str:
        return "measure"


def _big_file(tmp: Path, name: str, size: int) -> Path:
    path = tmp / name
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _edit_keep_mtime(path: Path, offset: int, data: bytes) -> None:
    st = os.stat(path)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _file_pair(tmp: Path) -> tuple[Path, Path]:
    path = tmp / "file.txt"
    path.write_text("one\n")
    return path, path


def _folder_pair(tmp: Path) -> tuple[Path, Path]:
    (tmp / "folder" / "sub").mkdir(parents=True, exist_ok=True)
    (tmp / "folder" / "sub" / "deep.txt").write_text("deep")
    return tmp / "folder", tmp / "folder"


@dataclass(frozen=True)
class InputOperator:
    name: str
    make: Callable[[Path], tuple[Any, Any]]
    # between the run with ``a`` and the run with ``b``: change the disk (``a`` and ``b`` name the same path)
    between: Callable[[Path], None] | None = None


_F = np.arange(6, dtype=float).reshape(2, 3)
_CAT = ["a", "b", "a"]

OPERATORS: list[InputOperator] = [
    InputOperator("int 1 -> 2", lambda t: (1, 2)),
    InputOperator("int -> float", lambda t: (1, 1.0)),
    InputOperator("int -> bool", lambda t: (1, True)),
    InputOperator("0.0 -> -0.0", lambda t: (0.0, -0.0)),
    InputOperator("nan sign", lambda t: (math.nan, -math.nan)),
    InputOperator("str -> bytes", lambda t: ("a", b"a")),
    InputOperator("bytes -> bytearray", lambda t: (b"a", bytearray(b"a"))),
    InputOperator("list -> tuple", lambda t: ([1, 2], (1, 2))),
    InputOperator("tuple -> namedtuple", lambda t: ((1, 2), Pair(1, 2))),
    InputOperator("dict order", lambda t: ({"a": 1, "b": 2}, {"b": 2, "a": 1})),
    InputOperator("dict key 1 -> '1'", lambda t: ({1: "x"}, {"1": "x"})),
    InputOperator("defaultdict factory", lambda t: (collections.defaultdict(int), collections.defaultdict(list))),
    InputOperator("dict -> OrderedDict", lambda t: ({"a": 1}, collections.OrderedDict(a=1))),
    InputOperator("set -> frozenset", lambda t: ({1, 2}, frozenset({1, 2}))),
    InputOperator("Decimal scale", lambda t: (decimal.Decimal("1.0"), decimal.Decimal("1.00"))),
    InputOperator("date -> datetime", lambda t: (dt.date(2026, 1, 2), dt.datetime(2026, 1, 2))),
    InputOperator(
        "naive -> aware", lambda t: (dt.datetime(2026, 1, 2), dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
    ),
    InputOperator("range -> list", lambda t: (range(3), [0, 1, 2])),
    InputOperator("regex flags", lambda t: (re.compile("a+"), re.compile("a+", re.I))),
    InputOperator("enum class", lambda t: (Colour.RED, Shade.RED)),
    InputOperator("dataclass class", lambda t: (Reading(1.0), Measure(1.0))),
    InputOperator("numpy C -> F", lambda t: (_F.copy(), np.asfortranarray(_F))),
    InputOperator("numpy dtype", lambda t: (np.arange(3, dtype=np.int64), np.arange(3, dtype=np.int32))),
    InputOperator("numpy shape", lambda t: (_F.copy(), _F.reshape(3, 2).copy())),
    InputOperator("numpy scalar -> float", lambda t: (np.float64(1.0), 1.0)),
    InputOperator(
        "masked array mask",
        lambda t: (np.ma.array([1.0, 2.0], mask=[True, False]), np.ma.array([1.0, 2.0], mask=[False, True])),
    ),
    InputOperator("masked -> plain", lambda t: (np.ma.array([1.0, 2.0], mask=[False, False]), np.array([1.0, 2.0]))),
    InputOperator(
        "object array 1 -> '1'", lambda t: (np.array([1, 2], dtype=object), np.array(["1", "2"], dtype=object))
    ),
    InputOperator(
        "Series object 1 -> '1'", lambda t: (pd.Series([1, 2], dtype=object), pd.Series(["1", "2"], dtype=object))
    ),
    InputOperator("Series -0.0", lambda t: (pd.Series([0.0, 1.0]), pd.Series([-0.0, 1.0]))),
    InputOperator("Series name", lambda t: (pd.Series([1], name="a"), pd.Series([1], name="b"))),
    InputOperator(
        "index 1 -> '1'",
        lambda t: (
            pd.Series([5], index=pd.Index([1], dtype=object)),
            pd.Series([5], index=pd.Index(["1"], dtype=object)),
        ),
    ),
    InputOperator(
        "categories",
        lambda t: (
            pd.Series(pd.Categorical(_CAT, categories=["a", "b"])),
            pd.Series(pd.Categorical(_CAT, categories=["a", "b", "c"])),
        ),
    ),
    InputOperator(
        "category order",
        lambda t: (
            pd.Series(pd.Categorical(_CAT, categories=["a", "b"])),
            pd.Series(pd.Categorical(_CAT, categories=["b", "a"])),
        ),
    ),
    InputOperator(
        "categorical ordered",
        lambda t: (pd.Series(pd.Categorical(_CAT, ordered=False)), pd.Series(pd.Categorical(_CAT, ordered=True))),
    ),
    InputOperator("columns.name", lambda t: _frames(lambda f: f.columns.set_names("c"))),
    InputOperator("attrs", lambda t: _frames(lambda f: f.attrs.update(source="lab") or f.columns)),
    InputOperator("column order", lambda t: (pd.DataFrame({"a": [1], "b": [2]}), pd.DataFrame({"b": [2], "a": [1]}))),
    InputOperator("column label 1 -> '1'", lambda t: (pd.DataFrame({1: [1]}), pd.DataFrame({"1": [1]}))),
    InputOperator(
        "freq",
        lambda t: (
            pd.Series([1, 2], index=pd.date_range("2026-01-01", periods=2, freq="D")),
            pd.Series([1, 2], index=pd.DatetimeIndex(["2026-01-01", "2026-01-02"])),
        ),
    ),
    InputOperator(
        "time zone",
        lambda t: (
            pd.Series(pd.to_datetime(["2026-01-01"])),
            pd.Series(pd.to_datetime(["2026-01-01"]).tz_localize("UTC")),
        ),
    ),
    InputOperator(
        "nullable Int64 -> float", lambda t: (pd.Series([1, None], dtype="Int64"), pd.Series([1.0, math.nan]))
    ),
    InputOperator("file content", _file_pair, lambda t: (t / "file.txt").write_text("two\n")),
    InputOperator(
        "folder: change in a sub-folder", _folder_pair, lambda t: (t / "folder" / "sub" / "deep.txt").write_text("DEEP")
    ),
    InputOperator(
        "large file edited between samples, mtime kept",
        lambda t: (_big_file(t, "big.bin", (64 << 20) + (5 << 20)),) * 2,
        lambda t: _edit_keep_mtime(t / "big.bin", (64 << 20) // 4, b"changed"),
    ),
    InputOperator("~ path", lambda t: _home_pair(t), lambda t: (Path.home() / "oracle-home.txt").write_text("b")),
]


def _home_pair(tmp: Path) -> tuple[Path, Path]:
    (Path.home() / "oracle-home.txt").write_text("a")  # the worker's HOME is a folder of its own
    return Path("~/oracle-home.txt"), Path("~/oracle-home.txt")


def _frames(change: Callable[[pd.DataFrame], Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    a = pd.DataFrame({"x": [1, 2]})
    b = a.copy()
    b.columns = change(b)
    return a, b
