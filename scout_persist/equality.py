"""Strict equality: is one value indistinguishable from another for computation?  ``difference(a, b)`` says why not.

The trust contract (a cache hit hands downstream exactly what the first run handed on) needs an equality stricter
than ``==``: Python says ``[0.1, 2] == [0.1, 2.0]``, ``{1: "a"} == {1.0: "a"}``, ``Decimal("1.0") == Decimal("1.00")``
and ``-0.0 == 0.0``, and pandas' and Arrow's ``equals`` treat NaN or signed zeros loosely.  :func:`difference`
returns None when ``b`` cannot be told apart from ``a`` by a computation, else one short reason naming the path::

    >>> difference({"x": np.zeros(2)}, {"x": np.zeros(2, dtype="float32")})
    "['x'].dtype: float64 != float32"

Rules, all the way down:

- the exact class (``bytes`` is not ``bytearray``, ``np.float64`` is not ``float``, a subclass is not its base);
- floats by their bits (``-0.0`` is not ``0.0``), except that every NaN equals every NaN; ``Decimal`` by its exact
  tuple (``Decimal("1.0")`` is not ``Decimal("1.00")``); ``datetime`` values with their tzinfo and fold;
- dicts with their key order and key types; sets and frozensets by their members and the members' types;
  dataclasses and plain objects (no ``__eq__`` of their own) field by field, ``__dict__`` and ``__slots__`` (an
  object with neither, such as a lock, has no state to differ); other objects by their ``__eq__``, and by ``repr``
  when ``__eq__`` does not give a bool (the reason then says so); classes and functions by their qualified name;
- numpy arrays by class, dtype (and its metadata), shape, memory layout, ``writeable`` and values (masked arrays:
  also the mask, ``hardmask`` and the fill value as it fills, in the array's dtype), with the float and NaN rules
  above, vectorised;
- pandas DataFrame/Series/Index: class, dtypes, values, index (with its dtype: ``1`` is not ``"1"``), columns and
  ``columns.name``, names, categoricals (categories, their order, ``ordered``), object columns element by element
  with their types, ``attrs``, ``flags``, ``DatetimeIndex.freq``, tz;
- pyarrow Tables and arrays: schema with its metadata, values (float bits compared, NaN equal to NaN).  How a table
  is cut into chunks is not compared: no computation's result depends on it.

**Memory layout counts.**  A Fortran-ordered array and its C-ordered copy hold the same values, but
``tobytes(order="A")``, ``ravel("K")``, ``empty_like`` and every ufunc output follow the layout, so a downstream task
can compute different bytes from them.  An array's layout is therefore part of its value here: ``"C"`` (C-contiguous,
which includes every 0-d and 1-d array), ``"F"`` (Fortran-contiguous only) or ``"strided"`` (neither).  Likewise
``writeable``: an in-place update works on one and raises on the other.  The formats keep this true by handing on
the very layout a load gives back (a strided view is stored and handed on as a C-contiguous copy; see
docs/formats.md).  Whether two arrays share memory, and the chunking of Arrow data, are not compared.

:func:`difference` never raises: a value it cannot compare gives a reason saying so.  Large arrays, frames and
tables are compared with vectorised operations; only object arrays of non-scalar elements are walked in Python.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import fractions
import struct
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

_SCALARS = (type(None), bool, int, str, bytes, bytearray, range, type(Ellipsis), type(NotImplemented))
_EXACT_EQ = frozenset(_SCALARS[:6])  # classes whose == between two instances is exact: None, bool, int, str, bytes
_OBJECT_EQ: Any = object.__eq__
_TIMES = (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, _dt.timezone)
_NAMED = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    types.BuiltinMethodType,
)


def difference(a: Any, b: Any) -> str | None:
    """None when ``b`` is indistinguishable from ``a`` for computation, else a short reason naming the path of the
    first difference (``"['x'].dtype: float64 != float32"``).  Never raises."""
    try:
        return _Comparison().diff(a, b, "")
    except RecursionError:
        return "value: nested too deeply to compare"
    except Exception as exc:  # noqa: BLE001 - an exotic value must give a reason, never an exception
        return f"value: could not be compared ({type(exc).__name__}: {exc!s:.80})"


def equal(a: Any, b: Any) -> bool:
    """Whether :func:`difference` finds none."""
    return difference(a, b) is None


# --------------------------------------------------------------------------------------------- formatting
def _where(path: str) -> str:
    return path.lstrip(".") or "value"


def _repr(x: Any) -> str:
    try:
        return repr(x)
    except Exception:  # noqa: BLE001 - a broken __repr__ still gets a name
        return f"<{_type_name(type(x))} with a failing repr>"


def _short(x: Any) -> str:
    text = _repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(t: type) -> str:
    module = getattr(t, "__module__", "") or ""
    name = getattr(t, "__qualname__", getattr(t, "__name__", str(t)))
    return name if module == "builtins" else f"{module}.{name}"


def _ne(path: str, a: Any, b: Any) -> str:
    return f"{_where(path)}: {_short(a)} != {_short(b)}"


def _dtype_ne(path: str, a: Any, b: Any) -> str:
    """Two dtypes by their names, or by their reprs when the names agree (``string`` of two storages)."""
    sa, sb = str(a), str(b)
    if sa == sb:
        sa, sb = _short(a), _short(b)
    return f"{_where(path)}: {sa} != {sb}"


def _float_same(a: float, b: float) -> bool:
    if a != a:
        return b != b
    return struct.pack("<d", a) == struct.pack("<d", b)


def _lib(name: str) -> Any:
    """A library the compared value's own module already loaded (never an import)."""
    return sys.modules.get(name)


