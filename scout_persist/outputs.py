"""Output persistence for code outside Prefect: ``save(value, key)``, ``load(key)``, ``exists(key)``,
``invalidate(key=None)``.

Entries live in the persist cache (``<root>/var/cache/persistence/``, named by :func:`persist`'s rules, so
``save(v, "counts")`` and ``persist("counts", ...)`` name the same file) with a sidecar ``<entry>.info`` holding the
payload record: the value is stored in the format its type calls for (:mod:`scout_persist.formats`: NPY, Parquet,
Arrow, safetensors; ``format="json"`` when asked; else a pickle under the HMAC and ``SCOUT_PERSIST_ALLOW_PICKLE``
rules), verified against its checksum on every load, and loaded back exactly (``save`` returns what ``load`` will).
While an entry is written, :func:`persist`'s lock for it is held.

``SCOUT_PERSIST_MAX_ENTRY_SIZE`` (bytes, or ``500M``, ``2G``) caps an entry: a larger output is not cached (a
:class:`CacheSizeWarning` says so) and ``save`` still returns it.  ``scout-persist gc --max-size`` keeps the whole
store (jobs and these entries) under a budget, least recently used first, never a pinned entry (``save(...,
pin=True)``) nor a job pinned or published in the registry.

Errors: :class:`StorageError` (the store failed), :class:`UnsupportedValueError` (the value cannot be stored in the
format), :class:`CorruptPayloadError` (stored bytes fail their checksum), :class:`FormatVersionError` (written by a
newer format version), :class:`KeyNotFound` (no such entry), :class:`MissingDependencyError` (a format's library).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from . import payload
from .errors import CorruptPayloadError, InvalidInputError, KeyNotFound
from .formats import nbytes
from .info import dumps_info, loads_info
from .layout import PERSIST_DIR
from .locks import Lock
from .persist_cache import MAX_SIZE_ENV, CacheSizeWarning, Location, locate, max_entry_size, too_large
from .rubyjson import ruby_time
from .store import Store

log = logging.getLogger(__name__)

SIDECAR = ".info"
MARK = "scout_persist.save"  # the sidecar's "writer": entries invalidate(None) and gc know as ours


def _location(key: str, store: Store | str | None) -> Location:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"output key {key!r} is not usable: give a non-empty str, e.g. save(value, 'counts')")
    return locate(key, store=store)


def _sidecar(loc: Location) -> str:
    return loc.key + SIDECAR


def save(
    value: Any,
    key: str,
    *,
    store: Store | str | None = None,
    format: str | None = None,
    compression: str | None = None,
    pin: bool = False,
    hmac_key: bytes | str | None = None,
) -> Any:
    """Store ``value`` under ``key`` (replacing any entry) and return the value :func:`load` will give back.

    ``format``: None (by the value's type), ``"npy"``, ``"parquet"``, ``"arrow"``, ``"safetensors"``, ``"json"`` or
    ``"pickle"``; ``compression``: a codec spec (default ``$SCOUT_PERSIST_COMPRESSION``); ``pin``: gc never removes
    the entry.  An output over ``$SCOUT_PERSIST_MAX_ENTRY_SIZE`` is returned without being stored.
    """

    loc = _location(key, store)
    where = loc.url
    encoded = payload.encode(
        value, None, key=loc.key, compression=compression, hmac_key=hmac_key, format=format, location=where
    )
    if encoded.data is None:
        raise InvalidInputError(f"save(None, {key!r}): None is not an output; invalidate({key!r}) removes an entry")

    if too_large(nbytes(encoded.data), where):
        return encoded.value
    sidecar = {
        "status": "done",
        "writer": MARK,
        "key": key,
        "saved": ruby_time(),
        "pinned": bool(pin),
        payload.RECORD_KEY: encoded.record,
    }
    with Lock(loc.lock_store, loc.lock_key):
        payload.write(loc.store, loc.key, encoded.data)  # the payload first: the sidecar is the commit point
        loc.store.put(_sidecar(loc), dumps_info(sidecar))
    return encoded.value


def _read_sidecar(loc: Location) -> dict[str, Any]:
    try:
        raw = loc.store.get(_sidecar(loc))
    except KeyNotFound:
        raise KeyNotFound(
            f"no saved output {loc.url!r} (nothing was saved under this key, or it was invalidated)"
        ) from None
    info = loads_info(raw, loc.url + SIDECAR, strict=True)
    if payload.record_of(info) is None:
        raise CorruptPayloadError(f"{loc.url}{SIDECAR} holds no payload record; it was not written by save()")
    return info


def load(key: str, *, store: Store | str | None = None, hmac_key: bytes | str | None = None) -> Any:
    """The value saved under ``key``, verified against its checksum; KeyNotFound when there is none."""
    loc = _location(key, store)
    for attempt in (0, 1):
        info = _read_sidecar(loc)
        record = payload.record_of(info)
        try:
            data = payload.read(loc.store, loc.key, record, use=True)
        except KeyNotFound:
            if attempt:
                raise KeyNotFound(f"saved output {loc.url!r} lost its payload; save it again") from None
            continue
        try:
            value = payload.decode(data, record, key=loc.key, location=loc.url, hmac_key=hmac_key)
        except CorruptPayloadError:
            # a writer may have replaced the payload, then its sidecar, since we read the sidecar: read both again
            if attempt or _read_sidecar(loc) == info:
                raise
            continue
        return value
    raise AssertionError("unreachable")


def exists(key: str, *, store: Store | str | None = None) -> bool:
    """Whether an output is saved under ``key`` (its sidecar and payload are there; nothing is read)."""
    loc = _location(key, store)
    return loc.store.exists(_sidecar(loc)) and loc.store.exists(loc.key)


def invalidate(key: str | None = None, *, store: Store | str | None = None) -> int:
    """Remove the output saved under ``key``, or every output saved with :func:`save` (``key=None``); returns how
    many were removed.  Entries written by :func:`persist` (or Ruby) without a sidecar are left alone."""
    if key is not None:
        loc = _location(key, store)
        found = loc.store.exists(_sidecar(loc))
        _remove(loc.store, loc.key)
        return int(found)
    root = store if isinstance(store, Store) else Store(store)
    removed = 0
    for entry in saved_entries(root):
        _remove(root, entry)
        removed += 1
    return removed


def _remove(store: Store, entry: str) -> None:
    store.delete(entry + SIDECAR)  # the sidecar first: a reader then sees no entry, never a half one
    store.delete(entry)


def saved_entries(store: Store) -> list[str]:
    """Keys of the outputs saved with :func:`save` in ``store``'s persist cache."""
    out = []
    for k in store.list(PERSIST_DIR):
        if not k.endswith(SIDECAR):
            continue
        try:
            info = json.loads(store.get(k))
        except (KeyNotFound, ValueError):
            continue
        if isinstance(info, dict) and info.get("writer") == MARK:
            out.append(k[: -len(SIDECAR)])
    return out


__all__ = [
    "CacheSizeWarning",
    "MAX_SIZE_ENV",
    "exists",
    "invalidate",
    "load",
    "max_entry_size",
    "save",
    "saved_entries",
    "too_large",
]
