"""A lease lock over any store: Scout's lock file content, exclusive create, stale-lock recovery.

The lock is one entry (``tmp/persist_locks/<mangled>.lock`` for Scout's own locks) created exclusively:
a hard link of a complete temporary file on local file systems (the protocol of Ruby's vendored
``lockfile``, so Ruby and Python processes exclude each other), the store's ``create`` elsewhere (S3
conditional put). Its content is Ruby's ``host/pid/ppid/time`` lines plus ``lease``, ``expires`` and a
random ``token`` that tells holders apart. While held, a thread rewrites the entry every ``refresh``
seconds with a new expiry (which also refreshes the mtime Ruby looks at).

An entry is stale when its pid is dead on this host, or, for other hosts, when its lease has expired
(entries without ``expires``, e.g. Ruby's, when their mtime is older than the lease: Ruby's rule).
A stale entry is broken by exclusively creating ``<key>.break.<digest of the content seen>``, then deleting
the entry only if it still holds that content and is still stale, so two breakers never both delete it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import socket
import sys
import threading
import time
import uuid
from typing import Any

from .errors import InvalidInputError, KeyNotFound, LockTimeout
from .layout import mangle
from .store import Store, check_key

LOCK_DIR = "tmp/persist_locks"
MAX_NAME_BYTES = 255
_MEMORY_GUARD = threading.Lock()  # memory:// checks then creates; make that atomic between threads


def hostname() -> str:
    """The socket hostname Ruby writes into its locks."""
    return socket.gethostname()


def lock_key_for(path: str, suffix: str = ".persist") -> str:
    """Scout's lock key for a job or persist target: ``tmp/persist_locks/<mangle(path + suffix)>.lock``.

    ``path`` is what Ruby locks: a job's absolute path, or a persist entry's logical path
    (``var/cache/persistence/fixture_json`` → ``tmp/persist_locks/var·cache·persistence·fixture_json.persist.lock``).
    Names Ruby would make longer than 255 bytes (multi-byte characters) are cut by bytes here and end
    with an md5, where Ruby fails with "File name too long".
    """
    name = mangle(str(path) + suffix)
    if len((name + ".lock").encode("utf-8")) > MAX_NAME_BYTES:
        digest = hashlib.md5(name.encode("utf-8")).hexdigest()
        budget = MAX_NAME_BYTES - len(".lock") - len(digest)
        head = name.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
        name = head + digest
    return f"{LOCK_DIR}/{name}.lock"


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


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (zombies, i.e. killed but not yet reaped, count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def describe_holder(info: dict[str, str] | None) -> str:
    """A short human description of a lock entry's holder for error messages."""
    if not info:
        return "an unknown holder (the entry is empty or unreadable)"
    text = f"host {info.get('host', '?')} pid {info.get('pid', '?')} since {info.get('time', '?')}"
    if "expires" in info:
        try:
            left = float(info["expires"]) - time.time()
            text += f" (lease ends in {left:.1f}s)" if left >= 0 else f" (lease ended {-left:.1f}s ago)"
        except ValueError:
            pass
    if info.get("owner"):
        text += f", owner {info['owner']}"
    return text


def stale_reason(info: dict[str, str], mtime: float | None, lease: float, host: str | None = None) -> str | None:
    """Why a lock entry is stale, or None when it must be honoured.

    Same host: stale iff its pid is dead (a live holder is never broken, however long it runs).
    Other hosts: stale iff its ``expires`` has passed; entries without one (Ruby's) when older than ``lease``.
    """
    host = hostname() if host is None else host
    pid = info.get("pid", "")
    if info.get("host") == host and pid.isdigit():
        return None if pid_alive(int(pid)) else f"pid {pid} is dead on this host ({host})"
    now = time.time()
    if "expires" in info:
        try:
            expires = float(info["expires"])
        except ValueError:
            expires = None
        if expires is not None:
            return f"its lease ended {now - expires:.1f}s ago" if now > expires else None
    if mtime is not None and now - mtime > lease:
        return f"it was last refreshed {now - mtime:.1f}s ago (lease {lease}s)"
    return None