# --------------------------------------------------------------------------------------------- comparison
class _Comparison:
    def __init__(self) -> None:
        self.active: set[tuple[int, int]] = set()  # pairs being compared: a cycle compares as equal

    def diff(self, a: Any, b: Any, path: str) -> str | None:
        if a is b:
            return None
        ta, tb = type(a), type(b)
        if ta is not tb:
            return f"{_where(path)}: type {_type_name(ta)} != {_type_name(tb)}"
        if ta in _SCALARS:
            return None if a == b else _ne(path, a, b)
        if ta is float:
            return None if _float_same(a, b) else _ne(path, a, b)
        if ta is complex:
            return None if _float_same(a.real, b.real) and _float_same(a.imag, b.imag) else _ne(path, a, b)
        if ta is decimal.Decimal:
            return None if a.as_tuple() == b.as_tuple() else _ne(path, a, b)
        if ta is fractions.Fraction:
            return None if a == b else _ne(path, a, b)
        module = (getattr(ta, "__module__", "") or "").split(".")[0]
        if module == "numpy":
            return self.numpy(a, b, path)
        if module == "pandas":
            return self.pandas(a, b, path)
        if module == "pyarrow":
            return self.arrow(a, b, path)
        if isinstance(a, _TIMES):
            return None if a == b and repr(a) == repr(b) else _ne(path, a, b)
        if isinstance(a, _NAMED):
            same = a == b or (
                getattr(a, "__module__", None) == getattr(b, "__module__", None)
                and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", 0)
            )
            return None if same else _ne(path, a, b)
        key = (id(a), id(b))
        if key in self.active:
            return None
        self.active.add(key)
        try:
            return self.container(a, b, path)
        finally:
            self.active.discard(key)

    # -- containers and objects
    def container(self, a: Any, b: Any, path: str) -> str | None:
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
            for i, (x, y) in enumerate(zip(a, b)):
                problem = self.diff(x, y, f"{path}[{i}]")
                if problem:
                    return problem
            return self.state(a, b, path) if hasattr(a, "__dict__") else None
        if isinstance(a, dict):
            return self.mapping(a, b, path)
        if isinstance(a, (set, frozenset)):
            return self.members(a, b, path)
        if dataclasses.is_dataclass(a):
            for f in dataclasses.fields(a):
                problem = self.diff(getattr(a, f.name, None), getattr(b, f.name, None), f"{path}.{f.name}")
                if problem:
                    return problem
            return self.state(a, b, path)
        if getattr(type(a), "__eq__", None) is _OBJECT_EQ:
            return self.state(a, b, path)
        return self.by_eq(a, b, path)

    def mapping(self, a: dict[Any, Any], b: dict[Any, Any], path: str) -> str | None:
        if len(a) != len(b):
            return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
        for i, ((ka, va), (kb, vb)) in enumerate(zip(a.items(), b.items())):
            problem = self.diff(ka, kb, f"{path}.keys()[{i}]")
            if problem:
                return problem
            problem = self.diff(va, vb, f"{path}[{_short(ka)}]")
            if problem:
                return problem
        fa, fb = getattr(a, "default_factory", None), getattr(b, "default_factory", None)
        if fa is not fb:
            return _ne(path + ".default_factory", fa, fb)
        return self.state(a, b, path) if hasattr(a, "__dict__") else None

    def members(self, a: set[Any] | frozenset[Any], b: set[Any] | frozenset[Any], path: str) -> str | None:
        if len(a) != len(b):
            return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
        in_b = {x: x for x in b}  # 1, 1.0 and True are one member: find b's and compare exactly
        nan_b = [x for x in b if isinstance(x, float) and x != x]
        for x in a:
            if isinstance(x, float) and x != x:
                if not nan_b:
                    return f"{_where(path)}: {x!r} is not a member of the second set"
                nan_b.pop()
                continue
            if x not in in_b:
                return f"{_where(path)}: {_short(x)} is not a member of the second set"
            problem = self.diff(x, in_b[x], f"{path}{{{_short(x)}}}")
            if problem:
                return problem
        return None

    def state(self, a: Any, b: Any, path: str) -> str | None:
        """Objects without an ``__eq__`` of their own: their attributes (``__dict__`` and ``__slots__``)."""
        da, db = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
        if isinstance(da, dict) and isinstance(db, dict):
            if list(da) != list(db):
                return f"{_where(path)}: attributes {_short(list(da))} != {_short(list(db))}"
            for name in da:
                problem = self.diff(da[name], db[name], f"{path}.{name}")
                if problem:
                    return problem
        missing = object()
        for cls in type(a).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name in ("__dict__", "__weakref__"):
                    continue
                problem = self.diff(getattr(a, name, missing), getattr(b, name, missing), f"{path}.{name}")
                if problem:
                    return problem
        return None

    def by_eq(self, a: Any, b: Any, path: str) -> str | None:
        """A class with its own ``__eq__``: trusted when it answers a bool, else compared by ``repr``."""
        try:
            same = a == b
        except Exception:  # noqa: BLE001 - an __eq__ that raises: repr is what is left
            same = None
        if type(same) is bool:
            return None if same else f"{_ne(path, a, b)} (by {_type_name(type(a))}.__eq__)"
        try:
            if repr(a) == repr(b):
                return None
        except Exception:  # noqa: BLE001 - nothing left to compare by
            return f"{_where(path)}: a {_type_name(type(a))} cannot be compared (its __eq__ and its repr fail)"
        return f"{_ne(path, a, b)} (compared by repr: {_type_name(type(a))} has no exact comparison)"

    # -- numpy
    def numpy(self, a: Any, b: Any, path: str) -> str | None:
        np = _lib("numpy")
        if isinstance(a, np.ndarray):
            return self.ndarray(np, a, b, path)
        if isinstance(a, np.generic):
            if a.dtype != b.dtype:
                return f"{_where(path + '.dtype')}: {a.dtype} != {b.dtype}"
            return self.values(np, np.asarray(a), np.asarray(b), path)
        if isinstance(a, np.dtype):
            return None if a == b and a.metadata == b.metadata else _ne(path, a, b)
        return self.container(a, b, path)

    def ndarray(self, np: Any, a: Any, b: Any, path: str) -> str | None:
        if a.dtype != b.dtype:
            return _dtype_ne(path + ".dtype", a.dtype, b.dtype)
        if a.dtype.metadata != b.dtype.metadata:
            return _ne(path + ".dtype.metadata", a.dtype.metadata, b.dtype.metadata)
        if a.shape != b.shape:
            return f"{_where(path + '.shape')}: {a.shape} != {b.shape}"
        la, lb = _layout(a), _layout(b)
        if la != lb:
            return f"{_where(path + '.layout')}: {la} != {lb}"
        if a.flags.writeable != b.flags.writeable:
            return f"{_where(path + '.flags.writeable')}: {a.flags.writeable} != {b.flags.writeable}"
        if isinstance(a, np.ma.MaskedArray):
            problem = self.values(np, np.ma.getmaskarray(a), np.ma.getmaskarray(b), path + ".mask")
            if problem:
                return problem
            problem = self.values(np, _fill(np, a), _fill(np, b), path + ".fill_value")
            if problem:
                return problem
            if a.hardmask != b.hardmask:
                return _ne(path + ".hardmask", a.hardmask, b.hardmask)
            a, b = a.data, b.data
        elif type(a) is not np.ndarray:
            problem = self.state(a, b, path)
            if problem:
                return problem
        return self.values(np, a, b, path)

    def values(self, np: Any, a: Any, b: Any, path: str, skip: Any = None) -> str | None:
        """Element by element, vectorised; ``a`` and ``b`` have one dtype and shape.  ``skip``: a mask of positions
        not compared (missing values of a pandas column)."""
        if a.size == 0:
            return None
        dtype = a.dtype
        if dtype.fields is not None:
            for name in dtype.names:
                problem = self.values(np, a[name], b[name], f"{path}[{name!r}]", skip)
                if problem:
                    return problem
            return None
        kind = dtype.kind
        if kind == "c":
            return self.values(np, a.real, b.real, path + ".real", skip) or self.values(
                np, a.imag, b.imag, path + ".imag", skip
            )
        if kind == "O":
            return self.objects(np, a, b, path, skip)
        if kind == "f":
            ok = _bits_equal(np, a, b)
            if not ok.all():  # NaN equals NaN whatever its payload
                ok = ok | (np.isnan(a) & np.isnan(b))
        elif kind in "mM":
            ok = a.view("i8") == b.view("i8")  # NaT is one integer: equal to itself
        elif kind == "V":
            ok = np.array([x.tobytes() == y.tobytes() for x, y in zip(a.reshape(-1), b.reshape(-1))]).reshape(a.shape)
        else:
            ok = a == b
        ok = np.asarray(ok)
        if skip is not None:
            ok = ok | skip
        if ok.all():
            return None
        at = tuple(int(i) for i in np.argwhere(~ok)[0])
        return _ne(path + _index(at), _plain(a[at]), _plain(b[at]))

    def objects(self, np: Any, a: Any, b: Any, path: str, skip: Any = None) -> str | None:
        """Object arrays: element types and ``==`` in C loops; only elements whose ``==`` is loose (floats, done
        vectorised, Decimals, containers, objects) or false are compared one by one."""
        fa, fb = a.reshape(-1), b.reshape(-1)
        n = fa.shape[0]
        todo = np.ones(n, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool).reshape(-1)
        ta, tb = list(map(type, fa)), list(map(type, fb))
        if ta != tb:
            for i in np.flatnonzero(todo):
                if ta[i] is not tb[i]:
                    return self.diff(fa[i], fb[i], path + _index(np.unravel_index(int(i), a.shape)))
        try:
            check = ~np.asarray(fa == fb, dtype=bool)
        except Exception:  # noqa: BLE001 - elements whose == is not a bool (arrays): each compared below
            check = np.ones(n, dtype=bool)
        if not set(ta) <= _EXACT_EQ:  # == says 1.0 == 1 and Decimal("1.0") == Decimal("1.00"): not enough
            check |= np.fromiter((t not in _EXACT_EQ for t in ta), dtype=bool, count=n)
        check &= todo
        if not check.any():
            return None
        floats = check & np.fromiter((t is float for t in ta), dtype=bool, count=n)
        if floats.any():
            xa, xb = fa[floats].astype(np.float64), fb[floats].astype(np.float64)
            ok = _bits_equal(np, xa, xb) | (np.isnan(xa) & np.isnan(xb))
            if not ok.all():
                i = int(np.flatnonzero(floats)[np.flatnonzero(~ok)[0]])
                return _ne(path + _index(np.unravel_index(i, a.shape)), fa[i], fb[i])
        for i in np.flatnonzero(check & ~floats):
            problem = self.diff(fa[i], fb[i], path + _index(np.unravel_index(int(i), a.shape)))
            if problem:
                return problem
        return None

    # -- pandas
    def pandas(self, a: Any, b: Any, path: str) -> str | None:
        pd = _lib("pandas")
        if isinstance(a, pd.DataFrame):
            return self.frame(pd, a, b, path)
        if isinstance(a, pd.Series):
            return (
                self.frame_meta(a, b, path)
                or self.diff(a.name, b.name, path + ".name")
                or self.index(pd, a.index, b.index, path + ".index")
                or self.column(pd, a, b, path)
            )
        if isinstance(a, pd.Index):
            return self.index(pd, a, b, path)
        if isinstance(a, pd.api.extensions.ExtensionArray):
            return self.array(pd, a, b, path)
        if isinstance(a, pd.api.extensions.ExtensionDtype):
            return self.dtype(pd, a, b, path)
        if isinstance(a, (pd.Timestamp, pd.Timedelta)):
            same = a == b and a.unit == b.unit and repr(a) == repr(b)
            return None if same else _ne(path, a, b)
        if isinstance(a, pd.Interval):
            return (
                self.diff(a.left, b.left, path + ".left")
                or self.diff(a.right, b.right, path + ".right")
                or (None if a.closed == b.closed else _ne(path + ".closed", a.closed, b.closed))
            )
        if isinstance(a, pd.Period):
            return None if a == b and repr(a) == repr(b) else _ne(path, a, b)
        return self.container(a, b, path)

    def frame_meta(self, a: Any, b: Any, path: str) -> str | None:
        problem = self.diff(dict(a.attrs), dict(b.attrs), path + ".attrs")
        if problem:
            return problem
        if a.flags.allows_duplicate_labels != b.flags.allows_duplicate_labels:
            flag = ".flags.allows_duplicate_labels"
            return _ne(path + flag, a.flags.allows_duplicate_labels, b.flags.allows_duplicate_labels)
        return None

    def frame(self, pd: Any, a: Any, b: Any, path: str) -> str | None:
        problem = (
            self.frame_meta(a, b, path)
            or self.index(pd, a.columns, b.columns, path + ".columns")
            or self.index(pd, a.index, b.index, path + ".index")
        )
        if problem:
            return problem
        for i, name in enumerate(a.columns):
            problem = self.column(pd, a.iloc[:, i], b.iloc[:, i], f"{path}[{name!r}]")
            if problem:
                return problem
        return None

    def column(self, pd: Any, a: Any, b: Any, path: str) -> str | None:
        """A Series' or Index's dtype and values (not its labels)."""
        if type(a.dtype) is not type(b.dtype) or (a.dtype != b.dtype and not isinstance(a.dtype, pd.CategoricalDtype)):
            return _dtype_ne(path + ".dtype", a.dtype, b.dtype)
        return self.array(pd, a.array, b.array, path)

    def dtype(self, pd: Any, a: Any, b: Any, path: str) -> str | None:
        if type(a) is not type(b):
            return _dtype_ne(path, a, b)
        if isinstance(a, pd.CategoricalDtype):  # == ignores the order of unordered categories: compare them
            if a.ordered != b.ordered:
                return _ne(path + ".ordered", a.ordered, b.ordered)
            if a.categories is None or b.categories is None:
                return None if a.categories is b.categories else _ne(path + ".categories", a, b)
            return self.index(pd, a.categories, b.categories, path + ".categories")
        return None if a == b else _dtype_ne(path, a, b)

    def array(self, pd: Any, a: Any, b: Any, path: str) -> str | None:
        """Two pandas arrays (ExtensionArrays, incl. numpy-backed ones) of equal length."""
        np = _lib("numpy")
        if type(a) is not type(b):
            return f"{_where(path)}: type {_type_name(type(a))} != {_type_name(type(b))}"
        if len(a) != len(b):
            return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
        problem = self.dtype(pd, a.dtype, b.dtype, path + ".dtype")
        if problem:
            return problem
        arrays = pd.arrays
        if isinstance(a, (arrays.NumpyExtensionArray, arrays.DatetimeArray, arrays.TimedeltaArray)):
            if isinstance(a.dtype, pd.DatetimeTZDtype):
                return self.values(np, a.asi8, b.asi8, path)
            return self.values(np, a.to_numpy(copy=False), b.to_numpy(copy=False), path)
        if isinstance(a, pd.Categorical):
            return self.values(np, np.asarray(a.codes), np.asarray(b.codes), path + ".codes")
        if isinstance(a, (arrays.ArrowStringArray, arrays.ArrowExtensionArray)):  # Arrow memory: Arrow's comparison
            return self.arrow_values(_lib("pyarrow"), a.__arrow_array__(), b.__arrow_array__(), path)
        if isinstance(a, (arrays.IntegerArray, arrays.FloatingArray, arrays.BooleanArray)):
            # values and mask; what lies under the mask is no value
            problem = self.values(np, a._mask, b._mask, path + ".isna()")
            return problem or self.values(np, a._data, b._data, path, skip=a._mask)
        ma, mb = np.asarray(a.isna(), dtype=bool), np.asarray(b.isna(), dtype=bool)
        problem = self.values(np, ma, mb, path + ".isna()")
        if problem:
            return problem
        return self.objects(np, a.to_numpy(dtype=object), b.to_numpy(dtype=object), path, skip=ma)

    def index(self, pd: Any, a: Any, b: Any, path: str) -> str | None:
        if type(a) is not type(b):
            return f"{_where(path)}: type {_type_name(type(a))} != {_type_name(type(b))}"
        problem = self.diff(list(a.names), list(b.names), path + ".names")
        if problem:
            return problem
        if len(a) != len(b):
            return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
        if isinstance(a, pd.RangeIndex):
            ra, rb = (a.start, a.stop, a.step), (b.start, b.stop, b.step)
            return None if ra == rb else _ne(path, a, b)
        if isinstance(a, pd.MultiIndex):
            for i, (la, lb) in enumerate(zip(a.levels, b.levels)):
                problem = self.index(pd, la, lb, f"{path}.levels[{i}]")
                if problem:
                    return problem
            for i, (ca, cb) in enumerate(zip(a.codes, b.codes)):
                problem = self.values(_lib("numpy"), ca, cb, f"{path}.codes[{i}]")
                if problem:
                    return problem
            return None
        if isinstance(a, pd.DatetimeIndex) and a.freq != b.freq:
            return _ne(path + ".freq", a.freq, b.freq)
        return self.column(pd, a, b, path)

    # -- pyarrow
    def arrow(self, a: Any, b: Any, path: str) -> str | None:
        pa = _lib("pyarrow")
        if isinstance(a, (pa.Table, pa.RecordBatch)):
            problem = self.schema(a.schema, b.schema, path + ".schema")
            if problem:
                return problem
            if a.num_rows != b.num_rows:
                return _ne(path + ".num_rows", a.num_rows, b.num_rows)
            for i, name in enumerate(a.schema.names):
                problem = self.arrow_values(pa, a.column(i), b.column(i), f"{path}[{name!r}]")
                if problem:
                    return problem
            return None
        if isinstance(a, (pa.Array, pa.ChunkedArray)):
            if a.type != b.type:
                return _ne(path + ".type", a.type, b.type)
            return self.arrow_values(pa, a, b, path)
        if isinstance(a, pa.Schema):
            return self.schema(a, b, path)
        if isinstance(a, pa.Scalar):
            if a.type != b.type:
                return _ne(path + ".type", a.type, b.type)
            return self.diff(a.as_py(), b.as_py(), path)
        if isinstance(a, (pa.DataType, pa.Field)):
            return None if a.equals(b) else _ne(path, a, b)
        return self.container(a, b, path)

    def schema(self, a: Any, b: Any, path: str) -> str | None:
        if a.equals(b, check_metadata=True):
            return None
        if a.names != b.names:
            return _ne(path + ".names", a.names, b.names)
        for fa, fb in zip(a, b):
            if fa.type != fb.type:
                return f"{_where(path)}[{fa.name!r}].type: {fa.type} != {fb.type}"
            if fa.nullable != fb.nullable:
                return _ne(f"{path}[{fa.name!r}].nullable", fa.nullable, fb.nullable)
            if fa.metadata != fb.metadata:
                return _ne(f"{path}[{fa.name!r}].metadata", fa.metadata, fb.metadata)
        return _ne(path + ".metadata", a.metadata, b.metadata)

    def arrow_values(self, pa: Any, a: Any, b: Any, path: str) -> str | None:
        if len(a) != len(b):
            return f"{_where(path + '.len()')}: {len(a)} != {len(b)}"
        bits = _float_bits(pa, a.type)
        if bits is not None:
            try:
                if _arrow_view(pa, a, bits).equals(_arrow_view(pa, b, bits)):
                    return None
            except (pa.ArrowException, TypeError, ValueError):
                pass  # a layout view refuses: the values below decide
        # no float inside (equals is exact), or NaN payloads or a real difference: as Python values, which names it
        elif a.equals(b):
            return None
        return self.diff(a.to_pylist(), b.to_pylist(), path)


