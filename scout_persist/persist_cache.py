"""``persist(name, type, fn)``: Ruby Scout's ``Persist.persist`` cache, as a call and as a decorator.

The entry lives at ``<root>/var/cache/persistence/<persistence_path(name, ...)>`` (SCOUT_FORMAT.md §9.1), or under
``dir=``, or exactly at ``path=``; its bytes are Scout's for ``type`` (§7.2), so Ruby reads our entries and we
read Ruby's. While computing, the Scout lock ``tmp/persist_locks/<mangled>.persist.lock`` is held, so processes
asking for the same entry at once compute it once. ``workflow_persist`` is the per-workflow variant
(``var/workflows/<W>/persist``, §9.2).

Deliberate differences from Ruby: ``update=True`` replaces the old entry atomically once the new value is ready
(Ruby deletes it first, so a failed update loses it); an entry that no longer loads is recomputed under the lock;
a function returning None stores nothing and returns None (Ruby returns nil without a file as well).
"""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import posixpath
import re
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from .errors import CorruptPayloadError, InvalidInputError, LeaseLost, UnsafePathError
from .layout import PERSIST_DIR, lock_key_for, persistence_path
from .locks import Lock
from .store import Store, Sync, check_key

log = logging.getLogger(__name__)

WORKFLOWS_DIR = "var/workflows"
MEMORY_CACHE: dict[str, Any] = {}
_NAME_RULE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class Location:
    """Where one persist entry lives: its store and key, the store that holds its lock, and the lock key."""

    def __init__(self, store: Store, key: str, lock_store: Store, lock_path: str) -> None:
        self.store, self.key, self.lock_store = store, key, lock_store
        self.lock_key = lock_key_for(lock_path)

    @property
    def url(self) -> str:
        """The entry's full location: an absolute file path for local stores, else a URL."""
        return f"{self.store.url}/{self.key}"

    def __repr__(self) -> str:
        return f"Location({self.url!r})"


def _as_store(store: Store | str | None) -> Store:
    return store if isinstance(store, Store) else Store(store)


def _is_absolute(where: str) -> bool:
    return where.startswith(("/", "~")) or "://" in where


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or name.strip() in ("", ".", ".."):
        raise InvalidInputError(
            f"persist name {name!r} is not usable: a persist name is a non-empty str other than '.' or '..' "
            "(e.g. 'gene_counts'); '/' is allowed and becomes '\u00b7' in the file name"
        )
    if "\x00" in name:
        raise UnsafePathError(f"persist name {name!r} contains a NUL byte; no store can hold it; remove it")
    return name


def locate(
    name: str,
    store: Store | str | None = None,
    dir: str | None = None,
    path: str | None = None,
    **name_options: Any,
) -> Location:
    """The location of entry ``name`` (see :func:`persist` for the options that shape the file name)."""
    root = _as_store(store)
    if path is not None:
        path = str(path)
        if _is_absolute(path):
            parent, base = posixpath.split(path.rstrip("/"))
            if not base:
                raise InvalidInputError(f"persist path={path!r} names no file; give the entry's full file path")
            return Location(
                Store(parent, **root.storage_options) if "://" in parent else Store(parent), base, root, path
            )
        key = check_key(path, root.url)
        return Location(root, key, root, key)
    file_name = persistence_path(_check_name(name), dir=None, **name_options)
    if file_name in (".", ".."):
        raise InvalidInputError(f"persist name {name!r} gives the file name {file_name!r}, which names a folder")
    folder = PERSIST_DIR if dir is None else str(dir)
    if _is_absolute(folder):
        target = Store(folder, **root.storage_options) if "://" in folder else Store(folder)
        check_key(file_name, target.url)
        return Location(target, file_name, root, f"{target.url}/{file_name}")
    key = check_key(f"{folder.rstrip('/')}/{file_name}", root.url)
    return Location(root, key, root, key)


def _needs_update(loc: Location, update: Any) -> bool:
    """Ruby's ``update``: True recomputes; seconds recompute entries older than that; a datetime, older than it."""
    if update is None or update is False:
        return False
    if update is True:
        return True
    if isinstance(update, (int, float)):
        mtime = loc.store.mtime(loc.key) if loc.store.exists(loc.key) else None
        return mtime is None or mtime < time.time() - float(update)
    if isinstance(update, datetime.datetime):
        mtime = loc.store.mtime(loc.key) if loc.store.exists(loc.key) else None
        return mtime is None or mtime < update.timestamp()
    raise InvalidInputError(
        f"persist update={update!r}: use True/False, a number of seconds (recompute older entries) or a datetime"
    )


