"""A job lock just won: what its previous Ruby holder may still write, and whether its result stands.

Ruby's ``Step#run`` holds the job lock only around ``Persist.persist``: the lock is released once the result file
is saved (or, on an error, removed), and only then, in its ``ensure``/``rescue`` blocks and without the lock, does it
write ``.info`` ``done`` (or ``error``) -- a few milliseconds later, longer under load.  A process that wins the lock
inside that gap finds ``start`` next to a complete result file.  Under the lock Ruby itself asks one question: does
the result file exist?  If so it loads it (and afterwards writes ``done`` itself, as every Ruby process that ran
the job does), never recomputing it.

:func:`settle_handover` applies that rule for a Python winner, before it reads ``.info`` for its hit check:

* ``.info`` is not a Ruby run in progress (``setup``/``start`` without the plug-in's ``lease`` record): nothing to
  settle.  Python holders write ``done``/``error`` before they release the lock, so they owe no late write.
* the lock was broken (its holder died holding it) or the Ruby writer's process is gone: nothing will be written
  late; a result it left may be partial (Ruby writes ``binary`` results in place), so the job is recomputed.
* otherwise the Ruby writer released the lock and is finishing: wait (up to ``grace`` seconds) for its late
  ``.info`` write.  ``done`` -> the job is done (the hit check reuses it), ``error`` -> recomputed.  Still running
  after the grace with the result file present -> the result is accepted as Ruby accepts it, and ``.info`` gets
  ``done`` as Ruby's own waiter writes it.  Still running without a result -> recomputed (with a warning: its late
  ``error`` may still land; the Python run's ``done`` replaces it, and :func:`marked_done_by_another` keeps readers
  from trusting the ``.info`` meanwhile).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import InfoFormatError, KeyNotFound
from .info import InfoFile, loads_info
from .lease import LEASE_KEY, holder_lines
from .liveness import pid_reused
from .locks import holder_state
from .payload import record_of

if TYPE_CHECKING:
    from .lease import LockFileLease
    from .store import Store

log = logging.getLogger(__name__)

GRACE = 10.0  # seconds a finishing Ruby holder has to write its late `done` (measured: 3-16 ms, more under load)
RUNNING = frozenset({"setup", "start", "dependencies"})
SETTLED, DONE, ACCEPTED, GONE, UNFINISHED = "settled", "done", "accepted", "gone", "unfinished"


class Handover(NamedTuple):
    """``outcome``: ``settled`` (nothing owed), ``done`` (the holder wrote ``done``), ``accepted`` (its result
    accepted and ``done`` written for it), ``gone`` (holder dead: recompute), ``unfinished`` (no result after the
    grace: recompute); ``waited``: seconds spent; ``reason``: in words, for logs."""

    outcome: str
    waited: float
    reason: str


def ruby_run_in_progress(info: dict[str, Any] | None) -> bool:
    """Whether ``.info`` is a running Ruby job's: a running status and no plug-in lease record."""

    return info is not None and str(info.get("status")) in RUNNING and LEASE_KEY not in info


def marked_done_by_another(info: dict[str, Any]) -> str | None:
    """Why a ``done`` ``.info`` is not a finished job (None: it may be): the plug-in's ``start`` record (a ``lease``
    entry) without the ``payload`` record its ``done`` always writes is a running Python job that another process
    (a Ruby process's late ``merge_info``) marked ``done``."""

    if info.get("status") == "done" and LEASE_KEY in info and record_of(info) is None:
        return "its .info is a running Python job's that another process marked 'done' (Ruby's late write)"
    return None


def settle_handover(
    lease: LockFileLease,
    grace: float = GRACE,
    poll: float = 0.01,
    broke: bool | None = None,
    *,
    info: dict[str, Any] | None = None,
    read: bool = True,
) -> Handover:
    """Right after ``lease`` was won, settle what its previous Ruby holder still owes (see the module docstring).

    ``broke``: whether winning it broke a stale lock (default: what the lease's lock recorded); ``read=False``:
    ``info`` is the job's ``.info`` as the caller has just read it under the lease (None: there is none), not read
    again."""
    store, key = lease.store, lease.job_key
    started = time.monotonic()
    if read:
        info = _read(store, key)
    if not ruby_run_in_progress(info):
        return Handover(SETTLED, 0.0, "no Ruby run in progress")
    assert info is not None  # ruby_run_in_progress
    broke = lease.broken is not None if broke is None else broke
    if broke:
        return Handover(GONE, 0.0, "its Ruby holder died holding the lock (broken): recompute")
    if _writer_state(info) == "dead":
        return Handover(GONE, 0.0, f"its Ruby writer (pid {info.get('pid')}) is gone: recompute")
    seen = info
    while time.monotonic() - started < grace:
        time.sleep(poll)
        poll = min(poll * 1.5, 0.1)
        now = _read(store, key)
        if now is None or not ruby_run_in_progress(now):
            status = (now or {}).get("status")
            outcome = DONE if status == "done" else SETTLED
            return Handover(outcome, time.monotonic() - started, f"its Ruby holder wrote {status!r}")
        if now.get("pid") != seen.get("pid"):
            return Handover(SETTLED, time.monotonic() - started, "another run reset its .info")
        if _writer_state(now) == "dead":
            return Handover(GONE, time.monotonic() - started, "its Ruby writer ended without writing: recompute")
    waited = time.monotonic() - started
    if store.exists(key) and not store.isdir(key):
        info_file = InfoFile(store, key + ".info", put=lease.put_info)
        info_file.done()  # what Ruby's own waiter writes after accepting the result under the lock
        log.warning(
            "job %s: its Ruby holder released the lock with a complete result but wrote no 'done' within %.1fs; "
            "the result is accepted as Ruby accepts it, and 'done' written",
            store.where(key),
            waited,
        )
        return Handover(ACCEPTED, waited, "result accepted as Ruby does")
    log.warning(
        "job %s: its Ruby holder (pid %s) released the lock without a result and wrote no 'error' within %.1fs; "
        "recomputing (a late write of it will be replaced by this run's)",
        store.where(key),
        info.get("pid"),
        waited,
    )
    return Handover(UNFINISHED, waited, "no result and no late write: recompute")


def _read(store: Store, key: str) -> dict[str, Any] | None:
    try:
        return loads_info(store.get(key + ".info"), store.where(key + ".info"), strict=True)
    except (KeyNotFound, InfoFormatError):
        return None


def _writer_state(info: dict[str, Any]) -> str:
    """``alive``/``stopped``/``dead``/``unknown`` for the process that wrote ``info`` (its pid and host)."""

    lines = holder_lines(info)
    if not lines.get("pid") or not lines.get("host"):
        return "unknown"
    state = holder_state(lines)
    if state == "alive" and pid_reused(int(lines["pid"]), info):
        return "dead"  # its pid now belongs to a process started after the job was issued
    return state


__all__ = ["GRACE", "Handover", "marked_done_by_another", "ruby_run_in_progress", "settle_handover"]
