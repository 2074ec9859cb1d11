"""A scout task run's job lifecycle: the task wrapper's door to the run's attempt (:mod:`scout_persist.attempt`).

``claim`` (the lease, then ``.info`` reset with Ruby's keys, status ``start``, one write) -> the task body ->
``commit`` (the result, atomically, after the round-trip contract of :mod:`scout_persist.payload`, then ``done``: the
commit point) | ``fail`` (``error``).  It all runs inside Prefect's transaction, under the job's lease, before Prefect
persists anything; so a value that cannot be stored, a bad setting or a storage failure fails the task run (Prefect's
retries apply) and leaves the job in ``error`` (or, when a rewrite could not store its result, the previously
committed job as it was).  The value handed to downstream tasks is the value a cache hit would give them.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable
from typing import Any

from scout_persist import audit
from scout_persist.attempt import PREFECT_KEY, Served
from scout_persist.errors import ScoutPersistError

from . import plans, run_recorder


def start(run: plans.TaskRunAttempt) -> None:
    """The run claims its job: ``.info`` at ``start`` (the previous result stays until the new one commits); its
    writer stays on the attempt while the body runs (``job_files()`` writes through it)."""
    plans.drop_unplanned(run.key)  # what reads outside a run judged of the job no longer holds
    run.claim()
    run_recorder.job_started(run)


def finish(run: plans.TaskRunAttempt, value: Any) -> Any:
    """Store ``value`` and commit the job; returns the value a cache hit would return.  Raises (after recording the
    failure) when the value cannot be stored."""
    plan = run.plan
    try:
        # the codec reads $SCOUT_PERSIST_COMPRESSION itself and names it when it is wrong
        handed = run.commit(value, format=plan.format, **{PREFECT_KEY: _prefect_record(run)})
    except BaseException as exc:
        run.settle()
        run_recorder.job_finished(run, "error", exc)
        if isinstance(exc, ScoutPersistError):
            raise type(exc)(
                f"scout task {plan.workflow}#{plan.task}: its {type(value).__name__} result was not stored as job "
                f"{run.store.where(plan.job_key)!r}: {exc}"
            ) from exc
        raise
    run.settle()
    run_recorder.job_finished(run, "done")
    return handed


def fail(run: plans.TaskRunAttempt, exc: BaseException) -> None:
    """The body raised: ``.info`` gets ``error`` (class, message, backtrace); the result file is removed."""
    run.fail(exc)
    run.settle()
    run_recorder.job_finished(run, "error", exc)


def run(attempt: plans.TaskRunAttempt, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if attempt.plan.audit:
        served = attempt.verdict()  # the verdict the metadata read made (a miss: computed as any miss)
        if isinstance(served, Served):
            return _audited(attempt, served, fn(*args, **kwargs))
    start(attempt)
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        fail(attempt, exc)
        raise
    return finish(attempt, value)


def _audited(run: plans.TaskRunAttempt, served: Served, fresh: Any) -> Any:
    """Audit mode: a hit computed again; the fresh value compared with the stored one (scout_persist.audit).  A
    mismatch is warned about and noted (``.info``, run record); with ``audit_replace`` the fresh value replaces the
    job and is handed on, else the run goes on as the hit it is."""
    plan = run.plan
    mismatch = audit.compare(served.value, fresh, scout_type=plan.declared_type, format=plan.format, key=plan.job_key)
    replaced = mismatch is not None and plan.audit_replace
    finding = audit.Finding(plan.job_key, f"{plan.workflow}#{plan.task}", mismatch, replaced)
    where = run.store.where(plan.job_key)
    if mismatch is not None:
        audit.warn(finding, where)
    if replaced:
        run.forget()
        run.changed = ["audit"]
        start(run)
        handed = finish(run, fresh)
    else:
        if mismatch is not None:
            audit.note(run.store, plan.job_key, served.token, finding)
        run.audited, handed = finding, served.value
        run.token = served.token
        run.settle()
    run_recorder.job_audited(run, finding)
    return handed


async def arun(
    attempt: plans.TaskRunAttempt, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if attempt.plan.audit:
        served = await asyncio.to_thread(attempt.verdict)
        if isinstance(served, Served):
            fresh = await fn(*args, **kwargs)
            return await asyncio.to_thread(_audited, attempt, served, fresh)
    await asyncio.to_thread(start, attempt)
    try:
        value = await fn(*args, **kwargs)
    except BaseException as exc:
        await asyncio.to_thread(fail, attempt, exc)
        raise
    return await asyncio.to_thread(finish, attempt, value)


def _prefect_record(run: plans.TaskRunAttempt) -> dict[str, Any]:
    plan = run.plan
    record: dict[str, Any] = {}
    if run.changed:
        record["recomputed_because"] = list(run.changed)
    if plan.fixed:
        record["fixed_inputs"] = list(plan.fixed)
    if plan.task_run_id:
        record["task_run_id"] = plan.task_run_id
    if plan.flow_run_id:
        record["flow_run_id"] = plan.flow_run_id
    if plan.expiration is not None:
        record["expires"] = (_dt.datetime.now(_dt.timezone.utc) + plan.expiration).isoformat()
    return record
