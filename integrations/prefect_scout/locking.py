"""Prefect ``LockManager`` over the core's job leases (:mod:`scout_persist.lease`), for SERIALIZABLE isolation.

On stores with conditional writes (S3) the job's ``.info`` is the lease: acquiring it *is* writing ``.info`` with
status ``start`` (conditional on the version just read), so a miss costs no lock file; on local disks the lease is
Ruby's own job lock file, so Ruby and Python writers of one job exclude each other.  Either way a holder that is
taken over (paused, cut off past its lease) has its writes refused: the newer holder's job stands.

A run whose job is already ``done`` with the same signature (a cache hit) is granted without taking the lease: one
``.info`` read, which the hit check of the run then reuses.  If the job proves unusable, the lease is taken then.
Holders are Prefect's strings (host:pid:thread...), tracked per process.
"""

from __future__ import annotations

import asyncio
import threading
import time

from scout_persist.errors import InfoFormatError, KeyNotFound, LockTimeout
from scout_persist.handover import settle_handover
from scout_persist.info import loads_info
from scout_persist.lease import InfoLease, JobLease, LockFileLease, job_lease, wait_until
from scout_persist.locks import stale_reason
from scout_persist.signature import stored_signature
from scout_persist.store import Conflict

from . import hits, lifecycle, plans, settings
from .storage import NotAScoutKey, job_key

# Held leases of this process, shared by every manager instance (Prefect copies policies and result stores).
_HELD: dict[tuple[str | None, str], tuple[str, JobLease | None]] = {}  # None: granted for a read (a hit)
_GUARD = threading.Lock()
POLL = 0.25


class ScoutLockManager:
    """Exactly-once for scout tasks: one holder per job across threads, processes and hosts sharing a store."""

    def __init__(
        self, url: str | None = None, lease: float = 30.0, refresh: float = 2.0, acquire_timeout: float | None = None
    ) -> None:
        self.url = url
        self.lease = lease
        self.refresh = refresh
        self.acquire_timeout = acquire_timeout

    def __repr__(self) -> str:
        return f"ScoutLockManager(url={self.url!r}, lease={self.lease}, refresh={self.refresh})"

    def _lease(self, key: str) -> JobLease:
        return job_lease(settings.store_for(self.url), job_key(key), lease=self.lease, refresh=self.refresh)

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        with _GUARD:
            mine = _HELD.get((self.url, key))
        if mine is not None and mine[0] == holder and (mine[1] is None or mine[1].held):
            return True
        plan = plans.current(key)
        timeout = acquire_timeout if acquire_timeout is not None else self.acquire_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        if plan is not None and settings.root_url(plan.url) == settings.root_url(self.url):
            if not settings.store_for(self.url).conditional_writes and self._committed(key, plan):
                return self._pass(key, holder, plan)  # a hit: no lease to build
        lease = self._lease(key)
        if plan is None or settings.root_url(plan.url) != settings.root_url(self.url):
            granted = self._acquire_lock_file(lease, deadline) if isinstance(lease, LockFileLease) else True
            return self._hold(key, holder, lease if granted and isinstance(lease, LockFileLease) else None, granted)
        if isinstance(lease, InfoLease):
            return self._acquire_info(key, holder, plan, lease, deadline)
        assert isinstance(lease, LockFileLease)  # job_lease gives one of the two kinds
        if not self._acquire_lock_file(lease, deadline):
            return False
        settle_handover(lease)  # a Ruby holder that just released it may still owe its .info 'done'
        plan.lease = lease
        return self._hold(key, holder, lease, True)

    def _acquire_info(
        self, key: str, holder: str, plan: plans.RunPlan, lease: InfoLease, deadline: float | None
    ) -> bool:
        """Observe the job's ``.info``: done and usable -> a read; held by a live run -> wait; else take it by
        writing ``start`` conditionally on what was observed (another taker first -> observe again)."""
        info = lease.observe()
        while True:
            if plan.lock_pass is None and info is not None and hits.why_not_usable(info, plan) is None:
                plan.info_raw = lease.seen.data if lease.seen else None
                return self._pass(key, holder, plan)
            if lease.busy_reason(info) is not None:
                if not wait_until(deadline, POLL):
                    return False
                info = lease.observe()
                continue
            writer = lifecycle.writer_for(plan, lease, previous=lease.seen.data if lease.seen else None)
            try:
                lifecycle.begin(plan, writer)  # the conditional .info write: the acquisition
            except Conflict:
                info = lease.observe()  # another taker was first
                continue
            plan.lease, plan.writer = lease, writer
            plan.info_raw, plan.job_absent = lease.written, False  # the hit check then sees our 'start': a miss
            return self._hold(key, holder, lease, True)

    @staticmethod
    def _acquire_lock_file(lease: LockFileLease, deadline: float | None) -> bool:
        return lease.acquire(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _pass(self, key: str, holder: str, plan: plans.RunPlan) -> bool:
        # Nothing to protect: the job is done with this run's signature and a done job is never rewritten for the
        # same signature, so the run only reads it.  No lease; release is a no-op.
        plan.lock_pass = (self, holder)
        return self._hold(key, holder, None, True)

    def _hold(self, key: str, holder: str, lease: JobLease | None, granted: bool) -> bool:
        if granted:
            with _GUARD:
                _HELD[(self.url, key)] = (holder, lease)
        return granted

    def _committed(self, key: str, plan: plans.RunPlan) -> bool:
        """Whether the job of ``key`` looks done with ``plan``'s signature: ONE read of its ``.info`` (kept on the
        plan for the hit check of this run, which still verifies the result).  Any doubt says no."""
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
        """Take the lease after a hit granted without one proved unusable (damaged, replaced)."""
        plan = plans.current(key)
        with _GUARD:
            _HELD.pop((self.url, key), None)
        if not self.acquire_lock(key, holder):
            raise LockTimeout(
                f"scout job lease of {key!r} in {settings.root_url(self.url)!r} not acquired within "
                f"{self.acquire_timeout}s: another run holds it; raise acquire_timeout or stop that run"
            )
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
            lease = self._lease(key)
        except NotAScoutKey:
            return False  # Prefect's record of a failed run: no Scout job, no lease
        if isinstance(lease, InfoLease):
            return lease.busy_reason(lease.observe()) is not None
        assert isinstance(lease, LockFileLease)  # job_lease gives one of the two kinds
        holder = lease.lock.holder()
        return holder is not None and stale_reason(holder, self.lease, lease.lock.store.age(lease.lock.key)) is None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with _GUARD:
            mine = _HELD.get((self.url, key))
        return mine is not None and mine[0] == holder and (mine[1] is None or mine[1].held)

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if not wait_until(deadline, 0.05):
                return False
        return True

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        return await asyncio.to_thread(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_for_lock, key, timeout)


__all__ = ["ScoutLockManager"]
