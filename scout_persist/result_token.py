"""How a Ruby-written job enters its Python dependents' signatures: the digest of its result bytes.

A Ruby job's ``.info`` records no checksum, and Ruby rewrites its timing fields (``end``, ``time_elapsed``, key order)
whenever a process that only waited on the job's lock finishes: a token taken from ``end`` would change with no
change of the value.  The result bytes are what a dependent reads, so they are the token: a rerun that writes other
bytes is a changed dependency, a rewrite of ``.info`` alone is not.  Reading a large result for every dependent's
signature would cost its size each time, so on local disks the digest is cached per file, keyed by everything a
change of its bytes changes: device, inode, size, and the modification and change times in nanoseconds (``ctime``
cannot be set back by a writer).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .errors import KeyNotFound
from .store import Store

ABSENT = "ruby:none"  # no result file (a task that returned nothing, SCOUT_FORMAT §7.3)
_CACHE_SIZE = 4096
_CHUNK = 1 << 20

_cache: OrderedDict[str, tuple[tuple[int, ...], str]] = OrderedDict()
_guard = threading.Lock()


def ruby_result_token(store: Store, key: str, info: Mapping[str, Any] | None = None) -> str:
    """``ruby:sha256:<hex>`` of the result bytes of job ``key`` (a folder result: of its files, by relative name),
    ``ruby:none`` when it has none.  ``info`` is unused: nothing in a Ruby ``.info`` says what the bytes are."""
    del info
    if not store.is_local:
        try:
            return "ruby:sha256:" + hashlib.sha256(store.get(key)).hexdigest()
        except KeyNotFound:
            return ABSENT if not store.isdir(key) else _tree_token(store, key)
    path = store.safe_path(key)
    if os.path.isdir(path):
        return _tree_token(store, key)
    digest = file_digest(path)
    return ABSENT if digest is None else "ruby:sha256:" + digest


def file_digest(path: str) -> str | None:
    """The sha256 of the file at ``path`` (None: no file), read once per version of the file in this process."""
    try:
        before = _stat_key(os.stat(path))
    except FileNotFoundError:
        return None
    with _guard:
        hit = _cache.get(path)
        if hit is not None and hit[0] == before:
            _cache.move_to_end(path)
            return hit[1]
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
            after = _stat_key(os.fstat(fh.fileno()))
    except FileNotFoundError:
        return None
    digest = h.hexdigest()
    if after == before:  # not rewritten while we read it: the digest is this version's
        with _guard:
            _cache[path] = (before, digest)
            _cache.move_to_end(path)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return digest


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _tree_token(store: Store, key: str) -> str:
    h = hashlib.sha256()
    for sub in sorted(store.list(key)):
        if store.is_local:
            digest = file_digest(store.safe_path(sub)) or ""
        else:
            digest = hashlib.sha256(store.get(sub)).hexdigest()
        h.update(f"{sub[len(key) :].lstrip('/')}\0{digest}\n".encode("utf-8", "surrogatepass"))
    return "ruby:tree:" + h.hexdigest()


__all__ = ["ruby_result_token", "file_digest"]
