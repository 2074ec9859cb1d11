"""``persist(name, type, fn)``: Ruby Scout's ``Persist.persist`` cache, as a call and as a decorator.

The entry lives at ``<root>/var/cache/persistence/<persistence_path(name, ...)>`` (SCOUT_FORMAT.md §9.1), or under
``dir=``, or exactly at ``path=``; its bytes are Scout's for ``type`` (§7.2), so Ruby reads our entries and we
read Ruby's. While computing, the Scout lock ``tmp/persist_locks/<mangled>.persist.lock`` is held, so processes
asking for the same entry at once compute it once. ``workflow_persist`` is the per-workflow variant
(``var/workflows/<W>/persist``, §9.2).

Deliberate differences from Ruby: ``update=True`` replaces the old entry atomically once the new value is ready
(Ruby deletes it first, so a failed update loses it); an entry that no longer loads is recomputed under the lock;
a function returning None stores nothing and returns None (Ruby returns nil without a file as well).

Ruby's file name hashes Ruby's ``digest_str`` of the options, which rounds floats and abbreviates long arrays, so
different options can share one name.  The name stays Ruby's; beside each entry we write a sidecar ``<entry>.info``
(written first, then the entry) holding the entry's full signature -- :func:`scout_persist.signature.value_digest` of
the name, type and options, and the code identity of a decorated function -- and the checksum of its bytes.  An entry
is served only when both match; otherwise it is a miss, recomputed and overwritten.  Entries without a sidecar
(Ruby's, or written before signatures) keep Ruby's rules.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import logging
import posixpath
import re
import time
import warnings
from collections.abc import Callable, MutableMapping
from typing import Any

from . import payload, pickle_envelope, scout_types, settings
from .checksums import checksum
from .errors import CorruptPayloadError, InfoFormatError, InvalidInputError, KeyNotFound, LeaseLost, UnsafePathError
from .info import dumps_info, loads_info
from .layout import PERSIST_DIR, lock_key_for, persistence_path
from .locks import Lock
from .rubyjson import ruby_time
from .signature import code_identity, value_digest
from .store import Store, Sync, check_key

log = logging.getLogger(__name__)

WORKFLOWS_DIR = "var/workflows"
MEMORY_CACHE: dict[str, Any] = {}
SIDECAR = ".info"  # <entry>.info: the entry's signature and payload record (as save() outputs have)
WRITER = "scout_persist.persist"  # the sidecar's "writer"
# persist()'s own options; every other keyword shapes the file name (and is part of the entry's signature)
_CALL_OPTIONS = (
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
_NAME_RULE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


MAX_SIZE_ENV = "SCOUT_PERSIST_MAX_ENTRY_SIZE"


class CacheSizeWarning(UserWarning):
    """An output larger than ``SCOUT_PERSIST_MAX_ENTRY_SIZE`` was not cached."""


def max_entry_size() -> int | None:
    """``$SCOUT_PERSIST_MAX_ENTRY_SIZE`` in bytes (None: no limit); InvalidInputError naming it when unreadable."""
    return settings.max_entry_size()


def too_large(size: int, where: str) -> bool:
    """Whether an entry of ``size`` bytes exceeds the maximum entry size (and say so with a CacheSizeWarning)."""
    limit = max_entry_size()
    if limit is None or size <= limit:
        return False
    warnings.warn(
        f"{where}: the output is {size} bytes, over ${MAX_SIZE_ENV}={settings.MAX_ENTRY_SIZE.raw()} ({limit} bytes); "
        "it was not cached (the value is returned as computed); raise the limit to cache it",
        CacheSizeWarning,
        stacklevel=3,
    )
    return True


class Location:
    """Where one persist entry lives: its store and key, the store that holds its lock, and the lock key."""

    def __init__(self, store: Store, key: str, lock_store: Store, lock_path: str) -> None:
        self.store, self.key, self.lock_store = store, key, lock_store
        self.lock_key = lock_key_for(lock_path)

    @property
    def url(self) -> str:
        """The entry's full location: an absolute file path for local stores, else a URL."""
        return f"{self.store.url}/{self.key}"

    @property
    def sidecar(self) -> str:
        """The key of the entry's sidecar (its signature and payload record)."""
        return self.key + SIDECAR

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


