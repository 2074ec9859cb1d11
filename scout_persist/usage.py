"""When a stored entry was last used, for ``scout-persist gc --max-size`` (least recently used first).

A use is a load that returned the value: ``Job.load``, a scout task's cache hit, ``scout_persist.load``.  On local
disks it is recorded as the result file's access time, set explicitly (so ``noatime`` mounts still record it) while
its modification time is kept: Ruby compares modification times, never access times.  Object stores have no
access time and a use is not worth a write request, so there the last use is the last write.
"""

from __future__ import annotations

import os
import time

from .store import Store


def touch(store: Store, key: str) -> None:
    """Record a use of the entry at ``key`` (local stores; a read-only or vanished file is left alone)."""
    if not store.is_local:
        return
    try:
        path = store.path(key)
        st = os.stat(path)
        os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
    except (OSError, ValueError):
        pass


def last_used(atime: float | None, mtime: float | None) -> float:
    """The time of the last use of an entry from its times: the later of access (a recorded use) and modification."""
    return max(t for t in (atime, mtime, 0.0) if t is not None)


__all__ = ["last_used", "touch"]
