"""A lease lock over any store: Scout's lock file content, idempotent exclusive create, leases judged safely.

The lock is one entry (``tmp/persist_locks/<mangled>.lock`` for Scout's own locks) created exclusively:
Ruby lockfile's hard-link protocol on local file systems (so Ruby and Python processes exclude each other), a
conditional PUT (``If-None-Match: *``) on object stores, which recognises its own entry after a lost reply.
Its content is Ruby's ``host/pid/ppid/time`` lines plus who holds it — ``boot_id``, ``pidns`` and the process
``start`` time, so a pid reused after a restart is not taken for the holder — its ``lease`` and a random ``token``.
While held, a thread renews it every ``refresh`` seconds: a touch of the file locally (never a rewrite, so a
renewal can not put back a lock someone else took), a conditional PUT (``If-Match`` on the version it last wrote)
on object stores, which tells the holder the moment it lost the lock.

When is an entry stale?  Never by comparing a wall clock stamp written by one host with another host's clock:

* same machine (host, boot id and pid namespace equal): stale when its process is dead or was replaced (another
  start time); a live, running holder is never broken, however long it runs (Ruby's rule);
* otherwise: when it has not been renewed for a whole lease, by the store's own clock (S3's ``Date`` minus
  ``Last-Modified``; locally the mtime of a probe file), or by the waiter's own monotonic clock since it first saw
  the entry in this state.

A stale entry is broken by a conditional delete of exactly the version seen (object stores), or by exclusively
creating ``<key>.break.<digest of the content seen>`` and deleting the entry only if it still holds that content.
A holder that was stopped past its lease finds out on its next renewal or :meth:`Lock.check`; callers check
before they commit (fencing).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import threading
import time
import uuid
from typing import Any, Protocol

from .errors import InvalidInputError, KeyNotFound, LeaseLost, LockTimeout
from .process import Identity, hostname, pid_alive, proc_stat
from .store import ABSENT, Conflict, Store, Versioned, check_key

# Seconds (at most a tenth of the lease) after winning a lock on a local disk during which its holder takes the entry
# for its own without reading it back (check, release).  Nobody may break it that soon: on this host a live holder is
# never broken and a stopped one only once its entry is a lease old; elsewhere, only once its entry is a lease old by
# the store's clock, and a new entry is as young as it gets.  A write this soon after the win is as safe as a read of
# the entry followed by the write; a small task commits inside it and never reads its lock back.
FRESH = 0.5


def ruby_lock_time(t: float | None = None) -> str:
    """Ruby lockfile's time stamp: local time, microseconds right-padded with '0' (its quirk)."""
    t = time.time() if t is None else t
    dt = datetime.datetime.fromtimestamp(t)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + "." + str(dt.microsecond).ljust(6, "0")


