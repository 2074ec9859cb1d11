"""A scout task run's job lifecycle, through the core's one writer (:class:`scout_persist.job.JobWriter`).

``start`` (``.info`` reset with Ruby's keys, status ``start``, one write) -> the task body -> ``save`` (the result,
atomically, after the round-trip contract of :mod:`scout_persist.payload`) -> ``done`` (the commit point) | ``error``.
It all runs inside Prefect's transaction, under the job lock, before Prefect persists anything; so a value that cannot
be stored, a bad setting or a storage failure fails the task run (Prefect's retries apply) and leaves the job in
``error`` (or, when a rewrite could not store its result, the previously committed job as it was).  The value handed
to downstream tasks is the value a cache hit would give them.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Callable
from typing import Any

from scout_persist.errors import ScoutPersistError
from scout_persist.job import READ_AT_SETUP, JobWriter
from scout_persist.signature import dependency_token

from . import plans, runs, settings
from .hits import PREFECT_KEY


def writer_for(plan: plans.RunPlan, lease: Any, previous: Any) -> JobWriter:
    """The one writer of the plan's job; every write goes through ``lease`` (fenced) when given."""
    return JobWriter(
        settings.store_for(plan.url),
        plan.job_key,
        workflow=plan.workflow,
        task=plan.task,
        type=_info_type(plan),
        previous_info=previous,
        lease=lease,
    )


def begin(plan: plans.RunPlan, writer: JobWriter) -> None:
    """Reset the job's ``.info`` to Ruby's setup keys with status ``start``, in one write."""
    ident = plan.identity
    writer.begin(
        inputs=list(ident.inputs),
        input_names=ident.input_names,
        provided_inputs=dict(ident.provided_inputs),
        non_default_inputs=ident.non_default_inputs,
        dependencies=[writer.location(k) for k in plan.dependencies],
    )


def start(plan: plans.RunPlan) -> JobWriter:
    """The writer of this run, its ``.info`` at ``start`` (the previous result stays until the new one commits);
    it stays on the plan while the body runs (``job_files()`` writes through it).

    Where ``.info`` is the lease, the lock manager already wrote ``start`` when it acquired it."""
    if plan.writer is not None:
        runs.job_started(plan)
        return plan.writer
    previous: Any = plan.info_raw if plan.info_raw is not None else (None if plan.job_absent else READ_AT_SETUP)
    plans.forget_reads(plan)
    writer = writer_for(plan, plan.lease, previous)
    begin(plan, writer)
    plan.writer = writer
    runs.job_started(plan)
    return writer


def finish(plan: plans.RunPlan, writer: JobWriter, value: Any) -> Any:
    """Store ``value`` and commit the job; returns the value a cache hit would return.  Raises (after recording the
    failure) when the value cannot be stored."""
    try:
        # compression=None: the codec reads $SCOUT_PERSIST_COMPRESSION itself and names it when it is wrong
        writer.save(
            value, "pickle" if plan.declared_type in (None, "", "pickle") else plan.declared_type, format=plan.format
        )
        writer.done(signature=plan.signature, **{PREFECT_KEY: _prefect_record(plan)})
    except BaseException as exc:
        writer.error(exc)
        plans.settle(plan)
        runs.job_finished(plan, "error", exc)
        if isinstance(exc, ScoutPersistError):
            raise type(exc)(
                f"scout task {plan.workflow}#{plan.task}: its {type(value).__name__} result was not stored as job "
                f"{writer.location(plan.job_key)!r}: {exc}"
            ) from exc
        raise
    plan.stored = True
    plan.token = dependency_token(plan.job_key, writer.info.data, writer.store)
    plans.settle(plan)
    runs.job_finished(plan, "done")
    return writer.value


def fail(plan: plans.RunPlan, writer: JobWriter, exc: BaseException) -> None:
    """The body raised: ``.info`` gets ``error`` (class, message, backtrace); the result file is removed."""
    writer.error(exc)
    plans.settle(plan)
    runs.job_finished(plan, "error", exc)


def run(plan: plans.RunPlan, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    writer = start(plan)
    try:
        value = fn(*args, **kwargs)
    except BaseException as exc:
        fail(plan, writer, exc)
        raise
    return finish(plan, writer, value)


async def arun(plan: plans.RunPlan, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    writer = await asyncio.to_thread(start, plan)
    try:
        value = await fn(*args, **kwargs)
    except BaseException as exc:
        await asyncio.to_thread(fail, plan, writer, exc)
        raise
    return await asyncio.to_thread(finish, plan, writer, value)


def _info_type(plan: plans.RunPlan) -> str:
    from scout_persist.payload import info_type

    return info_type(plan.declared_type)


def _prefect_record(plan: plans.RunPlan) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if plan.changed:
        record["recomputed_because"] = list(plan.changed)
    if plan.fixed:
        record["fixed_inputs"] = list(plan.fixed)
    if plan.task_run_id:
        record["task_run_id"] = plan.task_run_id
    if plan.flow_run_id:
        record["flow_run_id"] = plan.flow_run_id
    if plan.expiration is not None:
        record["expires"] = (_dt.datetime.now(_dt.timezone.utc) + plan.expiration).isoformat()
    return record
