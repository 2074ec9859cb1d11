"""Who may write a job now: a lease per job, with fencing, on every store.

* Object stores with conditional writes (S3, memory://): the job's ``.info`` *is* the lease.  Writing ``.info``
  with status ``start`` and a ``lease`` record (holder identity, token, fence) by a conditional PUT —
  ``If-None-Match: *`` for a new job, ``If-Match: <version seen>`` over an old, failed or abandoned one — is the
  acquisition; every later ``.info`` write of the holder (renewals, ``done``, ``error``) is conditional on the
  version it last wrote, and so is its result write; a holder whose lease was taken over finds its writes refused.
  A new job is three PUTs (acquisition, result, ``done``): its acquisition, ``If-None-Match: *`` sent before any
  read, is the lookup (a refused one hands back the ``.info`` the store read); a hit is two GETs (``.info``, result)
  when the job is expected to exist (:mod:`scout_persist.presence`).
* Local disks and other stores: Ruby's own job lock file (``tmp/persist_locks/<mangle(path.persist)>.lock``, see
  :mod:`scout_persist.locks`), so Ruby and Python processes sharing a tree exclude each other; every write of the
  holder first checks that the lock entry is still its own.

Each acquisition gets a fence, one more than the fence recorded in the job's previous ``.info``, recorded with the
holder in ``.info`` under ``lease``.  Whether a holder is alive is judged as locks judge it: same machine, by its
process identity; otherwise by renewals seen by the store's clock or the waiter's own monotonic clock.
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .errors import InfoFormatError, KeyNotFound, LeaseLost, LockTimeout
from .info import InfoFile, dumps_info, loads_info
from .layout import lock_key_for
from .lock_folder import extra_lock_folder
from .locks import Lock, Watch, describe_holder, renewals, stale_reason
from .process import Identity, hostname
from .store import ABSENT, Conflict, Store, Sync, Versioned

log = logging.getLogger(__name__)
LEASE_KEY = "lease"
RUNNING = ("setup", "start")


def lease_record(token: str, fence: int, seconds: float, seq: int = 0) -> dict[str, Any]:
    """The ``lease`` entry of a held job's ``.info``: who holds it, until when it must renew, which acquisition."""
    me = Identity.current()
    return {
        "token": token,
        "fence": fence,
        "seconds": seconds,
        "seq": seq,
        "host": me.host,
        "boot_id": me.boot_id,
        "pidns": me.pidns,
        "pid": me.pid,
        "start": me.start,
    }


def next_fence(previous_info: dict[str, Any] | None) -> int:
    record = (previous_info or {}).get(LEASE_KEY)
    try:
        return int(record.get("fence", 0)) + 1 if isinstance(record, dict) else 1
    except (TypeError, ValueError):
        return 1


def holder_lines(info: dict[str, Any]) -> dict[str, str]:
    """A running job's holder as a lock entry's lines (for :func:`scout_persist.locks.stale_reason`)."""
    record = got if isinstance(got := info.get(LEASE_KEY), dict) else {}
    host = str(record.get("host") or info.get("pid_hostname") or "")
    lines = {
        "host": hostname() if host == hostname(env=True) else host,  # $HOSTNAME in .info, as Ruby writes it
        "pid": str(record.get("pid") or info.get("pid") or ""),
    }
    for name in ("boot_id", "pidns", "start"):
        if record.get(name):
            lines[name] = str(record[name])
    if record.get("seconds"):
        lines["lease"] = str(record["seconds"])
    return lines


