"""Audit: re-execute a fraction of cache hits and compare with the stored value (as ``nix build --check`` does).

The users' own oracle in production: with ``SCOUT_PERSIST_AUDIT=<fraction>`` (or ``@scout_task(audit=...)``) that
fraction of the hits is computed again; the fresh value, as a store of it would hand it on, is compared with the
stored one under the strict equality (:mod:`scout_persist.equality`).  A mismatch means the signature missed what
the value depends on (code it cannot follow, a nondeterministic task, an outside input): it is warned about loudly
and noted in the job's ``.info`` (``audit``) and in the run record.  The run goes on as a hit (every process reads the
same stored job); with ``SCOUT_PERSIST_AUDIT_REPLACE=1`` (``audit_replace=True``) the fresh value replaces the stored
job instead, and the run hands it on.

Which hits are audited is decided by a hash of the job and the flow run, not by chance: the same run audits the same
jobs in every process that looks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from . import payload, settings
from .equality import difference
from .errors import InvalidInputError, ScoutPersistError
from .lease import rewrite_info
from .signature import dependency_token
from .store import Store

log = logging.getLogger("scout_persist.audit")
INFO_KEY = "audit"


def selected(fraction: float, job_key: str, salt: str = "") -> bool:
    """Whether the hit of ``job_key`` in the run named by ``salt`` is audited at ``fraction`` (0: never, 1: always)."""
    if fraction <= 0:
        return False
    if fraction >= 1:
        return True
    digest = hashlib.blake2b(f"{salt}\0{job_key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


@dataclass(frozen=True)
class Finding:
    """The outcome of one audit: ``mismatch`` is None when the fresh value equals the stored one."""

    job_key: str
    task: str
    mismatch: str | None
    replaced: bool = False

    def record(self) -> dict[str, Any]:
        """The entry kept in ``.info`` and in the run record."""
        return {
            "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "task": self.task,
            "mismatch": self.mismatch,
            "replaced": self.replaced,
        }


def compare(stored: Any, fresh: Any, *, scout_type: str | None, format: str | None, key: str) -> str | None:
    """Where the fresh value, as a store of it would hand it on, differs from the stored one (None: equal).

    A fresh value that cannot be stored any more (the task now returns something else) is a mismatch too."""
    try:
        handed = payload.encode(fresh, scout_type, key=key, format=format).value
    except ScoutPersistError as exc:
        return f"the fresh value cannot be stored as before: {exc}"
    return difference(stored, handed)


def fraction(declared: float | None) -> float:
    """The fraction of hits a task audits: its own ``audit=`` when given, else ``$SCOUT_PERSIST_AUDIT``."""
    if declared is None:
        return settings.audit_fraction()
    if not 0 <= declared <= 1:
        raise InvalidInputError(f"audit={declared!r}: a fraction of cache hits is a number from 0 to 1 (1: every hit)")
    return float(declared)


def replaces(declared: bool | None) -> bool:
    """Whether a mismatch replaces the stored job: the task's ``audit_replace=``, else the environment's."""
    return settings.audit_replace() if declared is None else bool(declared)


def warn(finding: Finding, where: str) -> None:
    log.warning(
        "scout-persist AUDIT MISMATCH: task %s served job %s from the store, but computing it again gave another "
        "value (%s). Its signature misses something the value depends on (code it cannot follow, an outside input, "
        "a task that is not deterministic): pass the outside input as an argument, pin the task with version= and "
        "bump it on such changes, or do not cache a task that is not deterministic. %s",
        finding.task,
        where,
        finding.mismatch,
        "The stored job was replaced by the fresh value."
        if finding.replaced
        else "The stored job stays (set SCOUT_PERSIST_AUDIT_REPLACE=1 to replace it).",
    )


def note(store: Store, job_key: str, checksum_token: str, finding: Finding) -> bool:
    """Add the finding to the job's ``.info`` (never over a concurrent writer, and only while the job is still the
    one that was audited: same content token); whether it was written."""

    def change(info: Any) -> bool:
        data = info.data
        if data.get("status") != "done" or dependency_token(job_key, data) != checksum_token:
            return False  # rewritten since: the finding is about a job that is gone
        data[INFO_KEY] = finding.record()  # written by rewrite_info, under the lock or conditionally
        return True

    try:
        return rewrite_info(store, job_key, change, timeout=10.0)
    except ScoutPersistError as exc:  # a busy job: the warning and the run record still say it
        log.info("scout-persist: the audit finding of %s is not noted in its .info (%s)", job_key, exc)
        return False


__all__ = ["INFO_KEY", "Finding", "compare", "fraction", "note", "replaces", "selected", "warn"]
