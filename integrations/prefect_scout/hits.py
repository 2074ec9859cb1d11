"""Whether a stored job can serve a task run, decided once per attempt: read, verify, decode.

A job serves a run only when its ``.info`` says ``done``, its signature (for jobs we wrote) equals the run's, it has
not expired, and its result bytes match the size and checksum its ``.info`` records; the value is decoded from those
very bytes (and only unpickled when the record says pickle).  Anything else raises :class:`CacheMiss` (or
``KeyNotFound``), which Prefect's ``exists()`` turns into a recompute: never a wrong value, never a failed task.
Ruby's own jobs carry no signature and no checksum and are reused by Ruby's rules.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import Any

from scout_persist import payload
from scout_persist.errors import CorruptPayloadError, KeyNotFound, ScoutPersistError, UntrustedPayloadError
from scout_persist.handover import marked_done_by_another
from scout_persist.info import hostname, loads_info
from scout_persist.job import Job
from scout_persist.locks import pid_alive
from scout_persist.rubyjson import parse_ruby_time
from scout_persist.signature import changed_parts, dependency_token, stored_signature
from scout_persist.store import Store
from scout_persist.usage import touch

from . import plans

logger = logging.getLogger("prefect_scout")
PREFECT_KEY = "prefect"

_warned_unsigned: set[str] = set()
_warn_guard = threading.Lock()


class CacheMiss(ScoutPersistError, LookupError):
    """A stored job exists but cannot serve as a cached result (not done, damaged, expired, another signature)."""


def read_info(store: Store, job_key: str, plan: plans.RunPlan | None) -> dict[str, Any]:
    """The job's ``.info`` for this attempt: the bytes the plan already read, else one read (kept on the plan)."""
    raw = plan.info_raw if plan is not None else None
    if raw is None:
        try:
            raw = store.get(job_key + ".info")
        except KeyNotFound:
            raw = None
        if plan is not None:
            plan.info_raw, plan.job_absent = raw, raw is None
    if raw is None:
        raise KeyNotFound(f"no job {job_key!r} in {store.url!r}")
    return loads_info(raw, f"{store.url}/{job_key}.info")


def why_not_usable(info: dict[str, Any], plan: plans.RunPlan | None) -> str | None:
    """Why the job of ``info`` cannot serve ``plan`` without looking at its result bytes (None: it may)."""
    status = info.get("status")
    if status != "done":
        return f"it is {_describe(status, info)}"
    marked = marked_done_by_another(info)
    if marked:
        return marked
    if plan is None:
        return None
    stored = stored_signature(info)
    if stored is not None:
        changed = changed_parts(stored, plan.signature)
        if changed:
            plan.changed = changed
            return f"it was computed with another {', '.join(changed)}"
    if expired(info, plan):
        plan.changed = ["expired"]
        return "it expired (cache_expiration)"
    return None


def check(store: Store, job_key: str, plan: plans.RunPlan | None) -> plans.Verified:
    """The verified result of ``job_key`` for ``plan`` (None: a read outside a planned run, e.g. a flow collecting
    a worker's result); CacheMiss/KeyNotFound when the job cannot serve it."""
    info = read_info(store, job_key, plan)
    reason = why_not_usable(info, plan)
    if reason:
        raise CacheMiss(f"job {job_key!r}: {reason}: recompute")
    record = payload.record_of(info)
    location = f"{store.url}/{job_key}"
    if record is not None and record.get("format") == "none":
        data, value = plans.placeholder(), None
    else:
        try:
            data = payload.read(store, job_key, record)
        except KeyNotFound:
            raise CacheMiss(f"job {location!r} is done but its result file is missing: recompute") from None
        try:
            value = payload.decode(
                data,
                record,
                key=job_key,
                scout_type=info.get("type"),
                location=location,
                relocate=Job.at(store, job_key).relocate,
            )
        except UntrustedPayloadError as exc:
            _warn_untrusted(location, exc, plan)
            raise CacheMiss(f"job {location!r}: {exc}: recompute") from exc
        except (CorruptPayloadError, ValueError, TypeError, ImportError) as exc:  # ImportError: a codec missing here
            logger.warning("scout-persist: stored job %s cannot be used (%s); recomputing it", location, exc)
            raise CacheMiss(f"job {location!r}: {exc}: recompute") from exc
    touch(store, job_key)
    if plan is not None:
        plan.token = dependency_token(job_key, info, store)
    return plans.Verified(info=info, data=data, value=value, owner=None if plan is None else id(plan))


def expired(info: dict[str, Any], plan: plans.RunPlan) -> bool:
    """Expired by the expiry recorded when it was written, or by the task's cache_expiration counted from its end."""
    now = _dt.datetime.now(_dt.timezone.utc)
    record = got if isinstance(got := info.get(PREFECT_KEY), dict) else {}
    recorded = record.get("expires")
    if isinstance(recorded, str):
        try:
            if _dt.datetime.fromisoformat(recorded) <= now:
                return True
        except ValueError:
            return True  # an expiry we cannot read: do not trust the job past it
    if plan.expiration is not None:
        try:
            end = parse_ruby_time(str(info.get("end")))
        except (TypeError, ValueError):
            return True
        return end + plan.expiration <= now
    return False


def _describe(status: Any, info: dict[str, Any]) -> str:
    if status in ("start", "setup") and info.get("pid_hostname") == hostname():
        pid = info.get("pid")
        if isinstance(pid, int) and not pid_alive(pid):
            return f"'{status}' with a dead process (pid {pid}): aborted"
    return repr(status)


def _warn_untrusted(location: str, exc: Exception, plan: plans.RunPlan | None) -> None:
    run = (plan.flow_run_id if plan is not None else None) or "-"
    with _warn_guard:
        if run in _warned_unsigned:
            return
        _warned_unsigned.add(run)
    logger.warning(
        "scout-persist: %s (and possibly more jobs of this run) is a pickle that does not verify under "
        "the pickle key; it is recomputed and rewritten signed. List them with "
        "`scout-persist verify --unsigned`. (%s)",
        location,
        exc,
    )


__all__ = ["CacheMiss", "PREFECT_KEY", "check", "expired", "read_info", "why_not_usable"]