def entry_signature(name: Any, type: str | None, options: dict[str, Any], code: str | None = None) -> dict[str, str]:
    """What an entry must have been computed from to be served: the digest of its name, type and naming options by
    value (:func:`scout_persist.signature.value_digest`, exact where Ruby's ``digest_str`` rounds and abbreviates),
    and the code identity of a decorated function (empty for a call with a function of its own)."""

    inputs = {"name": name, "type": type, "options": options}
    return {"inputs": value_digest(inputs, f"the options of persist({name!r})"), "code": code or ""}


class _Stale(Exception):
    """An entry with a sidecar that does not vouch for it here: a miss (the message says why)."""


def _checked(loc: Location, signature: dict[str, str]) -> bytes | None:
    """The verified bytes of an entry we wrote for ``signature``; None for an entry without a sidecar (Ruby's
    rules); :class:`_Stale` when the sidecar is for other inputs or code, or for other
    bytes (a write cut between sidecar and entry, or an entry rewritten by a writer that keeps no sidecar)."""

    try:
        raw = loc.store.get(loc.sidecar)
    except KeyNotFound:
        return None
    try:
        info = loads_info(raw, loc.url + SIDECAR, strict=True)
    except (InfoFormatError, CorruptPayloadError) as exc:
        raise _Stale(f"its sidecar does not parse ({exc})") from exc
    record = payload.record_of(info)
    if info.get("writer") != WRITER or record is None:
        raise _Stale(f"its sidecar was written by {info.get('writer')!r}, not by persist()")
    stored = got if isinstance(got := info.get("signature"), dict) else {}
    changed = [part for part in ("inputs", "code") if stored.get(part) != signature[part]]
    if changed:
        raise _Stale(f"it was computed with other {' and '.join(changed)} (Ruby's file name is the same)")
    try:
        data = loc.store.get(loc.key)
        payload.verify(data, record, loc.url)
    except KeyNotFound as exc:
        raise _Stale("it is gone") from exc
    except CorruptPayloadError as exc:
        raise _Stale(str(exc)) from exc
    return data


def _load(loc: Location, type: str | None, data: bytes | None = None) -> Any:

    if type == pickle_envelope.PICKLE:
        payload.require_pickle_allowed("load", loc.url)
    # A pickle's HMAC (when a key is set) is bound to the entry it was written for.
    data = loc.store.get(loc.key) if data is None else data
    return scout_types.load(data, type, path=loc.url, bind=loc.key)


def _stored_value(loc: Location, type: str | None, no_load: bool, signature: dict[str, str]) -> tuple[bool, Any]:
    """``(True, value or location)`` for an entry that is there, vouched for by its sidecar (or Ruby's, without
    one) and loads; ``(False, None)`` to compute it."""
    if not loc.store.exists(loc.key):
        return False, None
    try:
        data = _checked(loc, signature)
    except _Stale as why:
        log.info("persist entry %s is a miss: %s; recomputing it", loc.url, why)
        return False, None
    if no_load:
        return True, loc.url
    try:
        return True, _load(loc, type, data)
    except KeyNotFound:
        return False, None
    except CorruptPayloadError as exc:
        log.warning("persist entry %s does not load (%s); recomputing it", loc.url, exc)
        return False, None


def _stored(value: Any, type: str | None, loc: Location) -> tuple[bytes, Any, dict[str, Any]]:
    """``(bytes, value, payload record)``: what to store for ``value``, the value a later load of it gives back
    (which the first call returns too; a value the type cannot hold is refused), and the record of the bytes."""

    if type == pickle_envelope.PICKLE:
        payload.require_pickle_allowed("store", f"{loc.url} (a {value.__class__.__name__})")
        # the value a hit gives, also the first time
        data, prec, back = pickle_envelope.dump_pickle_handing_on(value, bind=loc.key)
        return data, back, {"format": payload.PICKLE, **{k: v for k, v in prec.items() if k != "serializer"}}
    data = scout_types.dump(value, type)
    stype = "binary" if type in (None, "") else str(type)
    back = scout_types.load(data, stype, path=loc.url)
    payload.require_roundtrip(value, back, "json" if stype == "serializer" else stype)
    record = {"format": "scout", "type": payload.info_type(stype), "stored_size": len(data), "checksum": checksum(data)}
    return data, payload.handed(value, back), record