def _load(loc: Location, type: str | None) -> Any:
    from . import payload, serializers

    if type == serializers.PICKLE:
        payload.require_pickle_allowed("load", loc.url)
    # A pickle's HMAC (when a key is set) is bound to the entry it was written for.
    return serializers.load(loc.store.get(loc.key), type, path=loc.url, bind=loc.key)


def _stored_value(loc: Location, type: str | None, no_load: bool) -> tuple[bool, Any]:
    """``(True, value or location)`` for an entry that is there and loads; ``(False, None)`` to compute it."""
    if not loc.store.exists(loc.key):
        return False, None
    if no_load:
        return True, loc.url
    try:
        return True, _load(loc, type)
    except CorruptPayloadError as exc:
        log.warning("persist entry %s does not load (%s); recomputing it", loc.url, exc)
        return False, None


def _stored(value: Any, type: str | None, loc: Location) -> tuple[bytes, Any]:
    """``(bytes, value)``: what to store for ``value`` and the value a later load of it gives back, which the first
    call returns too (a value the type cannot hold is refused)."""
    from . import payload, serializers

    if type == serializers.PICKLE:
        payload.require_pickle_allowed("store", f"{loc.url} (a {value.__class__.__name__})")
        return serializers.dump_pickle(value, bind=loc.key), value
    data = serializers.dump(value, type)
    stype = "binary" if type in (None, "") else str(type)
    back = serializers.load(data, stype, path=loc.url)
    payload.require_roundtrip(value, back, "json" if stype == "serializer" else stype)
    return data, payload.handed(value, back)


def _run(
    fn: Callable[[], Any],
    loc: Location,
    type: str | None,
    update: Any,
    no_load: bool,
    lock: bool,
    lease: float,
    lock_timeout: float | None,
    canfail: bool,
) -> Any:
    if not _needs_update(loc, update):
        found, value = _stored_value(loc, type, no_load)
        if found:
            return value
    guard = (
        Lock(loc.lock_store, loc.lock_key, lease=lease, refresh=min(2.0, lease / 3), timeout=lock_timeout)
        if lock
        else None
    )
    if guard is not None:
        guard.__enter__()
    try:
        # Another process may have computed the entry while we waited for the lock.
        if update is not True and not _needs_update(loc, update):
            found, value = _stored_value(loc, type, no_load)
            if found:
                return value
        try:
            value = fn()
        except Exception:
            if canfail:
                log.warning("persist %s: computation failed and canfail is set; nothing stored", loc.url, exc_info=True)
                return None
            raise
        if value is None:
            return loc.url if no_load else None
        data, value = _stored(value, type, loc)
        from .outputs import too_large

        if too_large(len(data), loc.url):
            return None if no_load else value  # over $SCOUT_PERSIST_MAX_ENTRY_SIZE: not cached
        if guard is not None:
            _fence(guard, loc)
        # an entry is read as it is (no checksum for Scout types): its bytes are synced before its name; the name
        # is not (a cache: a crash that loses it means a recompute; docs/reliability.md, "Durability")
        loc.store.put(loc.key, data, durable=Sync.DATA)
        return loc.url if no_load else value
    finally:
        if guard is not None:
            guard.release()


def _fence(guard: Lock, loc: Location) -> None:
    """Refuse to commit when our lock was taken over while we computed (we were paused past its lease): the newer
    holder's entry stands."""
    try:
        guard.check()
    except LeaseLost:
        log.error(
            "persist entry %s: this process lost its lock while computing; its value is not stored over the "
            "newer holder's",
            loc.url,
        )
        raise


def _memory(fn: Callable[[], Any], loc: Location, update: Any, repo: MutableMapping[str, Any] | None) -> Any:
    repo = MEMORY_CACHE if repo is None else repo
    if update is True or loc.url not in repo:
        repo[loc.url] = fn()
    return repo[loc.url]


