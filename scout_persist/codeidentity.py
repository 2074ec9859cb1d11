"""Code identity: what a task's code is, the same in the flow process, a thread, a process pool and a Dask worker.

Built from the objects that run, never from the source file on disk (which may have been edited since the code was
loaded, and is not there on every worker).  The identity is a set of named *components*, each digested on its own:

* a function of the user's (any code outside the standard library, the installed packages and scout/Prefect): its
  bytecode, constants, names, default values, closure values, and what it refers to — globals it reads, modules it
  reads attributes of (``helpers.f``, ``getattr(helpers, "f")``), modules it imports inside its body;
* a class of the user's: its bases (inherited methods), methods, static and class methods, properties, cached
  properties, nested classes, class attributes (functions held there included), dataclass fields and enum members;
* a constant the code reads (a module global that is not code): its value by content (numbers, strings, containers,
  numpy arrays, Decimals, compiled patterns, enums, ...), an instance of the user's class by its class and state; as
  this process first saw it, so a memo a task fills is not a change of its code;
* a library object (``np.mean``, ``min``, ``partial(operator.mul, 3)``'s ``operator.mul``, a library module): its
  qualified name and the version of the distribution it comes from (the standard library by name only).

Each component records the *names* of the components it refers to; the identity is the digest of all components
reached, so an edit anywhere is seen and :func:`changed_components` names what changed.  Docstrings, comments,
line numbers and the file's location do not count.  What cannot be followed (an instance of a library class, a
container too large to digest) is named in :attr:`CodeIdentity.not_followed` — the plug-in warns once per task —
and counts by its type only; pin such a task with ``version=``.
"""

from __future__ import annotations

import ast
import dataclasses
import dis
import enum
import functools
import importlib
import importlib.util
import logging
import os
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from . import valuedigest
from .errors import UnsupportedValueError
from .valuedigest import hasher, qualname, value_digest

log = logging.getLogger("scout_persist.identity")

# Code of these packages is the framework's, not the task's: an upgrade of scout-persist or Prefect is no code change.
_FRAMEWORK = frozenset({"scout_persist", "prefect_scout", "prefect"})
MAX_CONSTANT_ITEMS = 1_000_000  # a Python container read by the code, larger than this, is known by its size only
MAX_CACHE = 4096
PART_DIGEST = 16  # hex characters kept per component (naming what changed; the identity uses whole digests)
_SKIPPED_CLASS_ATTRS = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__dict__",
        "__weakref__",
        "__annotations__",
        "__firstlineno__",
        "__static_attributes__",
        "__orig_bases__",
        "__parameters__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
        "__hash__",
        "_member_map_",
        "_member_names_",
        "_member_type_",
        "_value2member_map_",
        "_unhashable_values_",
        "_new_member_",
        "_use_args_",
        "_value_repr_",
        "__abstractmethods__",
        "_abc_impl",
        "__slotnames__",
    }
)


@dataclass(frozen=True)
class CodeIdentity:
    """The identity of a task's code: ``digest`` decides; ``parts`` (component name -> short digest) says which
    function, class, constant or library changed; ``not_followed`` names what could only be counted by type."""

    digest: str
    parts: Mapping[str, str]
    not_followed: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------ the walk
class _Hash:
    def __init__(self) -> None:
        self.h = hasher()

    def put(self, tag: str, payload: bytes | str = b"") -> None:
        data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
        self.h.update(tag.encode() + str(len(data)).encode() + b":" + data)

    def hexdigest(self) -> str:
        return self.h.hexdigest()


class _Witnesses:
    """What a cached identity was built from, checked by identity on every reuse (microseconds): a name that now
    holds another object (a reloaded helper, a rebound constant), a function given other code or defaults, a class
    given another method is a change."""

    __slots__ = ("bindings",)

    def __init__(self) -> None:
        self.bindings: list[tuple[Any, str, Any]] = []  # (namespace mapping or object, name, object seen)

    def see(self, namespace: Any, name: str, obj: Any) -> None:
        self.bindings.append((namespace, name, obj))

    def unchanged(self) -> bool:
        for ns, name, obj in self.bindings:
            now = ns.get(name, _GONE) if isinstance(ns, Mapping) else getattr(ns, name, _GONE)
            if now is not obj:
                return False
        return True


