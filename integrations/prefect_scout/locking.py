"""Prefect ``LockManager`` over Scout's own job lock (``scout_persist.locks.Lock``), for SERIALIZABLE isolation.

The lock of cache key ``W/t/name`` is Ruby's job lock ``tmp/persist_locks/<mangle(<job path>.persist)>.lock`` in
the same store, so Ruby and Python writers of one job exclude each other.  A holder refreshes its lease; a lock whose
pid is dead on this host, or whose lease ran out elsewhere, is broken by the next taker: a killed run never blocks
the next one for longer than the lease.  Holders are Prefect's strings (host:pid:thread...), tracked per process.
A run whose job is already done with the same signature (a cache hit) is granted without a lock file: one ``.info``
read, which the metadata reads of the run then reuse.  If the job proves unusable, the real lock is taken then.
"""

from __future__ import annotations

import asyncio
import threading
import time

from scout_persist.errors import InfoFormatError, KeyNotFound, LockTimeout
from scout_persist.info import loads_info
from scout_persist.locks import Lock, lock_key_for, parse_lock, stale_reason
from scout_persist.signature import stored_signature

from . import hits, plans, settings
from .storage import NotAScoutKey, job_key

# Held locks of this process, shared by every manager instance (Prefect copies policies and result stores).
_HELD: dict[tuple[str | None, str], tuple[str, Lock | None]] = {}  # None: granted without a lock file
_GUARD = threading.Lock()


class ScoutLockManager:
    """Exactly-once for scout tasks: one holder per job across threads, processes and hosts sharing a store."""

    def __init__(self, url: str | None = None, lease: float = 30.0, refresh: float = 2.0,
                 acquire_timeout: float | None = None) -> None:
        self.url = url
        self.lease = lease
        self.refresh = refresh
        self.acquire_timeout = acquire_timeout

    def __repr__(self) -> str:
        return f"ScoutLockManager(url={self.url!r}, lease={self.lease}, refresh={self.refresh})"

    def _lock(self, key: str) -> Lock:
        store = settings.store_for(self.url)
        return Lock(store, lock_key_for(store.path(job_key(key))), lease=self.lease, refresh=self.refresh)

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        with _GUARD:
            mine = _HELD.get((self.url, key))
        if mine is not None and mine[0] == holder and (mine[1] is None or mine[1].held):
            return True
        plan = plans.current(key)
        if plan is not None and self._committed(key, plan):
            # Nothing to protect: the job is done with this run's signature and a done job is never rewritten
            # for the same signature, so the run only reads it.  No lock file; release is a no-op.
            with _GUARD:
                _HELD[(self.url, key)] = (holder, None)
            plan.lock_pass = (self, holder)
            return True
        return self._acquire_real(key, holder, acquire_timeout)

    def _acquire_real(self, key: str, holder: str, acquire_timeout: float | None = None) -> bool:
        lock = self._lock(key)
        timeout = acquire_timeout if acquire_timeout is not None else self.acquire_timeout
        if not lock.acquire(timeout=timeout):
            return False
        with _GUARD:
            _HELD[(self.url, key)] = (holder, lock)
        return True

    def _committed(self, key: str, plan: plans.RunPlan) -> bool:
        """Whether the job of ``key`` looks done with ``plan``'s signature: ONE read of its ``.info`` (kept on the
        plan for the hit check of this run, which still verifies the result).  Any doubt says no."""
        if settings.root_url(plan.url) != settings.root_url(self.url):
            return False
        store = settings.store_for(self.url)
        info_key = job_key(key) + ".info"
        try:
            raw = store.get(info_key)
            info = loads_info(raw, store.path(info_key))
        except (KeyNotFound, InfoFormatError):
            return False
        if stored_signature(info) is None:
            return False  # not written by this plug-in: let the full check decide under the lock
        if hits.why_not_usable(info, plan) is not None:
            return False
        plan.info_raw = raw
        return True

    def take_real_lock(self, key: str, holder: str) -> None:
        """Turn a lock granted without a lock file into the real lock (the job turned out unusable)."""
        if not self._acquire_real(key, holder):
            raise LockTimeout(
                f"scout job lock of {key!r} in {settings.root_url(self.url)!r} not acquired within "
                f"{self.acquire_timeout}s: another run holds it; raise acquire_timeout or stop that run"
            )
        plan = plans.current(key)
        if plan is not None:
            plan.lock_pass = None

    def release_lock(self, key: str, holder: str) -> None:
        with _GUARD:
            mine = _HELD.get((self.url, key))
            if mine is None or mine[0] != holder:
                return
            del _HELD[(self.url, key)]
        if mine[1] is not None:
            mine[1].release()

    def is_locked(self, key: str) -> bool:
        with _GUARD:
            if (self.url, key) in _HELD:
                return True
        try:
            lock = self._lock(key)
        except NotAScoutKey:
            return False  # Prefect's record of a failed run: no Scout job, no lock
        store = lock.store
        try:
            raw = store.get(lock.key)
            mtime = store.mtime(lock.key)
        except KeyNotFound:
            return False
        return stale_reason(parse_lock(raw), mtime, self.lease) is None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with _GUARD:
            mine = _HELD.get((self.url, key))
        return mine is not None and mine[0] == holder and (mine[1] is None or mine[1].held)

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_for_lock, key, timeout)


__all__ = ["ScoutLockManager"]
