"""Prefect ``LockManager`` over the core's job leases (:mod:`scout_persist.lease`), for SERIALIZABLE isolation.

On stores with conditional writes (S3) the job's ``.info`` is the lease: acquiring it *is* writing ``.info`` with
status ``start`` (conditional on the version just read), so a miss costs no lock file; on local disks the lease is
Ruby's own job lock file, so Ruby and Python writers of one job exclude each other.  Either way a holder that is
taken over (paused, cut off past its lease) has its writes refused: the newer holder's job stands.

Each planned run acquires through its attempt (:meth:`scout_persist.attempt.Attempt.acquire`): a run whose job is
already ``done`` with the same signature (a cache hit) is granted without taking the lease: one ``.info`` read, which
the run's verdict then reuses; if the job proves unusable, the verdict takes the lease then.  Holders are Prefect's
strings (host:pid:thread...), tracked per process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol

from scout_persist.lease import JobLease, LockFileLease, job_busy, job_lease, wait_until

from . import plans, settings
from .plans import NotAScoutKey, job_key_from_prefect


class _Holding(Protocol):
    """What a holder of this process holds: a planned run's attempt, or a plain lease (see acquire_lock)."""

    @property
    def held(self) -> bool: ...

    def release(self) -> None: ...


# Holdings of this process by (store, key, holder), shared by every manager instance (Prefect copies policies and
# result stores); None: a store whose .info is the lease.  Keyed by holder too: two task runs of one job in one
# process (a thread runner) may both be granted (the second as a pass once the first has committed), and the first
# one's release must find its own lease, or the lease stays held, renewed, by a process that forgot it.
_HELD: dict[tuple[str | None, str, str], _Holding | None] = {}
_GUARD = threading.Lock()


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
        return job_lease(
            settings.store_for(self.url), job_key_from_prefect(key), lease=self.lease, refresh=self.refresh
        )

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        run = plans.current(key)
        with _GUARD:
            held = (self.url, key, holder) in _HELD
            mine = _HELD.get((self.url, key, holder))
        if held and (mine is None or mine.held):
            if not (isinstance(mine, plans.TaskRunAttempt) and run is not None and mine is not run):
                return True
            self.release_lock(key, holder)  # an earlier attempt of this holder (a retry): it lets go first
        timeout = acquire_timeout if acquire_timeout is not None else self.acquire_timeout
        holding: _Holding | None
        if run is not None and settings.root_url(run.plan.url) == settings.root_url(self.url):
            # the run's attempt: a pass when its .info says it serves, else its lease (see scout_persist.attempt)
            granted, holding = run.acquire(lease=self.lease, refresh=self.refresh, timeout=timeout), run
        else:
            granted, holding = self._plain(key, timeout)
        if granted:
            with _GUARD:
                _HELD[(self.url, key, holder)] = holding
        return granted

    def _plain(self, key: str, timeout: float | None) -> tuple[bool, _Holding | None]:
        """Not a planned run of this store: the job's lock file where there is one; where the ``.info`` is the
        lease, taking it means writing the job, which only a run does: granted as it is."""
        lease = self._lease(key)
        if isinstance(lease, LockFileLease):
            return lease.acquire(timeout=timeout), lease
        return True, None

    def release_lock(self, key: str, holder: str) -> None:
        with _GUARD:
            if (self.url, key, holder) not in _HELD:
                return
            mine = _HELD.pop((self.url, key, holder))
        if mine is not None:
            mine.release()

    def is_locked(self, key: str) -> bool:
        with _GUARD:
            if any(held[:2] == (self.url, key) for held in _HELD):
                return True
        try:
            return job_busy(settings.store_for(self.url), job_key_from_prefect(key), self.lease)
        except NotAScoutKey:
            return False  # Prefect's record of a failed run: no Scout job, no lease

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with _GUARD:
            held = (self.url, key, holder) in _HELD
            mine = _HELD.get((self.url, key, holder))
        return held and (mine is None or mine.held)

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
