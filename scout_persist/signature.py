"""The strong signature of a job: what must match for a stored result to count as this computation's result.

One algorithm, used by the Prefect plug-in (cache hits) and by ``scout-persist info --why`` alike.  A signature is a
small JSON map kept in the job's ``.info`` under ``signature``::

    {"signature_version": 3, "inputs": {"n": "<hex>", ...}, "dependencies": "<hex>", "code": "<hex>", "version": ""}

* ``inputs``: one digest per input, by value (:func:`value_digest`), never by a per-process pickle or ``repr``;
* ``dependencies``: the direct dependencies by job key and by the *content* of their results (the checksum recorded
  in their ``.info``), so a dependency recomputed to other bytes invalidates its dependents;
* ``code``: the task's code identity (:func:`code_identity`), equal in every runner;
* ``version``: the task's ``version=``.

A change of hashing bumps :data:`SIGNATURE_VERSION`; a stored signature of another version is a miss.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import os
import pathlib
import site
import struct
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import UnsupportedValueError

SIGNATURE_VERSION = 3  # 3: dicts by their order, numpy scalars by dtype, NaN by its bits, the user's helpers
PARTS = ("inputs", "dependencies", "code", "version")
# Files up to this size are digested whole; larger ones by size, mtime and three sampled blocks.
FILE_FULL_DIGEST_MAX = 64 << 20
_SAMPLE = 1 << 20
MAX_DEPTH = 64

DIGESTIBLE = (
    "None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, dataclass instances, enums, "
    "pathlib paths, numpy arrays and scalars, pandas Series/DataFrame/Index, or an object with a "
    "__scout_digest__() method"
)


_PLAIN_TYPES = (int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)


def _hasher() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=16)


# ----------------------------------------------------------------------------------------------------- values
class _Feeder:
    """Feeds a canonical, tagged, length-prefixed encoding of a value into a hash."""

    def __init__(self, h: hashlib.blake2b, where: str) -> None:
        self.h = h
        self.where = where
        self._active: set[int] = set()

    def token(self, tag: bytes, payload: bytes = b"") -> None:
        self.h.update(tag + str(len(payload)).encode() + b":" + payload)

    def sub_digest(self, value: Any, depth: int) -> bytes:
        sub = _Feeder(_hasher(), self.where)
        sub._active = self._active
        sub.feed(value, depth)
        return sub.h.digest()

    def feed(self, value: Any, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise UnsupportedValueError(f"{self.where}: value nested deeper than {MAX_DEPTH} levels; flatten it")
        if value is None:
            return self.token(b"N")
        if value is True or value is False:
            return self.token(b"B", b"1" if value else b"0")
        hook = getattr(type(value), "__scout_digest__", None)
        if hook is not None:
            self.token(b"H", _qualname(type(value)).encode())
            return self.feed(hook(value), depth + 1)
        if isinstance(value, enum.Enum):
            self.token(b"E", f"{_qualname(type(value))}.{value.name}".encode())
            return self.feed(value.value, depth + 1)
        module = type(value).__module__.split(".")[0]
        if module == "numpy":  # before float: numpy.float64 is a float, yet computes otherwise (x / 0, overflow)
            return self._numpy(value, depth)
        if module == "datetime" and type(value).__name__ in ("date", "datetime", "time", "timedelta"):
            # by type and exact value: microseconds, UTC offset, fold, and the zone by name (two zones of one offset
            # differ across DST); a timedelta by its normalised (days, seconds, microseconds)
            zone = getattr(value, "tzinfo", None)
            exact = (
                value.isoformat()
                if hasattr(value, "isoformat")
                else f"{value.days},{value.seconds},{value.microseconds}"
            )
            named = "" if zone is None else f"@{_qualname(type(zone))}:{getattr(zone, 'key', None) or zone}"
            return self.token(b"d", f"{type(value).__name__}:{exact}:{getattr(value, 'fold', 0)}{named}".encode())
        if type(value) not in _PLAIN_TYPES and isinstance(value, _PLAIN_TYPES) and type(value).__name__ != "Symbol":
            self.token(b"t", _qualname(type(value)).encode())  # a subclass (OrderedDict, a str with methods)
        if isinstance(value, int):
            return self.token(b"i", str(int(value)).encode())
        if isinstance(value, float):
            if value != value:  # NaN: its sign and payload, which float.hex() drops
                return self.token(b"f", struct.pack(">d", value).hex().encode())
            return self.token(b"f", float(value).hex().encode())
        if isinstance(value, complex):
            return self.token(b"c", f"{value.real.hex()},{value.imag.hex()}".encode())
        if isinstance(value, str):
            tag = b"y" if type(value).__name__ == "Symbol" else b"s"
            return self.token(tag, value.encode("utf-8", "surrogatepass"))
        if isinstance(value, (bytes, bytearray, memoryview)):
            view = memoryview(value).cast("B") if isinstance(value, memoryview) else value
            self.h.update(b"b" + str(len(view)).encode() + b":")
            self.h.update(view)
            return None
        if isinstance(value, pathlib.PurePath):
            return self._path(value)
        step = getattr(value, "scout_step_path", None)
        if step is not None:
            return self.token(b"S", str(step).encode("utf-8", "surrogatepass"))
        if module == "pandas":
            return self._pandas(value, depth)
        if isinstance(value, (list, tuple, dict, set, frozenset)) or dataclasses.is_dataclass(value):
            return self._container(value, depth)
        raise UnsupportedValueError(
            f"{self.where}: a {_qualname(type(value))} value cannot be digested deterministically (its pickle or "
            f"repr may differ between processes); add the argument to ignore=(...), give the class a "
            f"__scout_digest__(self) method returning a str or bytes that identifies its content, or pass one of: "
            f"{DIGESTIBLE}"
        )

    def _container(self, value: Any, depth: int) -> None:
        marker = id(value)
        if marker in self._active:
            raise UnsupportedValueError(f"{self.where}: the value contains itself (a reference cycle); break the cycle")
        self._active.add(marker)
        try:
            if isinstance(value, list):
                self.token(b"[", str(len(value)).encode())
                for item in value:
                    self.feed(item, depth + 1)
            elif isinstance(value, tuple):
                self.token(b"(", f"{_qualname(type(value))}:{len(value)}".encode())
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
            else:  # a dataclass instance
                self.token(b"D", _qualname(type(value)).encode())
                for f in dataclasses.fields(value):
                    self.token(b"F", f.name.encode())
                    self.feed(getattr(value, f.name), depth + 1)
        finally:
            self._active.discard(marker)

    def _path(self, path: pathlib.PurePath) -> None:
        self.token(b"P", os.fspath(path).encode("utf-8", "surrogateescape"))
        if isinstance(path, pathlib.Path):
            self.token(b"C", file_content_digest(path).encode())

    def _numpy(self, value: Any, depth: int) -> None:
        import numpy as np

        if isinstance(value, np.generic):
            if value.dtype.kind == "V":
                return self._numpy(np.asarray(value), depth)
            self.token(b"g", value.dtype.str.encode())
            return self.feed(value.item(), depth + 1)
        if not isinstance(value, np.ndarray):
            raise UnsupportedValueError(
                f"{self.where}: numpy {type(value).__name__} values are not digestible; pass an ndarray"
            )
        self.token(b"A", f"{value.dtype.str}|{value.dtype.descr!r}|{value.shape}".encode())
        if value.dtype.hasobject:
            for item in value.ravel(order="C").tolist():
                self.feed(item, depth + 1)
            return None
        data = np.ascontiguousarray(value)
        self.h.update(memoryview(data).cast("B"))  # type: ignore[arg-type]  # numpy types __buffer__ for 3.12+ only
        return None

    def _pandas(self, value: Any, depth: int) -> None:
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            self.token(b"T", b"DataFrame")
            self.feed([str(c) for c in value.columns], depth + 1)
            self.feed([str(t) for t in value.dtypes], depth + 1)
            self._pandas(value.index, depth + 1)
            for column in range(value.shape[1]):
                self._pandas(value.iloc[:, column], depth + 1)
            return None
        if isinstance(value, pd.Series):
            self.token(b"T", f"Series|{value.dtype}|{value.name!r}".encode())
            self._pandas(value.index, depth + 1)
            return self._pandas_values(value, depth)
        if isinstance(value, pd.Index):
            self.token(b"T", f"{type(value).__name__}|{value.dtype}|{value.names!r}".encode())
            return self._pandas_values(value, depth)
        raise UnsupportedValueError(
            f"{self.where}: pandas {type(value).__name__} values are not digestible; pass a DataFrame, Series or Index"
        )

    def _pandas_values(self, value: Any, depth: int) -> None:
        import pandas as pd

        try:
            hashed = pd.util.hash_pandas_object(value, index=False).to_numpy()
        except TypeError:  # unhashable cells (lists, dicts): digest them one by one
            return self.feed(list(value), depth + 1)
        self.h.update(memoryview(hashed).cast("B"))
        return None


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def value_digest(value: Any, where: str = "value") -> str:
    """A deterministic digest of ``value`` by content: equal in every process, for every run.

    ``where`` names the value in errors (``"input 'n' of Baking#bake"``).  Sets digest independently of their
    iteration order, dicts by their items in order (a task may iterate them); tuples and lists differ; numpy scalars
    differ from Python numbers; numpy arrays and pandas objects digest by dtype, shape and data;
    an existing ``pathlib.Path`` by its name and its file's content.  Values that cannot be digested this way raise
    :class:`UnsupportedValueError` naming ``where``, the type and the fixes.
    """
    feeder = _Feeder(_hasher(), where)
    feeder.feed(value)
    return feeder.h.hexdigest()


def file_content_digest(path: str | os.PathLike[str]) -> str:
    """A digest of a file's content (whole up to 64 MiB; larger: size, mtime and three sampled blocks);
    ``dir`` for a folder, ``missing`` when nothing is there."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not os.path.isfile(path):
        return "dir" if os.path.isdir(path) else "special"
    h = _hasher()
    with open(path, "rb") as fh:
        if st.st_size <= FILE_FULL_DIGEST_MAX:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        else:
            h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
            for offset in (0, st.st_size // 2, max(st.st_size - _SAMPLE, 0)):
                fh.seek(offset)
                h.update(fh.read(_SAMPLE))
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ code identity
_code_cache: dict[tuple[int, int], tuple[Any, Any, str, _Witnesses]] = {}
_code_guard = threading.Lock()
MAX_CODE_CACHE = 4096
_SIMPLE_CONSTANTS = (type(None), bool, int, float, complex, str, bytes)
MAX_CONSTANT_ITEMS = 100_000  # per container of a module or class constant
MAX_CONSTANT_DEPTH = 6


def code_identity(fn: Any) -> str:
    """What the task's code is, the same in the flow process, a thread, a process pool and a Dask worker.

    Built from the code objects that run, never from the source file on disk (which may have been edited since
    the code was loaded, and is not there on every worker): bytecode, constants (nested code recursively), names,
    default values, closure values, and — recursively — the functions and classes it refers to that are the user's
    own code, named directly (``helper(x)``, ``from helpers import helper``) or through a module (``helpers.f(x)``),
    with the plain data it reads from those modules (numbers, strings, and bounded lists, tuples, sets and dicts of
    them).  The user's own code is the task's module and any code outside the standard library, the installed
    packages and the scout/Prefect packages: a library is its installed version, not part of the task.  Docstrings,
    comments, line numbers and the file's location do not count.  A helper reloaded or a global rebound at run time
    (``importlib.reload``, notebook autoreload) is seen at the next call; a list, set or dict mutated in place counts
    as this process first saw it (a memo a task fills is not a change of its code).
    """
    target = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(target, "__code__", None)
    # Functions sharing code and module differ only by defaults and closure values: those are not cached.
    cacheable = (
        code is not None
        and not getattr(target, "__closure__", None)
        and not target.__defaults__
        and not target.__kwdefaults__
    )
    glob = getattr(target, "__globals__", None)
    key = (id(code), id(glob))
    if cacheable:
        with _code_guard:
            hit = _code_cache.get(key)
        if hit is not None and hit[0] is code and hit[1] is glob and hit[3].unchanged():
            return hit[2]
    h = _hasher()
    feeder = _CodeFeeder(h)
    feeder.function(target)
    digest = h.hexdigest()
    if cacheable:
        with _code_guard:
            if len(_code_cache) >= MAX_CODE_CACHE:
                _code_cache.clear()
            _code_cache[key] = (code, glob, digest, feeder.witnesses)
    return digest


class _Witnesses:
    """What a cached code identity was built from, checked by identity on every reuse (microseconds): a name that
    now holds another object (a reloaded helper, a rebound constant) or a function given other code is a change."""

    __slots__ = ("bindings", "codes")

    def __init__(self) -> None:
        self.bindings: list[tuple[Mapping[str, Any], str, Any]] = []
        self.codes: list[tuple[Any, types.CodeType]] = []

    def unchanged(self) -> bool:
        return all(ns.get(name, _GONE) is obj for ns, name, obj in self.bindings) and all(
            fn.__code__ is code for fn, code in self.codes
        )


_GONE = object()


class _CodeFeeder:
    def __init__(self, h: hashlib.blake2b) -> None:
        self.h = h
        self.seen: set[int] = set()
        self.seen_attrs: set[tuple[int, str]] = set()
        self.witnesses = _Witnesses()

    def put(self, tag: str, payload: bytes | str = b"") -> None:
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        self.h.update(tag.encode() + str(len(data)).encode() + b":" + data)

    def value(self, tag: str, value: Any) -> None:
        """A default, closure or constant value: by content when digestible, else by its type only."""
        if callable(value) and not isinstance(value, type) and getattr(value, "__code__", None) is not None:
            return self.function(value)
        try:
            self.put(tag, value_digest(value))
        except UnsupportedValueError:
            self.put(tag + "t", _qualname(type(value)))
        return None

    def function(self, fn: Any) -> None:
        if isinstance(fn, functools.partial):
            self.put("partial")
            self.function(fn.func)
            for arg in fn.args:
                self.value("pa", arg)
            for name in sorted(fn.keywords):
                self.put("pk", name)
                self.value("pv", fn.keywords[name])
            return
        if isinstance(fn, (types.MethodType, staticmethod, classmethod)):
            return self.function(fn.__func__)
        fn = inspect.unwrap(fn)
        code = getattr(fn, "__code__", None)
        if code is None:
            call = getattr(type(fn), "__call__", None)  # noqa: B004 - the class's __call__ itself, for its code
            if call is not None and getattr(call, "__code__", None) is not None:
                self.put("callable", _qualname(type(fn)))
                return self.function(call)
            self.put("opaque", _qualname(type(fn)))
            return
        if id(fn) in self.seen:
            self.put("again", fn.__qualname__)
            return
        self.seen.add(id(fn))
        self.witnesses.codes.append((fn, code))
        self.code(code, function_doc=(fn.__doc__,))
        for default in fn.__defaults__ or ():
            self.value("d", default)
        for name, default in sorted((fn.__kwdefaults__ or {}).items()):
            self.put("kd", name)
            self.value("kv", default)
        for cell in fn.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (not yet assigned)
                self.put("empty-cell")
                continue
            self.value("cl", content)
        self.globals_of(fn, code)

    def code(self, code: types.CodeType, function_doc: tuple[Any, ...] = ()) -> None:
        self.put("code", code.co_code)
        self.put("flags", str(code.co_flags))
        self.put("args", f"{code.co_argcount},{code.co_posonlyargcount},{code.co_kwonlyargcount}")
        self.put("names", "\0".join(code.co_names))
        self.put("vars", "\0".join(code.co_varnames))
        self.put("free", "\0".join(code.co_freevars))
        self.put("cell", "\0".join(code.co_cellvars))
        consts = list(code.co_consts)
        if function_doc and consts and consts[0] == function_doc[0]:
            consts = consts[1:]  # a function's docstring slot (None without one): documentation, not behaviour
        for const in consts:
            if isinstance(const, types.CodeType):
                self.code(const)
            else:
                self.put("const", value_digest(const))

    def globals_of(self, fn: Any, code: types.CodeType) -> None:
        module = getattr(fn, "__module__", None)
        glob = getattr(fn, "__globals__", None) or {}
        names = set(_all_names(code))
        for name in sorted(names):
            if name in glob:
                self.witnesses.bindings.append((glob, name, glob[name]))
                self.referenced(name, glob[name], module, names)

    @staticmethod
    def is_users(fn: Any, module: str | None) -> bool:
        """A function of the referring code's module, or of the user's code anywhere."""
        return isinstance(fn, types.FunctionType) and (fn.__module__ == module or _is_user_function(fn))

    def referenced(self, name: str, value: Any, module: str | None, names: set[str]) -> None:
        """A global the code names: followed when it is the user's code or a simple constant, else not digested."""
        if callable(value) and type(value).__module__.partition(".")[0] in _FRAMEWORK:
            return  # a Prefect task or flow the code calls: a job (or run) of its own, with its own identity
        # a decorated helper (functools.wraps, lru_cache) is its wrapped function
        target = inspect.unwrap(value) if callable(value) and hasattr(value, "__wrapped__") else value
        if self.is_users(target, module):
            self.put("g", name)
            self.function(target)
        elif isinstance(target, type) and (target.__module__ == module or _is_user_class(target)):
            self.put("gc", name)
            self.klass(target)
        elif isinstance(target, types.ModuleType) and _is_user_module(target):
            # ``helpers.f(x)``: the module's attributes the code names (co_names holds attribute names too)
            self.put("gm", name)
            members = vars(target)
            for attr in sorted(names):
                if attr in members and (id(target), attr) not in self.seen_attrs:
                    self.seen_attrs.add((id(target), attr))
                    self.witnesses.bindings.append((members, attr, members[attr]))
                    self.referenced(attr, members[attr], target.__name__, names)
        elif isinstance(target, (list, set, dict)):
            self.put("gk", name)
            self.put("gv", _first_seen_digest(target))
        elif _is_simple_constant(target):
            self.put("gk", name)
            self.put("gv", value_digest(target))
        elif isinstance(target, (tuple, frozenset)):  # past the bounds of plain data: its size at least
            self.put("gz", f"{name}:{type(target).__name__}:{len(target)}")
        elif isinstance(target, functools.partial) and self.is_users(inspect.unwrap(target.func), module):
            self.put("gp", name)  # ``scale = partial(_scale, factor=7)``: the function and its bound values
            self.function(target)
        elif type(target).__module__ == module or _is_user_class(type(target)):
            # ``scaler = Scaler(7)``: an instance of the user's class, by its class and its plain attributes
            self.put("gi", name)
            self.klass(type(target))
            state = getattr(target, "__dict__", None)
            if isinstance(state, dict):
                self.put("gs", _first_seen_digest(state))

    def klass(self, cls: type) -> None:
        if id(cls) in self.seen:
            self.put("again", cls.__qualname__)
            return
        self.seen.add(id(cls))
        self.put("bases", ",".join(_qualname(b) for b in cls.__bases__))
        for name, member in sorted(vars(cls).items()):
            if isinstance(member, (types.FunctionType, staticmethod, classmethod)):
                self.put("m", name)
                self.function(member)
            elif isinstance(member, property):
                for accessor in (member.fget, member.fset, member.fdel):
                    if accessor is not None:
                        self.put("p", name)
                        self.function(accessor)
            elif isinstance(member, (list, set, dict)) and not name.startswith("__"):
                self.put("ca", name)
                self.put("cv", _first_seen_digest(member))
            elif _is_simple_constant(member) and not name.startswith("__"):
                self.put("ca", name)
                self.put("cv", value_digest(member))


def _all_names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _all_names(const)


# Code of these packages is the framework's, not the task's: an upgrade of scout-persist or Prefect is no code change.
_FRAMEWORK = frozenset({"scout_persist", "prefect_scout", "prefect"})


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """The folders of the standard library and of installed packages (this interpreter's and the user's)."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    roots.update(getattr(site, "getsitepackages", list)())
    roots.add(site.getusersitepackages())
    return tuple(sorted({os.path.join(os.path.realpath(r), "") for r in roots if r}))


@functools.lru_cache(maxsize=4096)
def _is_library_file(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...> is the standard library; <string>, <ipython-input-...> are the user's
        return filename.startswith("<frozen")
    return os.path.realpath(filename).startswith(_library_roots())


def _is_user_function(fn: types.FunctionType) -> bool:
    """By the file its code was compiled from, which travels with the code to process-pool and Dask workers."""
    if (fn.__module__ or "").partition(".")[0] in _FRAMEWORK:
        return False
    return not _is_library_file(fn.__code__.co_filename)


def _is_user_class(cls: type) -> bool:
    """By its module's file; a class whose module is not imported here (sent by value) by its methods' file."""
    module = sys.modules.get(cls.__module__)
    if module is not None and getattr(module, "__file__", None) is not None:
        return _is_user_module(module)
    for member in vars(cls).values():
        member = getattr(member, "__func__", member)  # staticmethod, classmethod
        if isinstance(member, types.FunctionType) and member.__code__.co_filename != "<string>":  # not generated
            return _is_user_function(member)
    return False


def _is_user_module(module: types.ModuleType) -> bool:
    filename = getattr(module, "__file__", None)  # None: built in, or a namespace package
    if filename is None or module.__name__.partition(".")[0] in _FRAMEWORK:
        return False
    return not _is_library_file(filename)


_first_seen: dict[int, tuple[Any, str]] = {}


def _first_seen_digest(container: list[Any] | set[Any] | dict[Any, Any]) -> str:
    """A mutable module or class container as this process first saw it, which is as its source defines it when a
    task first reads it: a task that fills a memo dict or appends to a log list must not change its own code.  A
    container past the bounds of plain data is known by its type and size."""
    with _code_guard:
        seen = _first_seen.get(id(container))
    if seen is not None and seen[0] is container:
        return seen[1]
    if _is_simple_constant(container):
        digest = value_digest(container)
    else:
        digest = f"{type(container).__name__}:{len(container)}"
    with _code_guard:
        if len(_first_seen) >= MAX_CODE_CACHE:
            _first_seen.clear()
        seen = _first_seen.get(id(container))
        if seen is None or seen[0] is not container:  # (an id of a container since collected is reused)
            seen = _first_seen[id(container)] = (container, digest)
        return seen[1]


def _is_simple_constant(value: Any, depth: int = 0) -> bool:
    """Plain data a module or class holds (``FACTOR = 7``, ``PARAMS = {"k": [1, 2]}``): part of the code that reads
    it.  Bounded, so a large table loaded at import time is not hashed: such data belongs in an input."""
    if isinstance(value, _SIMPLE_CONSTANTS):
        return True
    if depth >= MAX_CONSTANT_DEPTH or not isinstance(value, (tuple, frozenset, list, set, dict)):
        return False
    if len(value) > MAX_CONSTANT_ITEMS:
        return False
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    return all(_is_simple_constant(v, depth + 1) for v in items)


# ----------------------------------------------------------------------------------------------- signatures
def dependency_token(key: str, info: Mapping[str, Any] | None) -> str:
    """How a dependency enters its dependents' signature: its job key and the checksum of its result bytes.

    Jobs without a recorded checksum (Ruby's own) count by their ``end`` time, so a Ruby rerun of them is seen.
    """
    from .payload import record_of

    record = record_of(info or {}) if info else None
    if record is not None:
        content = record.get("checksum") or record.get("format") or "none"
    else:
        content = "legacy:" + str((info or {}).get("end") or "")
    return f"{key}={content}"


def compute(
    inputs: Mapping[str, Any],
    dependencies: Sequence[str],
    code: str,
    version: Any = None,
    where: str = "task",
) -> dict[str, Any]:
    """The signature of one computation: ``inputs`` by value (name -> value), ``dependencies`` as
    :func:`dependency_token` strings in order, the task's :func:`code_identity` and its ``version``."""
    return {
        "signature_version": SIGNATURE_VERSION,
        "inputs": {name: value_digest(value, f"input {name!r} of {where}") for name, value in inputs.items()},
        "dependencies": dependencies_digest(dependencies),
        "code": code,
        "version": "" if version is None else str(version),
    }


def dependencies_digest(tokens: Sequence[str]) -> str:
    """The ``dependencies`` part of a signature from the :func:`dependency_token` of each direct dependency."""
    h = _hasher()
    for token in tokens:
        h.update(token.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def changed_parts(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """The parts of ``current`` that ``stored`` differs in; ``["signature_version"]`` when it was computed by
    another algorithm (or is missing or malformed)."""
    if not isinstance(stored, Mapping) or stored.get("signature_version") != current.get("signature_version"):
        return ["signature_version"]
    return [part for part in PARTS if stored.get(part) != current.get(part)]


def changed_inputs(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Names of the inputs whose digests differ between two signatures of the same version."""
    a, b = stored.get("inputs") or {}, current.get("inputs") or {}
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def stored_signature(info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The signature recorded in a job's ``.info`` (None for jobs that carry none, e.g. Ruby's)."""
    sig = info.get("signature")
    if isinstance(sig, Mapping):
        return sig
    legacy = (info.get("prefect") or {}).get("signature") if isinstance(info.get("prefect"), Mapping) else None
    return legacy if isinstance(legacy, Mapping) else None


__all__ = [
    "SIGNATURE_VERSION",
    "changed_inputs",
    "changed_parts",
    "code_identity",
    "compute",
    "dependencies_digest",
    "dependency_token",
    "file_content_digest",
    "stored_signature",
    "value_digest",
]