_GONE = object()


class _Walk:
    """One traversal from a root object: components by name, what could not be followed, witnesses."""

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}
        self.names: dict[int, str] = {}  # id(function / class / module) -> its component name
        self.keep: list[Any] = []  # objects named above stay alive, so their ids stay theirs during the walk
        self.not_followed: list[str] = []
        self.witnesses = _Witnesses()
        self.attrs_seen: set[tuple[int, str]] = set()
        self.active: set[int] = set()  # containers being described (a list that holds itself)
        self.home: str | None = None  # the module of the walk's root (see label)

    # -------------------------------------------------------------------------------------------- components
    def component(self, obj: Any, name: str, build: Any, by_id: bool = True) -> str:
        """Digest ``obj`` as a component of its own (once), under a name unique in this walk; returns the name."""
        if by_id and id(obj) in self.names:
            return self.names[id(obj)]
        unique, n = name, 2
        while unique in self.parts:
            unique, n = f"{name}#{n}", n + 1
        if by_id:
            self.names[id(obj)] = unique
        self.keep.append(obj)
        self.parts[unique] = ""  # reserved while it is built (a function that calls itself names itself)
        h = _Hash()
        build(h)
        self.parts[unique] = h.hexdigest()
        return unique

    def named(self, name: str, described: str) -> str:
        """A binding (module global) as a part of its own, so a change names it; returns the part's name."""
        h = _Hash()
        h.put("binding", described)
        digest, unique, n = h.hexdigest(), name, 2
        while self.parts.get(unique, digest) != digest:
            unique, n = f"{name}#{n}", n + 1
        self.parts[unique] = digest
        return unique

    def finish(self, root: str) -> CodeIdentity:
        h = _Hash()
        h.put("root", root)
        for name in sorted(self.parts):
            h.put("part", name)
            h.put("digest", self.parts[name])
        short = {name: digest[:PART_DIGEST] for name, digest in self.parts.items()}
        return CodeIdentity(h.hexdigest(), short, tuple(dict.fromkeys(self.not_followed)))

    # ------------------------------------------------------------------------------------------- references
    def describe(self, value: Any, name: str) -> str:
        """What a referring component records for ``value`` (a global, default, closure value, class attribute):
        a component's name, a library name, a value digest, or (not followed) its type."""
        if isinstance(value, type(sys)):
            return self.module(value)
        if _is_framework_object(value):
            return "framework"  # a Prefect task or flow, scout-persist itself: a job (or run) of its own
        if isinstance(value, logging.Logger | logging.LoggerAdapter):
            return "logger"  # logs are not values
        if isinstance(value, types.FunctionType):
            if _is_user_function(value):
                return "ref:" + self.function(value)
            return "lib:" + _library_name(value)
        if isinstance(value, functools.partial):
            return "ref:" + self.component(value, f"{name}(partial)", lambda h: self._partial(h, value))
        if isinstance(value, types.MethodType):
            return "ref:" + self.component(value, f"{name}(method)", lambda h: self._method(h, value))
        if isinstance(value, (staticmethod, classmethod)):
            return "static:" + self.describe(value.__func__, name)
        if isinstance(value, type):
            if _is_user_class(value):
                return "ref:" + self.klass(value)
            return "lib:" + _library_name(value)
        if isinstance(value, functools.cached_property):
            return "cached:" + self.describe(value.func, name)
        if isinstance(value, property):
            return "property:" + ",".join(
                self.describe(f, name) if f is not None else "-" for f in (value.fget, value.fset, value.fdel)
            )
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None and not isinstance(value, types.FunctionType) and callable(value):
            # a C-level wrapper (functools.lru_cache, cache): the function it wraps
            return f"wrapped({qualname(type(value))}):" + self.describe(wrapped, name)
        if _is_library_callable(value):
            return "lib:" + _library_name(value)
        digest = self.constant(value, name)
        if digest is not None:
            return "val:" + digest
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            return self._container(value, name)  # a table of functions (``AGG = {"mean": np.mean}``)
        if _is_user_class(type(value)):
            return "ref:" + self.component(value, name, lambda h: self._instance(h, value), by_id=False)
        self.not_followed.append(f"{name} (a {qualname(type(value))})")
        return "opaque:" + qualname(type(value))

    def constant(self, value: Any, name: str) -> str | None:
        """The digest of a value the code reads, as first seen in this process; None when it is not data."""
        try:
            if _too_large(value):
                self.not_followed.append(f"{name} (a {type(value).__name__} of {len(value)} items: too large)")
                return f"size:{type(value).__name__}:{len(value)}"
            return first_seen_digest(value)
        except UnsupportedValueError:
            return None

    def _container(self, value: Any, name: str) -> str:
        if id(value) in self.active:
            return "cycle"
        self.active.add(id(value))
        try:
            return self._items(value, name)
        finally:
            self.active.discard(id(value))

    def _items(self, value: Any, name: str) -> str:
        h = _Hash()
        h.put("type", qualname(type(value)))
        if isinstance(value, dict):
            for key, item in value.items():
                h.put("k", self.describe(key, f"{name} key"))
                h.put("v", self.describe(item, f"{name}[{key!r}]"))
        else:
            items = [self.describe(item, f"{name} item") for item in value]
            for item in sorted(items) if isinstance(value, (set, frozenset)) else items:
                h.put("i", item)
        return "items:" + h.hexdigest()

    def module(self, module: types.ModuleType) -> str:
        if module.__name__.partition(".")[0] in _FRAMEWORK:
            return "framework"
        if _is_user_module(module):
            return "module:" + module.__name__
        return "lib:" + _library_name(module)

    # ------------------------------------------------------------------------------------------- functions
    def label(self, module: str | None) -> str:
        """A module as components are named: the task's own module (``__main__`` when run as a script, its name when
        loaded from an entry point or a worker) is the empty label, so its identity is the same either way."""
        return "" if module in (self.home, "__main__", "__mp_main__", None) else str(module)

    def function(self, fn: types.FunctionType) -> str:
        return self.component(fn, f"{self.label(fn.__module__)}.{fn.__qualname__}", lambda h: self._function(h, fn))

    def _function(self, h: _Hash, fn: types.FunctionType) -> None:
        code = fn.__code__
        self.witnesses.see(fn, "__code__", code)
        self.witnesses.see(fn, "__defaults__", fn.__defaults__)
        self.witnesses.see(fn, "__kwdefaults__", fn.__kwdefaults__)
        _code(h, code, function_doc=(fn.__doc__,))
        where = f"{fn.__module__}.{fn.__qualname__}"
        for i, default in enumerate(fn.__defaults__ or ()):
            h.put("d", self.describe(default, f"{where} default #{i}"))
        for name, default in sorted((fn.__kwdefaults__ or {}).items()):
            h.put("kd", name)
            h.put("kv", self.describe(default, f"{where} default {name}"))
        for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (not yet assigned)
                h.put("empty-cell", var)
                continue
            self.witnesses.see(cell, "cell_contents", content)
            h.put("cl", var)
            h.put("cv", self.describe(content, f"{where} closure {var}"))
        names = set(_names(code))
        self._globals(h, fn, names)
        self._imports(h, fn, code, names)

    def _globals(self, h: _Hash, fn: types.FunctionType, names: set[str]) -> None:
        glob = fn.__globals__
        module = glob.get("__name__") or fn.__module__
        for name in sorted(names):
            if name in glob:
                value = glob[name]
                self.witnesses.see(glob, name, value)
                h.put("g", name)
                h.put("gv", self.binding(module, name, value, names))

    def binding(self, module: str, name: str, value: Any, names: set[str]) -> str:
        """A name the code reads, bound to ``value`` in ``module``: a user module's members the code names are
        followed too."""
        if isinstance(value, (list, tuple)) and _built_from_a_set(module, name):
            described = "multiset:" + multiset_digest(value)  # ``list({...})``: its order is the process's hash seed
        else:
            described = self.describe(value, f"{self.label(module)}.{name}")
        if not described.startswith(("ref:", "module:", "framework", "logger")):
            # a constant or library object: a part of its own, so a change names it and not its readers
            return "part:" + self.named(f"{self.label(module)}.{name}", described)
        if described.startswith("module:"):
            members = vars(value)
            parts = []
            for attr in sorted(names):
                if attr in members and (id(value), attr) not in self.attrs_seen:
                    self.attrs_seen.add((id(value), attr))
                    self.witnesses.see(members, attr, members[attr])
                    parts.append(f"{attr}={self.binding(value.__name__, attr, members[attr], names)}")
            described += "{" + ";".join(parts) + "}"
        return described

    def _imports(self, h: _Hash, fn: types.FunctionType, code: types.CodeType, names: set[str]) -> None:
        """Modules imported inside the body (``import h``, ``from h import f``): followed like globals."""
        package = fn.__globals__.get("__package__") or (fn.__module__ or "").rpartition(".")[0]
        for target, level, fromlist in _imported(code):
            try:
                resolved = importlib.util.resolve_name("." * level + target, package) if level else target
                module = sys.modules.get(resolved) or importlib.import_module(resolved)
                for sub in fromlist:  # ``from . import ops``: a submodule not imported yet is no attribute yet
                    if not hasattr(module, sub) and importlib.util.find_spec(f"{resolved}.{sub}") is not None:
                        importlib.import_module(f"{resolved}.{sub}")
            except (ImportError, ValueError) as exc:
                self.not_followed.append(f"import {target!r} in {fn.__qualname__} ({type(exc).__name__})")
                h.put("imp-missing", target)
                continue
            h.put("imp", resolved)
            h.put("impv", self.binding(resolved, resolved.rpartition(".")[2], module, names | set(fromlist)))

    def _partial(self, h: _Hash, value: functools.partial[Any]) -> None:
        h.put("func", self.describe(value.func, "partial.func"))
        for i, arg in enumerate(value.args):
            h.put("pa", self.describe(arg, f"partial arg #{i}"))
        for key in sorted(value.keywords):
            h.put("pk", key)
            h.put("pv", self.describe(value.keywords[key], f"partial {key}="))

    def _method(self, h: _Hash, value: types.MethodType) -> None:
        h.put("func", self.describe(value.__func__, "method"))
        owner = value.__self__
        h.put("self", self.describe(owner, f"{qualname(type(owner))} instance"))

    def _instance(self, h: _Hash, value: Any) -> None:
        """An instance of the user's class the code reads (``scaler = Scaler(7)``): its class and its state."""
        cls = type(value)
        h.put("class", "ref:" + self.klass(cls))
        state = dict(getattr(value, "__dict__", None) or {})
        for slot in _slots(cls):
            if hasattr(value, slot):
                state[slot] = getattr(value, slot)
        for attr in sorted(state):
            h.put("a", attr)
            h.put("av", self.describe(state[attr], f"{qualname(cls)}.{attr}"))

    # --------------------------------------------------------------------------------------------- classes
    def klass(self, cls: type) -> str:
        return self.component(cls, f"{self.label(cls.__module__)}.{cls.__qualname__}", lambda h: self._class(h, cls))

    def _class(self, h: _Hash, cls: type) -> None:
        for base in cls.__bases__:
            h.put("base", self.describe(base, f"{qualname(cls)} base"))
        members = cls.__dict__
        for name in sorted(members):
            if name in _SKIPPED_CLASS_ATTRS:
                continue
            member = members[name]
            self.witnesses.see(members, name, member)
            h.put("m", name)
            if isinstance(cls, enum.EnumMeta) and isinstance(member, cls):
                h.put("member", self.describe(member.value, f"{qualname(cls)}.{name}"))
                continue
            h.put("mv", self.describe(member, f"{qualname(cls)}.{name}"))
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                h.put("field", f.name)
                if f.default is not dataclasses.MISSING:
                    h.put("default", self.describe(f.default, f"{qualname(cls)}.{f.name} default"))
                if f.default_factory is not dataclasses.MISSING:
                    h.put("factory", self.describe(f.default_factory, f"{qualname(cls)}.{f.name} factory"))