class JobLease:
    """The right to write one job; :func:`job_lease` picks the kind the store supports."""

    token: str
    fence: int = 0
    lease: float

    def put_info(self, data: bytes, durable: bool = True) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def put_result(self, key: str, data: bytes, durable: bool | Sync = True) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def check(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def held(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


class LockFileLease(JobLease):
    """Ruby's job lock file: acquired before anything is written, checked before every write.

    Where a Ruby process started from this working directory would lock the job elsewhere than the root's
    ``tmp/persist_locks`` (:func:`scout_persist.lock_folder.extra_lock_folder`), that lock is taken too, after the
    root's (one order for every Python process: no deadlock; Ruby takes only its own)."""

    def __init__(self, store: Store, job_key: str, lease: float = 30.0, refresh: float = 2.0) -> None:
        self.store, self.job_key, self.lease = store, job_key, lease
        path = store.path(job_key)
        self.lock = Lock(store, lock_key_for(path), lease=lease, refresh=refresh)
        self.ruby_lock: Lock | None = None
        if store.is_local:
            folder = extra_lock_folder(store.root)
            if folder is not None:
                name = posixpath.basename(lock_key_for(path))
                self.ruby_lock = Lock(Store(folder), name, lease=lease, refresh=refresh)
        self.token = ""

    def acquire(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):
            return False
        if self.ruby_lock is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.ruby_lock.acquire(timeout=left):
                self.lock.release()
                return False
        self.token = self.lock.token or ""
        return True

    @property
    def broken(self) -> dict[str, str] | None:
        """The stale entry winning it broke (its holder died holding the lock), None when it was free or released."""
        return self.lock.broken or (self.ruby_lock.broken if self.ruby_lock is not None else None)

    def check(self) -> None:
        self.lock.check()
        if self.ruby_lock is not None:
            self.ruby_lock.check()

    def put_info(self, data: bytes, durable: bool = True) -> None:
        self.check()
        self.store.put(self.job_key + ".info", data, durable=durable)

    def put_result(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        self.check()
        self.store.put(key, data, durable=durable)

    def release(self) -> None:
        if self.ruby_lock is not None:
            self.ruby_lock.release()
        self.lock.release()

    @property
    def held(self) -> bool:
        return self.lock.held and (self.ruby_lock is None or self.ruby_lock.held)


class InfoLease(JobLease):
    """The job's ``.info`` as the lease (stores with conditional writes).

    :meth:`observe` reads it; the first :meth:`put_info` is the acquisition (conditional on what was observed, or
    ``If-None-Match: *`` when nothing was: the create that is the lookup of a job expected new); later ones, the
    renewals and the result write are conditional on what this holder last wrote.
    """

    def __init__(self, store: Store, job_key: str, lease: float = 30.0, refresh: float = 10.0) -> None:
        self.store, self.job_key, self.lease, self.refresh = store, job_key, lease, refresh
        self.info_key = job_key + ".info"
        self.token = uuid.uuid4().hex
        self.seen: Versioned | None = None  # what the acquisition is conditional on
        self.version: str | None = None  # the version of .info this holder last wrote (None: not acquired)
        self._last: bytes = b""
        self._result_expect: Any = "unknown"
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self.lost = False
        self._watch = Watch()

    # -- observing ---------------------------------------------------------------------------------------
    def observe(self, refused: Conflict | None = None) -> dict[str, Any] | None:
        """Read the ``.info`` (one GET) as the version the acquisition will be conditional on; its content.  After
        an acquisition ``refused`` by a store that read the ``.info`` back (S3), what it read, with no request."""
        if refused is not None and refused.read:
            self.seen = refused.current
        else:
            try:
                self.seen = self.store.get_versioned(self.info_key)
            except KeyNotFound:
                self.seen = None
        if self.seen is None:
            return None
        try:
            return loads_info(self.seen.data, self.store.where(self.info_key), strict=True)
        except InfoFormatError:
            return {"status": "noinfo"}

    def busy_reason(self, info: dict[str, Any] | None) -> str | None:
        """Why the observed job may not be taken now (another live holder runs it), or None when it may."""
        if info is None or info.get("status") not in RUNNING:
            return None
        lines = holder_lines(info)
        seen = self.seen
        unchanged = self._watch.unchanged_for(seen.version if seen else None)
        if stale_reason(lines, self.lease, seen.age if seen else None, unchanged):
            return None
        return f"job {self.store.where(self.job_key)!r} is being computed by {describe_holder(lines)}"

    # -- writing -----------------------------------------------------------------------------------------
    def put_info(self, data: bytes, durable: bool = True) -> None:
        with self._guard:
            if self.lost:
                raise self._lost_error()
            first = self.version is None
            expect = (self.seen.version if self.seen is not None else ABSENT) if first else self.version
            try:
                self.version = self.store.put_if(self.info_key, data, expect)
            except Conflict as exc:
                if not first:
                    self.lost = True
                    raise self._lost_error() from exc
                raise
            self._last = data
            if first:
                self._result_expect = ABSENT if self.seen is None else "unknown"
                self._start_renewals()
            if not _running(data):
                self._stop.set()  # done, error or aborted: nothing left to renew

    def put_result(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        """Write the result only while this holder's lease stands: conditional on the result's version at the
        acquisition (absent for a new job), so a holder that was taken over cannot overwrite the new holder's."""
        if self.version is None or self.lost:
            raise self._lost_error()
        expect = self._result_expect
        if expect == "unknown":
            expect = self._version_of(key)
        try:
            self.store.put_if(key, data, expect)
        except Conflict:
            self.check()  # another holder wrote it?  Or an earlier run's file we did not know of:
            self.store.put_if(key, data, self._version_of(key))  # still ours: replace it
        self._result_expect = "unknown"

    def check(self) -> None:
        """LeaseLost unless the ``.info`` is still the one this holder last wrote (one GET)."""
        if self.version is None:
            raise self._lost_error()
        try:
            now = self.store.get_versioned(self.info_key)
        except KeyNotFound:
            now = None
        if now is None or now.version != self.version:
            self.lost = True
            raise self._lost_error()

    def release(self) -> None:
        """Stop renewing; a job left ``start`` (its run ended without ``done`` or ``error``) becomes ``aborted``."""
        self._stop.set()
        renewals.remove(self)
        if self.version is None or self.lost or not _running(self._last):
            return
        info = loads_info(self._last)
        info["status"] = "aborted"
        try:
            self.put_info(dumps_info(info))
        except (LeaseLost, OSError) as exc:
            log.warning("job %s: could not mark the abandoned run aborted (%s)", self.job_key, exc)

    @property
    def held(self) -> bool:
        return self.version is not None and not self.lost

    @property
    def written(self) -> bytes:
        """The ``.info`` bytes this holder last wrote."""
        return self._last

    # -- internals -----------------------------------------------------------------------------------------
    def _version_of(self, key: str) -> Any:
        try:
            return self.store.get_versioned(key).version
        except KeyNotFound:
            return ABSENT

    def _lost_error(self) -> LeaseLost:
        return LeaseLost(
            f"job {self.store.where(self.job_key)!r}: this run's lease (fence {self.fence}) was taken over by another "
            f"holder while it was paused or cut off past its lease of {self.lease:g}s; its result is not committed "
            "and the other holder's job stands"
        )

    def _start_renewals(self) -> None:
        renewals.add(self)

    def _renew_tick(self) -> None:
        """One renewal, run by the process's renewer thread when this lease is due."""
        with self._guard:
            if self._stop.is_set() or self.lost or not _running(self._last):
                renewals.remove(self)
                return
            info = loads_info(self._last)
            record = info.get(LEASE_KEY)
            if isinstance(record, dict):
                record["seq"] = int(record.get("seq", 0)) + 1
            data = dumps_info(info)
            try:
                self.version = self.store.put_if(self.info_key, data, self.version)
                self._last = data
            except Conflict:
                self.lost = True
                renewals.remove(self)
                log.error("job %s: its lease was taken over by another holder; this run will not commit", self.job_key)
            except OSError:
                pass  # transient: the next renewal retries; the lease covers the gap


def rewrite_info(store: Store, job_key: str, change: Callable[[InfoFile], bool], timeout: float | None = 60.0) -> bool:
    """Apply ``change`` to a job's ``.info`` and write it, never over a concurrent writer: under the job's lock file
    (local disks, as Ruby's writers take it), or as a conditional write retried on conflict (object stores).
    ``change`` returns False to leave the file as it is; returns whether it was written."""
    info_key = job_key + ".info"
    if not store.conditional_writes:
        lock = Lock(store, lock_key_for(store.path(job_key)), timeout=timeout)
        with lock:
            info = InfoFile(store, info_key)
            if not change(info):
                return False
            lock.check()
            info.save()
            return True
    for _ in range(100):
        seen = store.get_versioned(info_key)
        written: list[bytes] = []
        info = InfoFile(store, info_key, put=lambda data, durable: written.append(data))  # noqa: B023 - used in this iteration
        info._data = loads_info(seen.data, store.where(info_key), strict=True)
        if not change(info):
            return False
        if not written:
            info.save()
        try:
            store.put_if(info_key, written[-1], seen.version)
            return True
        except Conflict:
            continue  # someone wrote it meanwhile: apply the change to the new content
    raise LockTimeout(f"{store.where(info_key)!r} kept changing under 100 attempts to rewrite it; try again later")


def _running(data: bytes) -> bool:
    try:
        return json.loads(data).get("status") in RUNNING
    except (ValueError, AttributeError):
        return False


def job_lease(store: Store, job_key: str, lease: float = 30.0, refresh: float = 2.0) -> JobLease:
    """The lease kind for ``store``: the ``.info`` itself where writes can be conditional, else the lock file."""
    if store.conditional_writes:
        return InfoLease(store, job_key, lease=lease, refresh=max(refresh, min(10.0, lease / 3)))
    return LockFileLease(store, job_key, lease=lease, refresh=refresh)


def job_busy(store: Store, job_key: str, lease: float = 30.0) -> bool:
    """Whether a live holder computes job ``job_key`` now: its ``.info`` lease is held (stores with conditional
    writes), or its lock file is held and not stale (elsewhere)."""
    taken = job_lease(store, job_key, lease=lease)
    if isinstance(taken, InfoLease):
        return taken.busy_reason(taken.observe()) is not None
    assert isinstance(taken, LockFileLease)  # job_lease gives one of the two kinds
    holder = taken.lock.holder()
    return holder is not None and stale_reason(holder, lease, store.age(taken.lock.key)) is None


def wait_until(deadline: float | None, poll: float) -> bool:
    """Sleep one poll; False when ``deadline`` (monotonic) has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        return False
    time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
    return True


__all__ = [
    "InfoLease",
    "JobLease",
    "LockFileLease",
    "holder_lines",
    "job_busy",
    "job_lease",
    "lease_record",
    "next_fence",
    "rewrite_info",
    "wait_until",
]
