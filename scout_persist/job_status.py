"""A job's status as Ruby's ``prov`` shows it: one rule for :attr:`Job.status`, ``ls``, ``info``, ``prov``, ``clean``
and the hit rule's messages.

The recorded status (``.info`` ``status``) is shown as it is, except (SCOUT_FORMAT §6.5, §11): ``missing`` (no
``.info``), ``noinfo`` (no readable ``.info`` but a result), ``notfound`` (``noinfo`` without a result), ``unsync``
(``done`` without a result), and ``aborted`` for a running status (``setup``, ``start``) whose writer is gone, as
:func:`scout_persist.liveness.job_liveness` judges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .info import NOINFO
from .liveness import RUNNING_STATUSES, job_liveness
from .store import Store

MISSING, NOTFOUND, UNSYNC, ABORTED = "missing", "notfound", "unsync", "aborted"


def derived_status(info: Mapping[str, Any] | None, result_exists: bool) -> str:
    """The recorded status, or ``missing``/``noinfo``/``notfound``/``unsync`` (no liveness: nothing is read)."""
    status = str((info or {}).get("status") or MISSING)
    if status == MISSING and result_exists:
        status = NOINFO
    if status == "done" and not result_exists:
        status = UNSYNC
    if status == NOINFO and not result_exists:
        status = NOTFOUND
    return status


def job_status(
    store: Store, key: str, info: Mapping[str, Any] | None, result_exists: bool, *, holding_lock: bool = False
) -> str:
    """:func:`derived_status`, and ``aborted`` for a running status whose writer is gone (``holding_lock``: the
    caller holds the job's lock itself, see :func:`~scout_persist.liveness.job_liveness`)."""
    return status_and_reason(store, key, info, result_exists, holding_lock=holding_lock)[0]


def status_and_reason(
    store: Store, key: str, info: Mapping[str, Any] | None, result_exists: bool, *, holding_lock: bool = False
) -> tuple[str, str | None]:
    """``(status, why its writer is gone)``: the reason is None unless the status is ``aborted`` by liveness."""
    status = derived_status(info, result_exists)
    if status in RUNNING_STATUSES:
        live = job_liveness(store, key, dict(info or {}), holding_lock=holding_lock)
        if live.dead:
            return ABORTED, live.reason
    return status, None


__all__ = ["ABORTED", "MISSING", "NOTFOUND", "UNSYNC", "derived_status", "job_status", "status_and_reason"]
