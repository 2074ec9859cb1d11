"""When a stored entry was last used, for ``scout-persist gc --max-size`` (least recently used first).

A use is a load that returned the value: ``Job.load``, a scout task's cache hit, ``scout_persist.load``.  On local
disks it is recorded as the result file's access time, set explicitly (so ``noatime`` mounts still record it) while
its modification time is kept: Ruby compares modification times, never access times.  It is recorded when the last
use (or write) is older than :data:`USE_EVERY`, on the file the load has open (no second lookup): a cache hit costs
no write of its own, and ``gc`` orders entries by the hour.  Object stores have no access time and a use is not worth
a write request, so there the last use is the last write.
"""

from __future__ import annotations

import os
import time

from .store import Store

USE_EVERY = 3600.0  # seconds: a use is recorded when the entry's last use (or write) is older than this


def read_used(store: Store, key: str) -> bytes:
    """The bytes of the entry at ``key``, recording a use of it (see the module docstring); KeyNotFound when absent."""
    return store.get(key, use=USE_EVERY)


def touch(store: Store, key: str) -> None:
    """Record a use of the entry at ``key`` (local stores; a read-only or vanished file is left alone)."""
    if not store.is_local:
        return
    try:
        path = store.path(key)
        st = os.stat(path)
        if time.time() - max(st.st_atime, st.st_mtime) >= USE_EVERY:
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
    except (OSError, ValueError):
        pass


def last_used(atime: float | None, mtime: float | None) -> float:
    """The time of the last use of an entry from its times: the later of access (a recorded use) and modification."""
    return max(t for t in (atime, mtime, 0.0) if t is not None)


__all__ = ["USE_EVERY", "last_used", "read_used", "touch"]