def parse_lock(raw: bytes) -> dict[str, str]:
    """The ``key: value`` lines of a lock entry (Ruby's or ours); unreadable lines are ignored."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def holder_state(info: dict[str, str], me: Identity | None = None) -> str:
    """What this machine can tell of the holder of a lock entry: ``alive`` (running), ``stopped`` (SIGSTOP),
    ``dead`` (gone, or its pid now belongs to another process), or ``unknown`` (another machine, or another pid
    namespace, where only the lease can tell)."""
    me = me or Identity.current()
    holder = Identity.of(info)
    if holder is None or holder.host != me.host:
        return "unknown"
    if holder.boot_id or holder.pidns:  # ours: judge by the full identity
        if holder.boot_id != me.boot_id:
            return "dead"  # the machine rebooted since: no process of that boot runs
        if holder.pidns != me.pidns:
            return "unknown"  # another container on this machine: its pids are not ours to look at
    if not pid_alive(holder.pid):
        return "dead"
    stat = proc_stat(holder.pid)
    if holder.start and stat is not None and stat[1] != holder.start:
        return "dead"  # the pid was reused by another process
    if stat is not None and stat[0] in ("T", "t"):
        return "stopped"
    return "alive"


def stale_reason(
    info: dict[str, str],
    lease: float,
    age: float | None = None,
    unchanged_for: float | None = None,
    me: Identity | None = None,
) -> str | None:
    """Why a lock entry is stale, or None when it must be honoured.

    ``age``: seconds since its last renewal by the store's own clock (None: unknown); ``unchanged_for``: seconds
    the caller has itself watched it unchanged (its monotonic clock).  No wall clock of any host is compared.
    """
    state = holder_state(info, me)
    if state == "dead":
        return f"its process (pid {info.get('pid')}) is gone from {info.get('host')}"
    if state == "alive":
        return None
    lease = _lease_of(info, lease)
    if age is not None and age > lease:
        return f"it was last renewed {age:.1f}s ago by the store's clock (lease {lease:g}s)"
    if unchanged_for is not None and unchanged_for > lease:
        return f"it has not been renewed for {unchanged_for:.1f}s (lease {lease:g}s)"
    return None


class _Renewable(Protocol):
    """What the renewer renews: a :class:`Lock`, or a ``.info`` lease (:class:`scout_persist.lease.InfoLease`)."""

    refresh: float

    def _renew_tick(self) -> None: ...


class _Renewer:
    """One thread per process renews every held lock when its time comes (no thread per lock to start and join)."""

    def __init__(self) -> None:
        self._due: dict[int, tuple[float, _Renewable]] = {}
        self._cond = threading.Condition()
        self._pid = 0
        self._wakes_at = 0.0  # when the thread wakes by itself (monotonic): a lock due later needs no wake-up

    def add(self, lock: _Renewable) -> None:
        with self._cond:
            at = time.monotonic() + lock.refresh
            self._due[id(lock)] = (at, lock)
            if self._pid != os.getpid():  # first use, or a forked child: the parent's thread is not ours
                self._pid = os.getpid()
                self._wakes_at = 0.0
                threading.Thread(target=self._loop, name="scout lock renewer", daemon=True).start()
            elif at < self._wakes_at:
                # Waking the thread costs a switch per lock (hundreds a second for small tasks, each a wait for the
                # GIL on a busy machine); it is woken only when it would otherwise sleep past this lock's renewal.
                self._cond.notify()

    def remove(self, lock: _Renewable) -> None:
        with self._cond:
            self._due.pop(id(lock), None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [lock for at, lock in self._due.values() if at <= now]
                for lock in due:
                    self._due[id(lock)] = (now + lock.refresh, lock)
                if not due:
                    wait = max(min((at for at, _ in self._due.values()), default=now + 60.0) - now, 0.001)
                    self._wakes_at = now + wait
                    self._cond.wait(timeout=wait)
                    self._wakes_at = 0.0  # awake: a lock added now is seen by the next pass
                    continue
            for lock in due:
                lock._renew_tick()


renewals = _Renewer()


def _lease_of(info: dict[str, str], default: float) -> float:
    try:
        value = float(info.get("lease", ""))
    except ValueError:
        return default
    return value if value > 0 else default


def describe_holder(info: dict[str, str] | None) -> str:
    """A short human description of a lock entry's holder for error messages."""
    if not info:
        return "an unknown holder (the entry is empty or unreadable)"
    text = f"host {info.get('host', '?')} pid {info.get('pid', '?')} since {info.get('time', '?')}"
    if info.get("lease"):
        text += f" (lease {info['lease']}s)"
    if info.get("owner"):
        text += f", owner {info['owner']}"
    return text


# ------------------------------------------------------------------------------------------------------- lock
class Watch:
    """Tracks how long the waiter has seen an entry unchanged, by the waiter's own monotonic clock."""

    def __init__(self) -> None:
        self.state: Any = None
        self.since = 0.0

    def unchanged_for(self, state: Any) -> float:
        now = time.monotonic()
        if state != self.state:
            self.state, self.since = state, now
        return now - self.since