def persist(
    name: str | Callable[..., Any] | None = None,
    type: str | None = "serializer",
    fn: Callable[[], Any] | None = None,
    *,
    store: Store | str | None = None,
    dir: str | None = None,
    path: str | None = None,
    update: Any = False,
    no_load: bool = False,
    persist: bool = True,
    lock: bool = True,
    lease: float = 30.0,
    lock_timeout: float | None = None,
    canfail: bool = False,
    repo: MutableMapping[str, Any] | None = None,
    **name_options: Any,
) -> Any:
    """Return the cached value of ``name``, computing it with ``fn()`` (and storing it) when absent.

    Naming (§9.1): ``prefix=``, ``key=``, ``filters=``, ``other=`` / ``other_X=`` / ``other_options=`` shape the
    file name; ``dir=`` (a key under the store root, or an absolute path/URL) or ``path=`` (the exact entry)
    move it. ``type`` is a Scout type (default ``serializer``, i.e. JSON, as in Ruby; ``pickle`` for any Python
    value; ``memory`` keeps it in this process only). ``update``: True, seconds or a datetime (recompute
    older entries). ``no_load``: return the entry's location instead of its value. ``persist=False`` just
    calls ``fn``. ``lock``: hold the Scout lock while computing (``lease``, ``lock_timeout``). ``canfail``:
    a failing ``fn`` returns None instead of raising. ``store``: the root (default ``$SCOUT_PERSIST_URL``).

    Without ``fn`` it returns a decorator: ``@persist("name", "json")`` or ``@persist(type="json")`` (the
    name is then the function's qualified name); the call's arguments become ``other`` options, so each
    distinct call has its own entry, named ``<name>:<md5 of the arguments>`` as Ruby would name it.
    """
    if callable(name) and fn is None:  # bare @persist
        return _persist(None, type, **_options(locals()))(name)
    if fn is None:
        assert not callable(name)  # a bare @persist returned above
        opts = _options(locals())

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            return _decorated(func, name, type, opts)

        return decorate
    if not callable(fn):
        raise InvalidInputError(f"persist fn={fn!r} is not callable; pass a function of no arguments (or a lambda)")
    if not persist:
        return fn()
    loc = locate(name, store=store, dir=dir, path=path, **name_options)  # type: ignore[arg-type]  # it checks the name
    if type == "memory":
        return _memory(fn, loc, update, repo)
    return _run(fn, loc, type, update, no_load, lock, lease, lock_timeout, canfail)


_persist = persist  # inside persist() the name is the ``persist=`` flag


def _options(frame_locals: dict[str, Any]) -> dict[str, Any]:
    opts = {
        k: frame_locals[k]
        for k in (
            "store",
            "dir",
            "path",
            "update",
            "no_load",
            "persist",
            "lock",
            "lease",
            "lock_timeout",
            "canfail",
            "repo",
        )
    }
    opts.update(frame_locals["name_options"])
    return opts


def _decorated(
    func: Callable[..., Any], name: str | None, type: str | None, opts: dict[str, Any]
) -> Callable[..., Any]:
    entry_name = name or f"{func.__module__}.{func.__qualname__}"
    signature = inspect.signature(func)

    def call_options(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        call = dict(opts)
        if bound.arguments:
            given = opts.get("other")
            if given is None:
                call["other"] = dict(bound.arguments)
            elif isinstance(given, dict):
                call["other"] = {**given, **bound.arguments}
            else:
                call["other"] = {"other": given, **bound.arguments}
        return call

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return persist(entry_name, type, lambda: func(*args, **kwargs), **call_options(args, kwargs))

    def location(*args: Any, **kwargs: Any) -> Location:
        """Where the entry of this call lives (without computing anything)."""
        call = call_options(args, kwargs)
        naming = {
            k: v
            for k, v in call.items()
            if k not in ("update", "no_load", "persist", "lock", "lease", "lock_timeout", "canfail", "repo")
        }
        return locate(entry_name, **naming)

    wrapper.location = location  # type: ignore[attr-defined]  # function attributes
    wrapper.persist_name = entry_name  # type: ignore[attr-defined]
    return wrapper


def workflow_persist(
    workflow: str,
    name: str | Callable[..., Any] | None = None,
    type: str | None = "serializer",
    fn: Callable[[], Any] | None = None,
    **options: Any,
) -> Any:
    """``persist`` in a workflow's own folder ``var/workflows/<workflow>/persist`` (§9.2)."""
    if not isinstance(workflow, str) or not _NAME_RULE.match(workflow):
        raise InvalidInputError(
            f"workflow name {workflow!r} is not usable for a persist folder: use letters, digits, '_', '-' or '.' "
            "and no '/' (e.g. 'Baking')"
        )
    if "dir" in options or "path" in options:
        raise InvalidInputError("workflow_persist places entries itself; call persist(...) to give dir= or path=")
    return persist(name, type, fn, dir=f"{WORKFLOWS_DIR}/{workflow}/persist", **options)