def _sidecar(name: Any, type: str | None, signature: dict[str, str], record: dict[str, Any]) -> bytes:

    return dumps_info(
        {
            "status": "done",
            "writer": WRITER,
            "name": name if isinstance(name, str) else None,
            "type": type,
            "saved": ruby_time(),
            "signature": signature,
            payload.RECORD_KEY: record,
        }
    )


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
    name: Any,
    signature: dict[str, str],
) -> Any:
    if not _needs_update(loc, update):
        found, value = _stored_value(loc, type, no_load, signature)
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
            found, value = _stored_value(loc, type, no_load, signature)
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
        data, value, record = _stored(value, type, loc)
        if too_large(len(data), loc.url):
            return None if no_load else value  # over $SCOUT_PERSIST_MAX_ENTRY_SIZE: not cached
        if guard is not None:
            _fence(guard, loc)
        # The sidecar first: it names the bytes that follow, so an entry cut between the two writes is a miss (its
        # checksum differs).  A sidecar a crash tears is a miss too, and one it loses leaves the entry this very
        # computation wrote, so it is not synced (the crash-state test finds no state that needs it).  The entry is
        # read as it is: its bytes are synced before its name (docs/reliability.md, "Durability")
        loc.store.put(loc.sidecar, _sidecar(name, type, signature, record), durable=Sync.NONE)
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


def _memory(
    fn: Callable[[], Any], loc: Location, update: Any, repo: MutableMapping[str, Any] | None, signature: dict[str, str]
) -> Any:
    """Kept in ``repo`` under the entry's location and signature: colliding names never share a value here either."""
    repo = MEMORY_CACHE if repo is None else repo
    key = f"{loc.url}#{signature['inputs']}:{signature['code']}"
    if update is True or key not in repo:
        repo[key] = fn()
    return repo[key]


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
    return _call(name, type, fn, _options(locals()))


_persist = persist  # inside persist() the name is the ``persist=`` flag


def _call(name: Any, type: str | None, fn: Any, opts: dict[str, Any], code: str | None = None) -> Any:
    """One persist call: ``opts`` as :func:`_options` collects them; ``code`` the decorated function's identity."""
    if not callable(fn):
        raise InvalidInputError(f"persist fn={fn!r} is not callable; pass a function of no arguments (or a lambda)")
    if not opts["persist"]:
        return fn()
    naming = {k: v for k, v in opts.items() if k not in _CALL_OPTIONS}
    loc = locate(name, store=opts["store"], dir=opts["dir"], path=opts["path"], **naming)
    signature = entry_signature(name, type, naming, code)
    if type == "memory":
        return _memory(fn, loc, opts["update"], opts["repo"], signature)
    return _run(
        fn,
        loc,
        type,
        opts["update"],
        opts["no_load"],
        opts["lock"],
        opts["lease"],
        opts["lock_timeout"],
        opts["canfail"],
        name,
        signature,
    )


def _options(frame_locals: dict[str, Any]) -> dict[str, Any]:
    opts = {k: frame_locals[k] for k in _CALL_OPTIONS}
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
        # the function's code is part of the entry's signature: an edited function does not get its old values
        return _call(entry_name, type, lambda: func(*args, **kwargs), call_options(args, kwargs), code_identity(func))

    def location(*args: Any, **kwargs: Any) -> Location:
        """Where the entry of this call lives (without computing anything)."""
        call = call_options(args, kwargs)
        naming = {k: v for k, v in call.items() if k not in _CALL_OPTIONS or k in ("store", "dir", "path")}
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