def _fill(np: Any, a: Any) -> Any:
    """A masked array's fill value as it fills: in the array's dtype (numpy's default for int8, 999999, fills 63;
    numpy's own pickle keeps only that)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's own default fill overflows small dtypes: that is the point
        return np.asarray(a.fill_value).astype(a.dtype)


def _plain(x: Any) -> Any:
    """A numpy scalar as the Python value it shows (for messages)."""
    try:
        return x.tolist()
    except Exception:  # noqa: BLE001 - shown as it is
        return x


def _index(at: Any) -> str:
    at = tuple(int(i) for i in at)
    return "[" + ", ".join(str(i) for i in at) + "]" if at else ""


def _layout(arr: Any) -> str:
    if arr.flags.c_contiguous:
        return "C"
    return "F" if arr.flags.f_contiguous else "strided"


def _bits_equal(np: Any, a: Any, b: Any) -> Any:
    """Element-wise: same float bits (``-0.0`` is not ``0.0``), for two float arrays of one dtype."""
    width = a.dtype.itemsize
    if width in (2, 4, 8):  # the bits as an unsigned integer of the same width (any layout, no copy)
        return np.asarray(a.view(f"u{width}") == b.view(f"u{width}"))
    return np.asarray((a == b) & (np.signbit(a) == np.signbit(b)))  # long double: padding bytes are not bits


def _float_bits(pa: Any, t: Any) -> Any:
    """``t`` with every float replaced by the unsigned integer of its width (None: ``t`` holds no float)."""
    types_ = pa.types
    if types_.is_floating(t):
        return {16: pa.uint16(), 32: pa.uint32(), 64: pa.uint64()}[t.bit_width]
    maker: Callable[[Any], Any] | None = None
    if types_.is_large_list(t):
        maker = pa.large_list
    elif types_.is_fixed_size_list(t):
        size = t.list_size
        maker = lambda v: pa.list_(v, size)  # noqa: E731 - one line, used once
    elif types_.is_list(t):
        maker = pa.list_
    if maker is not None:
        inner = _float_bits(pa, t.value_type)
        return None if inner is None else maker(pa.field(t.value_field.name, inner, t.value_field.nullable))
    if types_.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        mapped = [_float_bits(pa, f.type) for f in fields]
        if all(m is None for m in mapped):
            return None
        return pa.struct(
            [f if m is None else pa.field(f.name, m, f.nullable, f.metadata) for f, m in zip(fields, mapped)]
        )
    if types_.is_dictionary(t):
        inner = _float_bits(pa, t.value_type)
        return None if inner is None else pa.dictionary(t.index_type, inner, t.ordered)
    if types_.is_map(t) or types_.is_union(t):
        return t if _holds_float(pa, t) else None  # no layout view: compared as Python values
    return None


def _holds_float(pa: Any, t: Any) -> bool:
    if pa.types.is_floating(t):
        return True
    return any(_holds_float(pa, t.field(i).type) for i in range(getattr(t, "num_fields", 0)))


def _arrow_view(pa: Any, arr: Any, t: Any) -> Any:
    if arr.type.equals(t):
        raise TypeError("no layout view")  # map/union with floats: left to the Python values
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([c.view(t) for c in arr.chunks], type=t)
    return arr.view(t)


__all__ = ["difference", "equal"]