class Lock:
    """A lease lock on ``key`` of ``store``; use as ``with Lock(store, key): ...`` or acquire/release.

    ``lease``: seconds a holder may go without renewing before another may break the lock; ``refresh``: seconds
    between renewals while held; ``timeout``: how long ``with`` waits before raising LockTimeout (None waits for
    ever); ``owner``: an optional label stored in the entry.
    """

    def __init__(
        self,
        store: Store | str | None,
        key: str,
        lease: float = 30.0,
        refresh: float = 2.0,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> None:
        if not (lease > 0 and refresh > 0 and refresh < lease):
            raise InvalidInputError(
                f"lock lease={lease!r}, refresh={refresh!r}: need 0 < refresh < lease so a live holder renews "
                "before its lease ends (e.g. lease=30.0, refresh=2.0)"
            )
        if timeout is not None and timeout < 0:
            raise InvalidInputError(f"lock timeout={timeout!r} is negative; use None to wait for ever or a number >= 0")
        self.store = store if isinstance(store, Store) else Store(store)
        self.key = check_key(key, self.store.url)
        if not self.key:
            raise InvalidInputError(f"lock key {key!r} is empty; give the key of the entry to lock")
        self.lease = float(lease)
        self.refresh = float(refresh)
        self.timeout = timeout
        self.owner = owner
        self.host = hostname()  # tests set another name to play a holder on another machine
        self._token: str | None = None
        self._version: str | None = None  # what we last wrote (object stores: the ETag; local: inode)
        self._lost = False
        self._seq = 0
        self._fresh_until = 0.0  # monotonic time until which the entry is ours without a look (see FRESH)
        self._state = threading.Lock()
        self.last_holder: dict[str, str] | None = None
        # The entry the last acquire broke (its holder died or stopped renewing), None when it found the lock free
        # or released: a broken holder may have left its work half done (scout_persist.handover).
        self.broken: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"Lock({self.store.url!r}, {self.key!r}, held={self.held})"

    # -- public API -----------------------------------------------------------
    @property
    def held(self) -> bool:
        """True while this object holds the lock (False once released or found taken by someone else)."""
        return self._token is not None and not self._lost

    @property
    def lost(self) -> bool:
        """True when the entry stopped being ours while we believed we held it."""
        return self._lost

    @property
    def token(self) -> str | None:
        return self._token

    def acquire(self, timeout: float | None = None, poll: float = 0.05) -> bool:
        """Take the lock; wait up to ``timeout`` seconds (None: for ever, 0: one try). True when taken."""
        if timeout is not None and timeout < 0:
            raise InvalidInputError(f"lock timeout={timeout!r} is negative; use None to wait for ever or a number >= 0")
        if poll <= 0:
            raise InvalidInputError(f"lock poll={poll!r} must be > 0 seconds")
        if self.held:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        watch = Watch()
        self.broken = None
        just_broke: dict[str, str] | None = None
        while True:
            # from the OS, never from `random`: a flow that calls random.seed(0) would give every process the same
            # tokens, and a holder that reads its own token in the entry takes the lock for its own
            token = uuid.uuid4().hex
            raw = self._content(token)
            created, version = self._create(raw)
            if created:
                self.broken = just_broke
                self._won(token, version)
                return True
            just_broke = None  # someone else took it after our break: that holder's release is what we follow
            seen = self._read()
            if seen is None:
                continue  # released between our create and our read: try again at once
            info = parse_lock(seen.data)
            self.last_holder = info
            if info.get("token") == token:  # our own create landed although its reply was lost
                self._won(token, seen.version)
                return True
            unchanged = watch.unchanged_for((seen.data, seen.version))
            age = seen.age if seen.age is not None else self.store.age(self.key)
            reason = stale_reason(info, self.lease, age, unchanged, self._me())
            if reason and self._break(seen):
                just_broke = info
                continue  # we removed the stale entry: try again at once
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(delay * random.uniform(0.5, 1.5), left))
            else:
                time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.5, max(poll, 0.25))

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the entry is still ours (call before committing: fencing)."""
        if self._token is None:
            raise LeaseLost(f"lock {self.key!r} in {self.store.url!r} is not held by this process")
        if not self._lost and time.monotonic() < self._fresh_until:
            return  # created by this holder moments ago: nobody may break it yet (FRESH)
        seen = self._read()
        if self._lost or seen is None or parse_lock(seen.data).get("token") != self._token:
            with self._state:
                self._lost = True
            holder = describe_holder(parse_lock(seen.data)) if seen is not None else "nobody"
            raise LeaseLost(
                f"lock {self.key!r} in {self.store.url!r} was taken over while this process held it (now held by "
                f"{holder}): this process was paused or cut off past its lease of {self.lease:g}s; refusing to "
                "commit over the new holder's work"
            )

    def release(self) -> None:
        """Give the lock back; deletes the entry only if it is still ours. Calling it twice is harmless."""
        with self._state:
            token, version = self._token, self._version
            self._token = self._version = None
        self._stop_refresher()
        if token is None or self._lost:
            return
        if self.store.conditional_writes and version is not None:
            self.store.delete_if(self.key, version)  # never someone else's entry
            return
        if time.monotonic() < self._fresh_until:
            self.store.delete(self.key)  # still ours for sure (FRESH)
            return
        seen = self._read()
        if seen is not None and parse_lock(seen.data).get("token") == token:
            self.store.delete(self.key)

    def holder(self) -> dict[str, str] | None:
        """The parsed entry of whoever holds the lock now, or None when it is free."""
        seen = self._read()
        return None if seen is None else parse_lock(seen.data)

    def __enter__(self) -> Lock:
        if not self.acquire(self.timeout):
            raise LockTimeout(
                f"lock {self.key!r} in {self.store.url!r} not acquired within {self.timeout}s: held by "
                f"{describe_holder(self.last_holder)}; wait longer (timeout=), or stop that holder: a dead holder, "
                f"or one that stops renewing for its lease, is then broken automatically"
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- internals ------------------------------------------------------------
    def _me(self) -> Identity:
        me = Identity.current()
        return me if self.host == me.host else Identity(self.host, me.boot_id, me.pidns, me.pid, me.start)

    def _content(self, token: str, seq: int = 0) -> bytes:
        me = self._me()
        lines = [
            f"host: {self.host}",
            f"pid: {me.pid}",
            f"ppid: {os.getppid()}",
            f"time: {ruby_lock_time()}",
            f"lease: {self.lease:g}",
            *me.lines(),
            f"token: {token}",
            f"seq: {seq}",
        ]
        if self.owner:
            lines.append(f"owner: {' '.join(str(self.owner).split())}")
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _create(self, raw: bytes) -> tuple[bool, str | None]:
        """Exclusive create; object stores also return the version written (renewals and release need it)."""
        if not self.store.conditional_writes:
            # a lock need not survive a power cut: its holder would not either
            return self.store.create(self.key, raw, durable=False), None
        try:
            return True, self.store.put_if(self.key, raw, ABSENT)
        except Conflict:
            return False, None

    def _won(self, token: str, version: str | None) -> None:
        fresh = min(FRESH, self.lease / 10) if self.store.is_local else 0.0
        with self._state:
            self._token, self._version, self._lost = token, version, False
            self._fresh_until = time.monotonic() + fresh
        self._start_refresher()

    def _read(self, key: str | None = None) -> Versioned | None:
        try:
            return self.store.get_versioned(self.key if key is None else key)
        except (KeyNotFound, FileNotFoundError):
            return None

    def _break(self, seen: Versioned) -> bool:
        """Delete the stale entry we saw, unless it changed or another breaker got there first. True when we did."""
        if self.store.conditional_writes:
            return self.store.delete_if(self.key, seen.version)
        marker = f"{self.key}.break.{hashlib.md5(seen.data).hexdigest()}"
        if not self.store.create(marker, self._content(uuid.uuid4().hex)):
            self._break_stale_marker(marker)
            return False
        try:
            now = self._read()
            if now is None or now.data != seen.data:
                return False
            self.store.delete(self.key)
            return True
        finally:
            self.store.delete(marker)

    def _break_stale_marker(self, marker: str) -> None:
        """A breaker that died between creating and deleting its marker would block breaking for ever."""
        seen = self._read(marker)
        age = self.store.age(marker) if seen is not None and seen.age is None else (seen.age if seen else None)
        if seen is not None and stale_reason(parse_lock(seen.data), self.lease, age, None, self._me()):
            self.store.delete(marker)

    def _start_refresher(self) -> None:
        self._seq = 0
        renewals.add(self)

    def _stop_refresher(self) -> None:
        renewals.remove(self)

    def _renew_tick(self) -> None:
        """One renewal, run by the process's renewer thread when this lock is due."""
        with self._state:
            token = self._token
            if token is None or self._lost:
                renewals.remove(self)
                return
            self._seq += 1
            try:
                still_ours = self._renew(token, self._seq)
            except OSError:
                return  # a transient backend error: the next tick retries, the lease covers the gap
            if not still_ours:
                self._lost = True
                renewals.remove(self)

    def _renew(self, token: str, seq: int) -> bool:
        """One renewal; False when the entry is no longer ours.  Never puts back an entry someone else took."""
        if self.store.conditional_writes:
            if self._version is None:
                return False
            try:
                self._version = self.store.put_if(self.key, self._content(token, seq), self._version)
            except Conflict:
                return False
            return True
        seen = self._read()
        if seen is None or parse_lock(seen.data).get("token") != token:
            return False
        if self.store.touch(self.key):  # a touch renews the entry that is there, whoever's it is now
            return True
        self.store.put(self.key, self._content(token, seq))  # no touch, no atomic conditional write here
        return True