def _code(h: _Hash, code: types.CodeType, function_doc: tuple[Any, ...] = ()) -> None:
    h.put("code", code.co_code)
    h.put("flags", str(code.co_flags))
    h.put("args", f"{code.co_argcount},{code.co_posonlyargcount},{code.co_kwonlyargcount}")
    h.put("names", "\0".join(code.co_names))
    h.put("vars", "\0".join(code.co_varnames))
    h.put("free", "\0".join(code.co_freevars))
    h.put("cell", "\0".join(code.co_cellvars))
    consts = list(code.co_consts)
    if function_doc and consts and consts[0] == function_doc[0] and isinstance(consts[0], str | None):
        consts = consts[1:]  # a function's docstring slot: documentation, not behaviour
    for const in consts:
        if isinstance(const, types.CodeType):
            _code(h, const)
        else:
            h.put("const", value_digest(const))


def _names(code: types.CodeType) -> Iterator[str]:
    """Names the code may look up: globals and attributes, and string constants that are identifiers
    (``getattr(helpers, "f")``, ``globals()["f"]``)."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)
        elif isinstance(const, str) and const.isidentifier():
            yield const


def _imported(code: types.CodeType) -> Iterator[tuple[str, int, tuple[str, ...]]]:
    """``(module, level, from-list)`` of each import statement in ``code`` and its nested code."""
    consts: list[Any] = []
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_CONST":
            consts.append(ins.argval)
        elif ins.opname == "IMPORT_NAME":
            level = consts[-2] if len(consts) >= 2 and isinstance(consts[-2], int) else 0
            fromlist = consts[-1] if consts and isinstance(consts[-1], tuple) else ()
            yield str(ins.argval), level, tuple(str(n) for n in fromlist if n != "*")
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _imported(const)


def _slots(cls: type) -> list[str]:
    found: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        found += [slots] if isinstance(slots, str) else [s for s in slots if s not in ("__dict__", "__weakref__")]
    return found


def _too_large(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, dict)) and len(value) > MAX_CONSTANT_ITEMS


# --------------------------------------------------------------------------------------------- whose code
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


def _is_framework_object(value: Any) -> bool:
    module = getattr(value, "__module__", None) if isinstance(value, types.FunctionType | type) else None
    module = module or type(value).__module__
    return callable(value) and (module or "").partition(".")[0] in _FRAMEWORK


def _is_user_function(fn: types.FunctionType) -> bool:
    """By the file its code was compiled from, which travels with the code to process-pool and Dask workers."""
    if (fn.__module__ or "").partition(".")[0] in _FRAMEWORK:
        return False
    return not _is_library_file(fn.__code__.co_filename)


def _is_user_class(cls: type) -> bool:
    """By its module's file; a class whose module is not imported here (sent by value) by its methods' file."""
    if cls.__module__ == "builtins" or cls.__module__.partition(".")[0] in _FRAMEWORK:
        return False
    module = sys.modules.get(cls.__module__)
    if module is None:
        return True  # no such module here: a class sent by value (a script's, a notebook's) or made by exec
    if getattr(module, "__file__", None) is not None:
        return _is_user_module(module)
    for member in vars(cls).values():
        member = getattr(member, "__func__", member)  # staticmethod, classmethod
        if isinstance(member, types.FunctionType) and member.__code__.co_filename != "<string>":  # not generated
            return _is_user_function(member)
    return cls.__module__ in ("__main__", "__mp_main__")


def _is_user_module(module: types.ModuleType) -> bool:
    filename = getattr(module, "__file__", None)  # None: built in, or a namespace package
    if filename is None or module.__name__.partition(".")[0] in _FRAMEWORK:
        return False
    return not _is_library_file(filename)


def _is_library_callable(value: Any) -> bool:
    return callable(value) and (
        isinstance(value, types.BuiltinFunctionType | types.BuiltinMethodType | types.MethodDescriptorType)
        or (
            type(value).__module__.partition(".")[0] not in ("builtins", "__main__")
            and not _is_user_class(type(value))
            and hasattr(value, "__name__")
        )
    )


def _library_name(obj: Any) -> str:
    """``numpy.mean@numpy==2.4.6``, ``builtins.min``: a library object by qualified name and distribution."""
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        owner = getattr(obj, "__objclass__", None)
        module = getattr(obj, "__module__", None) or getattr(owner, "__module__", None) or type(obj).__module__
        if module is None:
            bound = getattr(obj, "__self__", None)
            module = getattr(bound, "__name__", None) if isinstance(bound, types.ModuleType) else None
        qual = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__
        name = f"{module}.{qual}"
    top = name.partition(".")[0]
    version = distribution_version(top)
    return f"{name}@{version}" if version else name


@functools.lru_cache(maxsize=1024)
def distribution_version(top: str) -> str:
    """``numpy==2.4.6`` for a top-level module of an installed distribution; ``""`` for the standard library."""
    if top in sys.stdlib_module_names or top in ("builtins", "__main__", "None"):
        return ""
    module = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return f"{top}=={version}"
    try:
        dists = _packages_distributions().get(top) or []
        return ",".join(f"{d}=={metadata.version(d)}" for d in sorted(set(dists))) or f"{top}==?"
    except Exception:  # noqa: BLE001 - metadata of a broken install: named, never fatal
        return f"{top}==?"


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _built_from_a_set(module: str, name: str) -> bool:
    """Whether the module's source assigns ``name`` from a set (``ORDER = list({"x", "y"})``), whose order is the
    process's string hash seed: such a list is known by its items, not their order, or no process would reuse
    another's job.  Read from the module's file once per process (a hint about order only; the items count)."""
    found = sys.modules.get(module)
    filename = getattr(found, "__file__", None)
    return bool(filename) and name in _set_built_names(str(filename))


@functools.lru_cache(maxsize=256)
def _set_built_names(filename: str) -> frozenset[str]:
    try:
        with open(filename, encoding="utf-8") as fh:
            tree = _parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        if value is None or not _hashed_order(value):
            continue
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


_parse_lock = threading.Lock()


def _parse(text: str) -> ast.Module:
    """``ast.parse``, one thread at a time: CPython 3.11's parser keeps a recursion depth shared by threads, and two
    parses at once (tasks of a thread runner) fail with "AST constructor recursion depth mismatch" (gh-106905).  A
    parse in another library's thread can still trip it, so a failed check is parsed again."""
    with _parse_lock:
        try:
            return ast.parse(text)
        except SystemError:
            return ast.parse(text)