class Lock:
    """A lease lock on ``key`` of ``store``; use as ``with Lock(store, key): ...`` or acquire/release.

    ``lease``: seconds another host waits after the last refresh before breaking the lock;
    ``refresh``: seconds between refreshes while held; ``timeout``: how long ``with`` waits before
    raising LockTimeout (None waits for ever); ``owner``: an optional label stored in the entry.
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
                f"lock lease={lease!r}, refresh={refresh!r}: need 0 < refresh < lease so a live holder refreshes "
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
        self.host = hostname()
        self._token: str | None = None
        self._raw: bytes | None = None
        self._lost = False
        self._renewed = 0.0  # time.monotonic() of our last successful write of the entry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = threading.Lock()
        self.last_holder: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"Lock({self.store.url!r}, {self.key!r}, held={self.held})"

    # -- public API -----------------------------------------------------------
    @property
    def held(self) -> bool:
        """True while this object holds the lock (False once released or found broken by someone else)."""
        return self._token is not None and not self._lost

    @property
    def lost(self) -> bool:
        """True when the entry stopped being ours while we believed we held it."""
        return self._lost

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
        self._sweep_temporaries()
        while True:
            token = uuid.uuid4().hex
            raw = self._content(token)
            renewed = time.monotonic()
            if self._create(raw):
                self._token, self._raw, self._lost, self._renewed = token, raw, False, renewed
                self._start_refresher()
                return True
            seen = self._read()
            if seen is None:
                continue  # released between our create and our read: try again at once
            raw_seen, mtime = seen
            info = parse_lock(raw_seen)
            self.last_holder = info
            if stale_reason(info, mtime, self.lease, self.host) and self._break(raw_seen):
                continue  # we removed the stale entry: try again at once
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(delay * random.uniform(0.5, 1.5), left))
            else:
                time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.5, max(poll, 0.25))

    def release(self) -> None:
        """Give the lock back; deletes the entry only if it is still ours. Calling it twice is harmless."""
        with self._state:
            token, raw = self._token, self._raw
            self._token = self._raw = None
        self._stop_refresher()
        if token is None or self._lost:
            return
        if time.monotonic() - self._renewed < self.lease / 2:
            # Our lease (renewed less than half a lease ago, the margin covers clock skew between hosts) has not
            # run out and our pid is alive: nobody may have broken the entry, so it is still ours. One delete.
            self.store.delete(self.key)
            return
        seen = self._read()
        if seen is not None and parse_lock(seen[0]).get("token") == token:
            self.store.delete(self.key)

    def holder(self) -> dict[str, str] | None:
        """The parsed entry of whoever holds the lock now, or None when it is free."""
        seen = self._read()
        return None if seen is None else parse_lock(seen[0])

    def __enter__(self) -> "Lock":
        if not self.acquire(self.timeout):
            raise LockTimeout(
                f"lock {self.key!r} in {self.store.url!r} not acquired within {self.timeout}s: held by "
                f"{describe_holder(self.last_holder)}; wait longer (timeout=), or stop that holder: a dead pid on "
                f"its host or an ended lease makes the lock stale and it is then broken automatically"
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # -- internals ------------------------------------------------------------
    def _content(self, token: str, now: float | None = None) -> bytes:
        now = time.time() if now is None else now
        lines = [
            f"host: {self.host}",
            f"pid: {os.getpid()}",
            f"ppid: {os.getppid()}",
            f"time: {ruby_lock_time(now)}",
            f"lease: {self.lease}",
            f"expires: {now + self.lease:.6f}",
            f"token: {token}",
        ]
        if self.owner:
            lines.append(f"owner: {' '.join(str(self.owner).split())}")
        return ("\n".join(lines) + "\n").encode("utf-8")

    def _create(self, raw: bytes, key: str | None = None) -> bool:
        return create_exclusive(self.store, self.key if key is None else key, raw, self.host)

    def _sweep_temporaries(self) -> None:
        """Delete ``.<host>_<pid>_*.lck`` temporaries left next to the lock by dead processes of this host."""
        if not self.store.is_local:
            return
        folder = os.path.dirname(self.store.path(self.key))
        prefix = f".{self.host}_"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        for name in names:
            if not (name.startswith(prefix) and name.endswith(".lck")):
                continue
            pid = name[len(prefix):].split("_", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                try:
                    os.unlink(os.path.join(folder, name))
                except FileNotFoundError:
                    pass

    def _read(self, key: str | None = None) -> tuple[bytes, float | None] | None:
        key = self.key if key is None else key
        try:
            raw = self.store.get(key)
            mtime = self.store.mtime(key)
        except KeyNotFound:
            return None
        except FileNotFoundError:
            return None
        return raw, mtime

    def _break(self, raw_seen: bytes) -> bool:
        """Delete the stale entry we saw, unless another breaker got there first. True when we deleted it."""
        marker = f"{self.key}.break.{hashlib.md5(raw_seen).hexdigest()}"
        if not self._create(self._content(uuid.uuid4().hex), marker):
            self._break_stale_marker(marker)
            return False
        try:
            seen = self._read()
            if seen is None or seen[0] != raw_seen:
                return False
            if not stale_reason(parse_lock(seen[0]), seen[1], self.lease, self.host):
                return False
            self.store.delete(self.key)
            return True
        finally:
            self.store.delete(marker)

    def _break_stale_marker(self, marker: str) -> None:
        """A breaker that died between creating and deleting its marker would block breaking for ever."""
        seen = self._read(marker)
        if seen is not None and stale_reason(parse_lock(seen[0]), seen[1], self.lease, self.host):
            self.store.delete(marker)

    def _start_refresher(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._refresh_loop, args=(self._stop, self._token), name=f"lock refresher {self.key}", daemon=True
        )
        self._thread.start()

    def _stop_refresher(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _refresh_loop(self, stop: threading.Event, token: str) -> None:
        while not stop.wait(self.refresh):
            try:
                seen = self._read()
            except OSError:
                continue  # a transient backend error: the next tick retries, the lease covers the gap
            if seen is None or parse_lock(seen[0]).get("token") != token:
                with self._state:
                    if self._token == token:
                        self._lost = True
                return
            with self._state:
                if stop.is_set() or self._token != token:
                    return
                raw = self._content(token)
                renewed = time.monotonic()
                try:
                    self.store.put(self.key, raw)
                    self._raw, self._renewed = raw, renewed
                except OSError:
                    continue


def create_exclusive(store: Store, key: str, data: bytes, host: str | None = None) -> bool:
    """Store ``data`` under ``key`` only if absent, never showing a partial entry; True when this call created it.

    Local file systems: a complete temporary file hard-linked to the name (Ruby lockfile's protocol, so
    readers never see an empty entry, unlike ``O_EXCL``); memory://: guarded between threads; others: the
    store's exclusive create (S3 conditional put).
    """
    if store.is_local:
        with store._translate(key, "creating"):  # an unwritable root names itself, not a bare PermissionError
            return _link_create(store, key, data, hostname() if host is None else host)
    if "memory" in _protocols(store):
        with _MEMORY_GUARD:
            return store.create(key, data)
    try:
        return store.create(key, data)
    except FileExistsError:
        return False
    except OSError:
        # S3 answers 409 (not 412) when another conditional write of the key is in flight: that writer wins
        if store.exists(key):
            return False
        raise


def _link_create(store: Store, key: str, data: bytes, host: str) -> bool:
    path = store.path(key)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    now = time.time()
    program = os.path.basename(sys.argv[0] or "python") or "python"
    tmp = os.path.join(
        folder, f".{host}_{os.getpid()}_{program}_{int(now)}_{int(now * 1e6) % 1000000}_{random.randrange(1 << 30)}.lck"
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return os.stat(tmp).st_ino == os.stat(path).st_ino
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _protocols(store: Store) -> tuple[str, ...]:
    proto = store.fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
