"""Value digests: a deterministic digest of a value by everything a computation can observe of it.

The rule: two values digest equal only when no ordinary computation can tell them apart — same exact types all the
way down (``1`` is not ``1.0``, ``[1]`` not ``(1,)``, a ``defaultdict(int)`` not a ``defaultdict(list)``), same float
bits (``-0.0`` is not ``0.0``), dict order, numpy dtype, shape, memory order and mask, pandas index and column labels
by type, categories and their order, ``attrs``, ``freq`` and time zones; a ``Path`` by its name and what it names on
disk (a folder recursively, a file by its whole content).  Values of the user's own classes carry the identity of
their class's code: a method edited is a different input.  Sets and frozensets digest independently of their
iteration order, so the digest is the same in every process, whatever its hash seed.

Values that cannot be digested this way raise :class:`UnsupportedValueError` naming where the value was, its type
and the fixes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import fractions
import hashlib
import os
import pathlib
import re
import stat
import struct
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from .errors import UnsupportedValueError

MAX_DEPTH = 64
_CHUNK = 1 << 20

DIGESTIBLE = (
    "None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, Decimal, Fraction, dates and "
    "times, UUID, range, dataclass instances, enums, pathlib paths, numpy arrays and scalars, pandas Series/DataFrame/"
    "Index, or an object with a __scout_digest__() method"
)

_PLAIN_TYPES = (int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)


def hasher() -> hashlib.blake2b:
    """The hash every digest of the signature uses."""
    return hashlib.blake2b(digest_size=16)


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# The identity of a user class's code (set by scout_persist.codeidentity, which imports this module): a value of the
# user's own class computes with that class's methods.  None for library classes.
class_identity: Callable[[type], str | None] = lambda cls: None  # noqa: E731 - replaced at import of codeidentity
# The identity of a function or other code object passed as a value (``f=min``, a user function): by its code
# identity, a library one by its qualified name and version; None when it is not code.
code_value_identity: Callable[[Any], str | None] = lambda value: None  # noqa: E731 - replaced likewise


class Feeder:
    """Feeds a canonical, tagged, length-prefixed encoding of a value into a hash."""

    def __init__(self, h: Any, where: str) -> None:
        self.h = h
        self.where = where
        self._active: set[int] = set()

    def token(self, tag: bytes, payload: bytes = b"") -> None:
        self.h.update(tag + str(len(payload)).encode() + b":" + payload)

    def text(self, tag: bytes, text: str) -> None:
        self.token(tag, text.encode("utf-8", "surrogatepass"))

    def sub_digest(self, value: Any, depth: int) -> bytes:
        sub = Feeder(hasher(), self.where)
        sub._active = self._active
        sub.feed(value, depth)
        return bytes(sub.h.digest())

    def refuse(self, what: str) -> UnsupportedValueError:
        return UnsupportedValueError(
            f"{self.where}: {what} cannot be digested deterministically (its pickle or repr may differ between "
            f"processes, or miss what a computation sees); add the argument to ignore=(...), give the class a "
            f"__scout_digest__(self) method returning a value that identifies its content, or pass one of: "
            f"{DIGESTIBLE}"
        )

    def feed(self, value: Any, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise UnsupportedValueError(f"{self.where}: value nested deeper than {MAX_DEPTH} levels; flatten it")
        if value is None:
            return self.token(b"N")
        if value is True or value is False:
            return self.token(b"B", b"1" if value else b"0")
        cls = type(value)
        hook = getattr(cls, "__scout_digest__", None)
        if hook is not None:
            self._user_class(cls, b"H")
            return self.feed(hook(value), depth + 1)
        if isinstance(value, enum.Enum):
            self._user_class(cls, b"E")
            self.text(b"e", value.name)
            return self.feed(value.value, depth + 1)
        module = cls.__module__.partition(".")[0]
        if module == "numpy":  # before float: numpy.float64 is a float, yet computes otherwise (x / 0, overflow)
            return self._numpy(value, depth)
        if module == "pandas":
            return self._pandas(value, depth)
        if cls not in _PLAIN_TYPES and isinstance(value, _PLAIN_TYPES) and cls.__name__ != "Symbol":
            self._user_class(cls, b"t")  # a subclass (OrderedDict, a str with methods, a namedtuple)
            if isinstance(value, defaultdict):
                self.text(b"df", _callable_name(value.default_factory))
        if isinstance(value, int):
            return self.token(b"i", str(int(value)).encode())
        if isinstance(value, float):
            return self.token(b"f", struct.pack(">d", value))  # the bits: -0.0 and each NaN payload stay apart
        if isinstance(value, complex):
            return self.token(b"c", struct.pack(">dd", value.real, value.imag))
        if isinstance(value, str):
            return self.text(b"y" if cls.__name__ == "Symbol" else b"s", value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            tag = b"b" if isinstance(value, bytes) else b"a" if isinstance(value, bytearray) else b"m"
            view = memoryview(value).cast("B") if isinstance(value, memoryview) else value
            self.h.update(tag + str(len(view)).encode() + b":")
            self.h.update(view)
            return None
        if isinstance(value, pathlib.PurePath):
            return self._path(value)
        step = getattr(value, "scout_step_path", None)
        if step is not None:
            return self.text(b"S", str(step))
        if isinstance(value, (list, tuple, dict, set, frozenset)) or dataclasses.is_dataclass(value):
            return self._container(value, depth)
        if isinstance(value, decimal.Decimal):  # by its exact tuple: Decimal('1.0') and Decimal('1.00') differ
            return self.text(b"Dec", repr(value.as_tuple()))
        if isinstance(value, fractions.Fraction):
            return self.text(b"Q", f"{value.numerator}/{value.denominator}")
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time, _dt.timedelta)):
            return self._time(value)
        if isinstance(value, uuid.UUID):
            return self.text(b"U", str(value))
        if isinstance(value, range):
            return self.text(b"R", f"{value.start}:{value.stop}:{value.step}")
        if isinstance(value, re.Pattern):
            self.text(b"re", f"{int(value.flags)}")
            return self.feed(value.pattern, depth + 1)
        if callable(value):
            code = code_value_identity(value)
            if code is not None:
                return self.text(b"fn", code)
        raise self.refuse(f"a {qualname(cls)} value")

    def _user_class(self, cls: type, tag: bytes) -> None:
        code = class_identity(cls)
        if code is None:
            self.text(tag, qualname(cls))
        else:  # the user's class: by its name and its code (its module is __main__ in a script, else its name)
            self.text(tag, cls.__qualname__)
            self.text(b"K", code)

    def _container(self, value: Any, depth: int) -> None:
        marker = id(value)
        if marker in self._active:
            raise UnsupportedValueError(f"{self.where}: the value contains itself (a reference cycle); break the cycle")
        self._active.add(marker)
        try:
            if isinstance(value, (list, tuple)) and self._uniform(value):
                pass
            elif isinstance(value, list):
                self.token(b"[", str(len(value)).encode())
                for item in value:
                    self.feed(item, depth + 1)
            elif isinstance(value, tuple):
                self.token(b"(", f"{len(value)}".encode())
                for item in value:
                    self.feed(item, depth + 1)
            elif isinstance(value, dict):  # in order: a task that iterates a dict sees its order
                self.token(b"{", str(len(value)).encode())
                for key, item in value.items():
                    self.feed(key, depth + 1)
                    self.feed(item, depth + 1)
            elif isinstance(value, (set, frozenset)):
                tag = b"<" if isinstance(value, set) else b">"
                self.token(tag, b"".join(sorted(self.sub_digest(item, depth + 1) for item in value)))
            else:  # a dataclass instance: its class (and its code, when the user's) and its fields
                self._user_class(type(value), b"D")
                for f in dataclasses.fields(value):
                    self.text(b"F", f.name)
                    self.feed(getattr(value, f.name), depth + 1)
        finally:
            self._active.discard(marker)

    def _uniform(self, value: list[Any] | tuple[Any, ...]) -> bool:
        """A long list or tuple of only ``str``, only ``int`` or only ``float`` items in one pass (a list option of
        200 000 numbers digests in milliseconds); False for anything else, which is fed item by item."""
        if len(value) < 16:
            return False
        first = type(value[0])
        if first not in (str, int, float) or not all(type(item) is first for item in value):
            return False
        kind = b"[" if isinstance(value, list) else b"("
        if first is float:
            self.token(kind + b"f", struct.pack(f">{len(value)}d", *value))
        elif first is int:
            self.token(kind + b"i", ",".join(map(str, value)).encode())
        else:
            encoded = [item.encode("utf-8", "surrogatepass") for item in value]
            self.token(kind + b"s", b"".join(b"%d:%s" % (len(e), e) for e in encoded))
        return True

    def _time(self, value: Any) -> None:
        self.text(b"T", type(value).__name__)
        if isinstance(value, _dt.timedelta):
            return self.text(b"td", f"{value.days},{value.seconds},{value.microseconds}")
        tz = getattr(value, "tzinfo", None)
        fold = getattr(value, "fold", 0)
        self.text(b"ti", f"{value.isoformat()}|{fold}|{_tz_name(tz)}")
        return None

    def _path(self, path: pathlib.PurePath) -> None:
        self.text(b"P", f"{type(path).__name__}:" + os.fspath(path).encode("utf-8", "surrogateescape").hex())
        if isinstance(path, pathlib.Path):
            self.text(b"C", path_content_digest(path))
            text = os.fspath(path)
            if text.startswith("~"):  # a task that expands it reads the home's file
                self.text(b"~", path_content_digest(path.expanduser()))

    # ------------------------------------------------------------------------------------------------ numpy
    def _numpy(self, value: Any, depth: int) -> None:
        import numpy as np  # optional (arrays extra): only numpy values need it

        if isinstance(value, np.generic):
            if value.dtype.kind == "V":
                return self._numpy(np.asarray(value), depth)
            self.text(b"g", value.dtype.str)
            if value.dtype.hasobject:
                return self.feed(value.item(), depth + 1)
            return self.token(b"gb", np.asarray(value).tobytes())
        if isinstance(value, np.dtype):
            return self.text(b"dt", f"{value.str}|{value.descr!r}")
        if not isinstance(value, np.ndarray):
            raise self.refuse(f"a numpy {type(value).__name__} value (pass an ndarray)")
        self.numpy_array(value, depth)
        return None

    def numpy_array(self, value: Any, depth: int) -> None:
        import numpy as np  # optional (arrays extra): only numpy values need it

        order = "F" if value.flags.f_contiguous and not value.flags.c_contiguous else "C"
        self.text(b"A", f"{qualname(type(value))}|{value.dtype.str}|{value.dtype.descr!r}|{value.shape}|{order}")
        if isinstance(value, np.ma.MaskedArray):
            self.numpy_array(np.ma.getmaskarray(value), depth + 1)
            self.feed(value.fill_value, depth + 1)
            value = value.data
        if value.dtype.hasobject:
            for item in value.ravel(order="C").tolist():
                self.feed(item, depth + 1)
            return
        data = np.ascontiguousarray(value)
        if data.size:
            self.h.update(memoryview(data.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]  # numpy buffers

    # ----------------------------------------------------------------------------------------------- pandas
    def _pandas(self, value: Any, depth: int) -> None:
        import pandas as pd  # optional (frames extra): only pandas values need it

        if isinstance(value, pd.DataFrame):
            self.text(b"T", qualname(type(value)))
            self._pandas_index(value.columns, depth + 1)
            self._pandas_index(value.index, depth + 1)
            for position in range(value.shape[1]):
                self._pandas_array(value.iloc[:, position].array, depth + 1)
            self.feed(dict(value.attrs), depth + 1)
            self.token(b"fl", str(value.flags.allows_duplicate_labels).encode())
            return None
        if isinstance(value, pd.Series):
            self.text(b"T", qualname(type(value)))
            self.feed(value.name, depth + 1)
            self._pandas_index(value.index, depth + 1)
            self._pandas_array(value.array, depth + 1)
            self.feed(dict(value.attrs), depth + 1)
            return None
        if isinstance(value, pd.Index):
            return self._pandas_index(value, depth)
        if isinstance(value, pd.api.extensions.ExtensionDtype):
            return self.text(b"xd", _dtype_text(value))
        if isinstance(value, (pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval)):
            self.text(b"pt", qualname(type(value)))
            return self.text(b"pv", f"{value!r}")
        if value is pd.NaT or value is pd.NA:
            return self.text(b"pn", repr(value))
        raise self.refuse(f"a pandas {type(value).__name__} value (pass a DataFrame, Series or Index)")

    def _pandas_index(self, index: Any, depth: int) -> None:
        import pandas as pd  # optional (frames extra): only pandas values need it

        self.text(b"I", f"{qualname(type(index))}|{_dtype_text(index.dtype)}")
        self.feed(list(index.names), depth + 1)
        if isinstance(index, pd.MultiIndex):
            for level, codes in zip(index.levels, index.codes):
                self._pandas_index(level, depth + 1)
                self.numpy_array(np_array(codes), depth + 1)
            return
        freq = getattr(index, "freq", None)
        if freq is not None:
            self.text(b"fq", str(freq))
        self._pandas_array(index.array, depth + 1)

    def _pandas_array(self, array: Any, depth: int) -> None:
        """One column's values: numbers by their bits, objects one by one (with their types), categoricals by codes,
        categories and order, nullable arrays by data and mask, anything else item by item."""
        import numpy as np  # optional (arrays extra): only numpy values need it
        import pandas as pd  # optional (frames extra): only pandas values need it

        self.text(b"pa", f"{qualname(type(array))}|{_dtype_text(array.dtype)}")
        if isinstance(array, pd.Categorical):
            self._pandas_index(array.categories, depth + 1)
            self.token(b"o", b"1" if array.ordered else b"0")
            return self.numpy_array(np.asarray(array.codes), depth + 1)
        if isinstance(array, pd.arrays.DatetimeArray | pd.arrays.TimedeltaArray | pd.arrays.PeriodArray):
            return self.numpy_array(np.asarray(array.asi8), depth + 1)
        data, mask = getattr(array, "_data", None), getattr(array, "_mask", None)
        if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray):  # nullable Int64, boolean, Float64
            self.numpy_array(mask, depth + 1)
            return self.numpy_array(np.where(mask, np.zeros((), data.dtype), data), depth + 1)
        if isinstance(array, pd.arrays.NumpyExtensionArray):
            return self.numpy_array(array.to_numpy(), depth + 1)
        items = list(array)
        self.token(b"pl", str(len(items)).encode())
        for item in items:
            self.feed(item, depth + 1)
        return None


def np_array(values: Any) -> Any:
    import numpy as np  # optional (arrays extra): only numpy values need it

    return np.asarray(values)


def _dtype_text(dtype: Any) -> str:
    """A dtype with everything that changes how its values compute (categories and order, time zone, unit)."""
    categories = getattr(dtype, "categories", None)
    if categories is not None:
        kinds = [type(c).__qualname__ for c in categories]
        return f"category|{list(categories)!r}|{kinds}|ordered={dtype.ordered}"
    return f"{type(dtype).__qualname__}|{dtype}"


def _tz_name(tz: Any) -> str:
    if tz is None:
        return ""
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    return f"{type(tz).__qualname__}:{key or tz!r}"


def _callable_name(fn: Any) -> str:
    if fn is None:
        return "None"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{name}"


def value_digest(value: Any, where: str = "value") -> str:
    """A deterministic digest of ``value`` by content: equal in every process, for every run (see the module doc).

    ``where`` names the value in errors (``"input 'n' of Baking#bake"``).
    """
    h = hasher()
    Feeder(h, where).feed(value)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------- files on disk
_stat_cache: dict[tuple[int, int, int, int, int, str], str] = {}
_stat_guard = threading.Lock()
MAX_STAT_CACHE = 65536


def file_content_digest(path: str | os.PathLike[str]) -> str:
    """A digest of what ``path`` names: a file by its whole content (cached per process by device, inode, size,
    mtime and ctime, so a file rewritten in place is read again), a folder by its entries recursively, ``missing``
    when nothing is there."""
    return path_content_digest(pathlib.Path(path))


def path_content_digest(path: pathlib.Path) -> str:
    try:
        st = os.lstat(path)
    except OSError:
        return "missing"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        h = hasher()
        h.update(b"link:" + os.fsencode(target) + b"\0")
        h.update(path_content_digest(_follow(path)).encode())
        return h.hexdigest()
    if stat.S_ISDIR(st.st_mode):
        return _folder_digest(path)
    if not stat.S_ISREG(st.st_mode):
        return "special"
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, os.fspath(path))
    with _stat_guard:
        known = _stat_cache.get(key)
    if known is not None:
        return known
    h = hasher()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    digest = h.hexdigest()
    with _stat_guard:
        if len(_stat_cache) >= MAX_STAT_CACHE:
            _stat_cache.clear()
        _stat_cache[key] = digest
    return digest


def _follow(path: pathlib.Path) -> pathlib.Path:
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling or looping link
        return path / "\0missing"


def _folder_digest(path: pathlib.Path, depth: int = 0) -> str:
    h = hasher()
    h.update(b"dir:")
    if depth > MAX_DEPTH:
        h.update(b"too-deep")
        return h.hexdigest()
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    for name in names:
        child = path / name
        h.update(os.fsencode(name) + b"\0")
        if child.is_dir() and not child.is_symlink():
            h.update(_folder_digest(child, depth + 1).encode())
        else:
            h.update(path_content_digest(child).encode())
        h.update(b"\n")
    return h.hexdigest()


__all__ = ["DIGESTIBLE", "Feeder", "file_content_digest", "hasher", "path_content_digest", "qualname", "value_digest"]
