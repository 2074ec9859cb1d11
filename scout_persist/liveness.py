"""Is the writer of a job still there? One rule for ``ls``, ``info``, ``prov``, ``clean`` and ``gc``.

A job whose ``.info`` says it is being set up or run (``setup``, ``start``) has a writer process. When that
process is gone the job will never finish: it is shown as ``aborted`` and may be cleaned. Gone means, as the job's
lease is judged (:mod:`scout_persist.lease`, :func:`scout_persist.locks.stale_reason`):

- the writer ran on this machine and its process is not running, or its pid is now another process (a start time
  after the job was issued, or not the one its lease recorded);
- otherwise (another machine or container, or no pid recorded), its lease is not renewed: on object stores the
  job's ``.info`` (the lease itself) was last written more than a lease ago by the store's clock; on other stores
  the job's Scout lock ``tmp/persist_locks/<mangled job path>.persist.lock`` -- which Ruby Scout and the Prefect
  plug-in hold while a job runs -- is absent or stale.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, NamedTuple

from .errors import KeyNotFound
from .layout import lock_key_for
from .lease import holder_lines
from .locks import holder_state, parse_lock, stale_reason
from .store import Store

# Statuses written while a process works on the job (SCOUT_FORMAT §6.5; `dependencies` is rbbt-util's).
RUNNING_STATUSES = frozenset({"setup", "start", "dependencies"})
ALIVE, DEAD, SETTLED = "alive", "dead", "settled"
LOCK_LEASE = 30.0  # Ruby lockfile's stale age for entries without a `lease` line
_ISSUED_SLACK = 5.0  # `issued` has second resolution, boot time (btime) too


class Liveness(NamedTuple):
    """``state``: ``alive`` (a writer is at work), ``dead`` (its writer is gone) or ``settled`` (not running);
    ``reason``: why, in words for messages."""

    state: str
    reason: str

    @property
    def dead(self) -> bool:
        return self.state == DEAD


def job_liveness(
    store: Store, key: str, info: dict[str, Any] | None, *, holding_lock: bool = False, lease: float = LOCK_LEASE
) -> Liveness:
    """The liveness of job ``key`` of ``store`` whose ``.info`` is ``info``.

    ``holding_lock``: the caller holds the job's lock itself (``clean`` does before removing), so the lock cannot
    tell whether another writer is alive; only the pid on this host can.
    """
    status = str((info or {}).get("status") or "")
    if status not in RUNNING_STATUSES:
        return Liveness(SETTLED, f"status {status or 'missing'!r} is not a running status")

    assert info is not None  # the running status came from it
    pid = _pid(info.get("pid"))
    host = info.get("pid_hostname")
    lines = holder_lines(info)
    state = holder_state(lines) if pid is not None and host is not None else "unknown"
    if state == "dead":
        return Liveness(DEAD, f"its pid {pid} is not running on this host ({host}), or is now another process")
    if state == "alive":
        assert pid is not None  # holder_state was asked
        if pid_reused(pid, info):
            return Liveness(
                DEAD,
                f"its pid {pid} on this host ({host}) is now another process, started after the "
                "job was issued (the pid was reused)",
            )
        return Liveness(ALIVE, f"its pid {pid} is running on this host ({host})")
    if store.conditional_writes:
        return info_lease_liveness(store, key, lines, lease, _where(host, pid))
    if holding_lock:
        return Liveness(DEAD, "nobody else holds its job lock" + _where(host, pid))
    return lock_liveness(store, key, lease, _where(host, pid))


def info_lease_liveness(store: Store, key: str, lines: dict[str, Any], lease: float, written_by: str = "") -> Liveness:
    """Object stores: the job's ``.info`` is its lease; alive while renewed within a lease by the store's clock."""

    try:
        seen = store.get_versioned(key + ".info")
    except KeyNotFound:
        return Liveness(DEAD, "its .info disappeared" + written_by)
    stale = stale_reason(lines, lease, seen.age)
    if stale:
        return Liveness(DEAD, f"its lease is not renewed: {stale}{written_by}")
    return Liveness(ALIVE, f"its lease is renewed by host {lines.get('host', '?')} pid {lines.get('pid', '?')}")


def lock_liveness(store: Store, key: str, lease: float = LOCK_LEASE, written_by: str = "") -> Liveness:
    """``alive`` while somebody holds the Scout lock of job ``key`` (fresh, by :func:`locks.stale_reason`), else
    ``dead``: the half of :func:`job_liveness` that needs no ``.info`` (``clean`` asks it of ``done`` jobs too)."""

    lock_key = lock_key_for(store.path(key))
    try:
        seen = store.get_versioned(lock_key)
    except KeyNotFound:
        return Liveness(DEAD, "its job lock is absent (a running writer holds it)" + written_by)
    holder = parse_lock(seen.data)
    stale = stale_reason(holder, lease, seen.age if seen.age is not None else store.age(lock_key))
    if stale:
        return Liveness(DEAD, f"its job lock is stale: {stale}")
    return Liveness(ALIVE, f"its job lock is held by host {holder.get('host', '?')} pid {holder.get('pid', '?')}")


def pid_reused(pid: int, info: dict[str, Any]) -> bool:
    """Whether the running process ``pid`` of this host started after the job of ``info`` was issued: then it is
    another process that got the writer's pid, not the writer."""
    started = _process_start(pid)
    issued = _issued(info.get("issued"))
    return started is not None and issued is not None and started > issued + _ISSUED_SLACK


def _where(host: Any, pid: int | None) -> str:
    if host is None and pid is None:
        return ""
    return f"; written by pid {pid if pid is not None else '?'} on host {host if host is not None else '?'}"


def _pid(value: Any) -> int | None:
    try:
        pid = int(value)
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def _process_start(pid: int) -> float | None:
    """Epoch seconds at which ``pid`` started (Linux ``/proc``), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/stat", "rb") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _issued(value: Any) -> float | None:
    """``issued`` of a ``.info`` (``YYYY-MM-DD HH:MM:SS +ZZZZ``) as epoch seconds, else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None
