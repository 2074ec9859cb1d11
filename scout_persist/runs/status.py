"""A run's status as judged now: what its record says, except that a ``running`` record past its lease is
``crashed`` -- judged by the store's clock or the observer's monotonic one, never by another host's wall clock -- and
one whose writer this machine sees running never is."""

from __future__ import annotations

from typing import Any

from ..info import hostname
from ..locks import holder_state
from ..process import Identity
from .record import CRASHED, DEFAULT_LEASE, RUNNING, STATUSES


def judge(record: dict[str, Any], age: float | None, unchanged_for: float | None = None) -> tuple[str, str]:
    """``(status, reason)`` of a record whose last write is ``age`` seconds old by the store's clock (None when the
    store does not say) or that the caller watched unchanged for ``unchanged_for`` seconds (its monotonic clock).

    A ``running`` record past its lease is ``crashed``; one whose writer this machine sees running is never crashed.
    """
    status = record.get("status")
    if status != RUNNING:
        return (status if status in STATUSES else "unknown"), ""
    lease_rec = got if isinstance(got := record.get("lease"), dict) else {}
    try:
        lease = float(lease_rec.get("seconds") or DEFAULT_LEASE)
    except (TypeError, ValueError):
        lease = DEFAULT_LEASE
    who = f"host {record.get('host', '?')} pid {record.get('pid', '?')}"
    if _writer_alive_here(record):
        return RUNNING, f"its process ({who}) is running on this machine"
    if age is not None and age > lease:
        return CRASHED, (
            f"its record was last renewed {age:.1f}s ago by the store's clock, past its lease of "
            f"{lease:g}s: its process ({who}) stopped without recording an end"
        )
    if unchanged_for is not None and unchanged_for > lease:
        return CRASHED, (
            f"its record has not been renewed for {unchanged_for:.1f}s (watched here), past its lease "
            f"of {lease:g}s: its process ({who}) stopped without recording an end"
        )
    if age is None and unchanged_for is None:
        return RUNNING, f"its lease of {lease:g}s cannot be judged: this store does not tell the age of its record"
    seen = age if age is not None else unchanged_for
    return RUNNING, f"its lease ({lease:g}s) was renewed {seen:.1f}s ago by {who}"


def lease_left(record: dict[str, Any], age: float | None) -> float | None:
    lease_rec = got if isinstance(got := record.get("lease"), dict) else {}
    try:
        lease = float(lease_rec.get("seconds") or DEFAULT_LEASE)
    except (TypeError, ValueError):
        return None
    return None if age is None else max(lease - age, 0.0)


def writer_fields() -> dict[str, Any]:
    """Who writes a record: this process, as :func:`writer_gone_here` judges it (``host``, ``pid_hostname``,
    ``pid``, ``identity``)."""
    me = Identity.current()
    return {
        "host": me.host,
        "pid_hostname": hostname(),
        "pid": me.pid,
        "identity": {"boot_id": me.boot_id, "pidns": me.pidns, "start": me.start},
    }


def _writer_alive_here(record: dict[str, Any]) -> bool:
    ident = got if isinstance(got := record.get("identity"), dict) else {}
    lines = {"host": str(record.get("host") or ""), "pid": str(record.get("pid") or "")}
    for name in ("boot_id", "pidns", "start"):
        if ident.get(name):
            lines[name] = str(ident[name])
    if not ident:
        return False  # no full identity: a pid alone could be a reused one
    return holder_state(lines, Identity.current()) == "alive"


def writer_gone_here(record: dict[str, Any]) -> bool:
    """Whether the record's writer ran on this machine and its process is gone (for messages only: the status still
    waits for the lease)."""
    ident = got if isinstance(got := record.get("identity"), dict) else {}
    lines = {"host": str(record.get("host") or ""), "pid": str(record.get("pid") or "")}
    for name in ("boot_id", "pidns", "start"):
        if ident.get(name):
            lines[name] = str(ident[name])
    return bool(ident) and holder_state(lines, Identity.current()) == "dead"