def _hashed_order(expr: ast.AST) -> bool:
    """A list/tuple expression whose order comes from iterating a set: ``list({...})``, ``[*s]``, ``tuple(set(x))``,
    a comprehension over a set — and not ``sorted(...)`` around it."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "sorted":
        return False
    return any(
        isinstance(n, (ast.Set, ast.SetComp))
        or (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("set", "frozenset"))
        for n in ast.walk(expr)
    )


def multiset_digest(items: Any) -> str:
    """A list or tuple by its items, whatever their order."""
    h = hasher()
    h.update(type(items).__name__.encode())
    for digest in sorted(first_seen_digest(item) for item in items):
        h.update(digest.encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ first-seen values
_first_seen: dict[int, tuple[Any, str]] = {}
_guard = threading.RLock()


def first_seen_digest(value: Any) -> str:
    """The digest of a value the code reads, as this process first saw it: a task that fills a memo dict, appends
    to a log list or writes into a module array must not change its own code.  UnsupportedValueError when it is not
    data."""
    if isinstance(value, (type(None), bool, int, float, complex, str, bytes)):
        return value_digest(value)
    with _guard:
        seen = _first_seen.get(id(value))
    if seen is not None and seen[0] is value:
        return seen[1]
    digest = value_digest(value, "a constant")
    with _guard:
        if len(_first_seen) >= MAX_CACHE:
            _first_seen.clear()
        seen = _first_seen.get(id(value))
        if seen is None or seen[0] is not value:  # (an id of a value since collected is reused)
            seen = _first_seen[id(value)] = (value, digest)
        return seen[1]


# -------------------------------------------------------------------------------------------------- entry
_cache: dict[int, tuple[Any, CodeIdentity, _Witnesses]] = {}


def identify(fn: Any) -> CodeIdentity:
    """The :class:`CodeIdentity` of a task function (or any callable), cached per object and checked against
    what it was built from on every reuse (a reloaded helper or a rebound constant is seen at the next call)."""
    root = _unwrap_framework(fn)
    with _guard:
        hit = _cache.get(id(root))
    if hit is not None and hit[0] is root and hit[2].unchanged():
        return hit[1]
    walk = _Walk()
    walk.home = getattr(root, "__module__", None)
    name = walk.describe(root, getattr(root, "__qualname__", None) or qualname(type(root)))
    identity = walk.finish(name)
    with _guard:
        if len(_cache) >= MAX_CACHE:
            _cache.clear()
        _cache[id(root)] = (root, identity, walk.witnesses)
    return identity


def code_identity(fn: Any) -> str:
    """The digest of :func:`identify`."""
    return identify(fn).digest


def _unwrap_framework(fn: Any) -> Any:
    """The user's callable under the framework's own wrappers (the scout task's lifecycle wrapper, which
    ``functools.wraps`` gives the user's module name); a user's decorator is the user's code and stays."""
    while True:
        wrapped = getattr(fn, "__wrapped__", None)
        code = getattr(fn, "__code__", None)
        if wrapped is None or code is None or not _is_framework_file(code.co_filename):
            return fn
        fn = wrapped


def _is_framework_file(filename: str) -> bool:
    roots = [os.path.dirname(__file__)]
    roots += [
        os.path.dirname(getattr(sys.modules.get(name), "__file__", "") or "") for name in ("prefect_scout", "prefect")
    ]
    return any(
        root and os.path.realpath(filename).startswith(os.path.join(os.path.realpath(root), "")) for root in roots
    )


_class_cache: dict[int, tuple[type, str, _Witnesses]] = {}
_in_progress = threading.local()


def class_identity(cls: type) -> str | None:
    """The identity of a user class's code (None for library classes): a value of the user's class computes with
    its methods, so an input's digest carries it."""
    if not _is_user_class(cls):
        return None
    with _guard:
        hit = _class_cache.get(id(cls))
    if hit is not None and hit[0] is cls and hit[2].unchanged():
        return hit[1]
    busy: set[int] = getattr(_in_progress, "classes", None) or set()
    if id(cls) in busy:
        return "within:" + qualname(cls)  # the class's own code reads a value of itself
    busy.add(id(cls))
    _in_progress.classes = busy
    try:
        walk = _Walk()
        walk.home = cls.__module__
        identity = walk.finish(walk.klass(cls))
    finally:
        busy.discard(id(cls))
    with _guard:
        if len(_class_cache) >= MAX_CACHE:
            _class_cache.clear()
        _class_cache[id(cls)] = (cls, identity.digest, walk.witnesses)
    return identity.digest


def code_value_identity(value: Any) -> str | None:
    """A callable passed as a value (an argument ``f=min``, a function in a list): its code identity (a library
    object by qualified name and version); None when it cannot be followed (it is then not digestible)."""
    busy: set[int] = getattr(_in_progress, "values", None) or set()
    if id(value) in busy:
        return None  # the walk of this value digests it as a constant first: it is an instance, not code
    busy.add(id(value))
    _in_progress.values = busy
    try:
        walk = _Walk()
        walk.home = getattr(value, "__module__", None)
        described = walk.describe(value, getattr(value, "__qualname__", None) or qualname(type(value)))
    finally:
        busy.discard(id(value))
    if described.startswith("opaque:") or walk.not_followed:
        return None
    return walk.finish(described).digest


valuedigest.class_identity = class_identity
valuedigest.code_value_identity = code_value_identity


def changed_components(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Names of the components that differ between two ``parts`` maps (added, removed or changed), sorted."""
    if not isinstance(stored, Mapping):
        return []
    return sorted(name for name in set(stored) | set(current) if stored.get(name) != current.get(name))


_warned: set[tuple[str, tuple[str, ...]]] = set()


def warn_not_followed(task: str, identity: CodeIdentity) -> None:
    """One warning per task and process naming what its code identity could not follow."""
    if not identity.not_followed:
        return
    key = (task, identity.not_followed)
    with _guard:
        if key in _warned:
            return
        _warned.add(key)
    shown = ", ".join(identity.not_followed[:8]) + (" ..." if len(identity.not_followed) > 8 else "")
    log.warning(
        "scout-persist: the code identity of %s does not follow: %s; a change inside them is not seen, so pin the "
        "task with version= (bump it when they change), or pass them as inputs",
        task,
        shown,
    )


__all__ = [
    "CodeIdentity",
    "changed_components",
    "class_identity",
    "code_identity",
    "distribution_version",
    "first_seen_digest",
    "identify",
    "warn_not_followed",
]
