"""Who a process is and whether it still runs: the host name as Ruby writes it, a process's identity across restarts
(host, boot, pid namespace, pid, start time) and the liveness of a pid on this host.  Below the store (whose local
backend sweeps the temporaries of dead processes) and the locks (whose entries carry the identity)."""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

from . import settings


def hostname(env: bool = False) -> str:
    """This machine's name as Ruby writes it: the socket hostname in its locks; with ``env``, ``$HOSTNAME`` first
    (Ruby's ``pid_hostname`` in ``.info``, the stripped output of ``hostname`` otherwise).  The socket hostname is
    asked once per process (every job's lock and ``.info`` name it; one name throughout keeps its locks its own)."""
    return (settings.hostname() if env else None) or _socket_hostname()


@functools.lru_cache(maxsize=1)
def _socket_hostname() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in clock ticks)`` of ``pid`` from /proc, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), fields[19].decode()


@dataclass(frozen=True)
class Identity:
    """Who a process is across restarts: host, boot, pid namespace, pid and the process's start time."""

    host: str
    boot_id: str
    pidns: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> Identity:
        pid = os.getpid()
        known = _CURRENT.get(pid)  # by pid: a forked child is another process, with another start time
        if known is None:
            stat = proc_stat(pid)
            known = _CURRENT[pid] = cls(hostname(), _boot_id(), _pid_namespace(), pid, stat[1] if stat else "")
        return known

    @classmethod
    def of(cls, info: dict[str, str]) -> Identity | None:
        pid = info.get("pid", "")
        if not pid.isdigit():
            return None
        return cls(
            info.get("host", ""), info.get("boot_id", ""), info.get("pidns", ""), int(pid), info.get("start", "")
        )

    def lines(self) -> list[str]:
        return [f"boot_id: {self.boot_id}", f"pidns: {self.pidns}", f"start: {self.start}"]


_CURRENT: dict[int, Identity] = {}


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
    stat = proc_stat(pid)
    return stat is None or stat[0] not in ("Z", "X")


__all__ = ["Identity", "hostname", "pid_alive", "proc_stat"]
