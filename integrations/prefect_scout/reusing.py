"""``reuse(run=RUN_ID, task="name")``: the value of a job of an earlier run, as a Scout dependency of what it feeds.

The job must still hold the value the run recorded: the run's record keeps each job's content (the checksum of its
result and a digest of each signature part, :func:`scout_persist.runs.job_content`), and a job rewritten since (by a
later run, a resume, Ruby) is refused with :class:`ReuseError` naming what changed -- never a later run's value.
Records written before contents were recorded prove nothing by themselves: their job is reused only when its
``.info`` names the run as its writer.

Inside a flow, ``reuse`` runs a small Prefect task whose cache key is the reused job's own key: Prefect finds it
stored, and the scout hit check verifies it (``done``, result bytes against their checksum) before its value is
returned -- nothing is recomputed or written.  The content that check verified is compared with the record once
more, so a rewrite between the two reads is refused too.  Because that task run's plan names the job, a scout task
fed with the value counts the job as a dependency (``Step: var/jobs/...`` in its key, its path in its ``.info``
dependencies), in this process and in process-pool or Dask workers alike.  Values Prefect cannot track by identity
(None, booleans, small ints) reach the scout tasks as plain inputs, as any task result would.

The consuming run records what it reused, and the run it reused from records the consumer (``reused_by``).
Outside a flow, ``reuse`` returns the verified value without lineage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prefect import Task
from prefect.context import FlowRunContext, TaskRunContext

from scout_persist import runs as core
from scout_persist.attempt import Attempt, Expiry, Served
from scout_persist.callplan import JobIdentity
from scout_persist.errors import InvalidInputError, KeyNotFound, ScoutPersistError
from scout_persist.layout import cache_key_of
from scout_persist.signature import dependency_token, stored_signature

from . import plans, run_recorder, settings
from .cache_policy import ScoutCachePolicy, ScoutSpec
from .result_serializer import ScoutSerializer
from .storage import ScoutInfoStorage
from .task import saved_storage

logger = logging.getLogger("prefect_scout")


class ReuseError(ScoutPersistError, LookupError):
    """A job of an earlier run cannot be reused (no such run or task, not done, damaged)."""


@dataclass
class _Reused:
    store_url: str
    key: str
    info: dict[str, Any]
    run_id: str
    workflow: str
    task: str
    attempt: plans.TaskRunAttempt | None = None  # the reuse task run's attempt (its token: what the hit verified)


@dataclass
class ReusePolicy(ScoutCachePolicy):
    """Cache key = the reused job's key; the plan is the stored job's own (its signature, its names)."""

    reused: Any = None

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        found: _Reused = self.reused
        info = found.info
        ident = JobIdentity.of_stored(found.key, info)
        signature = stored_signature(info)
        flow_ctx = FlowRunContext.get()
        plan = plans.Plan(
            cache_key=cache_key_of(found.key),
            job_key=found.key,
            workflow=str(info.get("workflow") or ""),
            task=str(info.get("task_name") or found.task),
            declared_type=None,
            identity=ident,
            dependencies=(),
            signature=dict(signature) if signature else {},
            url=found.store_url,
            task_run_id=str(task_ctx.task_run.id),
            flow_run_id=str(flow_ctx.flow_run.id) if flow_ctx and flow_ctx.flow_run else None,
            reuse=True,
        )
        found.attempt = plans.TaskRunAttempt(plan)
        plans.remember(task_ctx.task_run.id, found.attempt)
        return plan.cache_key


def _cannot_serve(job: str, run: str, task: str) -> Any:
    raise ReuseError(
        f"reuse(run={run!r}, task={task!r}): job {job!r} no longer passes the hit check (its result is missing, "
        "damaged or was rewritten), so it cannot be reused; resume that run to recompute it "
        f"(scout-persist resume {run}) or compute the value here"
    )


def reuse(run: str, task: str, *, name: str | None = None, url: str | None = None) -> Any:
    """The value of job ``task`` of run ``run`` (its id, or a unique start of it), verified.

    ``name`` picks one job when the run has several of ``task``; ``url`` is the store root (default
    ``$SCOUT_PERSIST_URL``).  Inside a flow the job becomes a Scout dependency of the scout tasks the value feeds.
    """
    store = settings.store_for(url)
    where = f"reuse(run={run!r}, task={task!r}{'' if name is None else f', name={name!r}'})"
    try:
        source = core.load_run(store, run)
        entry = core.job_of(source, task, name)
    except KeyNotFound as exc:
        raise ReuseError(f"{where}: {exc}") from exc
    except (InvalidInputError, ScoutPersistError) as exc:
        raise ReuseError(f"{where}: {exc}") from exc
    job_store = settings.store_for(entry["store"]) if entry.get("store") else store
    key = str(entry["key"])
    attempt = Attempt(job_store, key, expiration=Expiry.IGNORED)
    info = attempt.observe()
    if info is None:
        raise ReuseError(
            f"{where}: job {job_store.where(key)!r} of that run is gone (cleaned or pruned); resume "
            f"the run to recompute it (scout-persist resume {source.run_id})"
        )
    if info.get("status") != "done":
        raise ReuseError(
            f"{where}: job {job_store.where(key)!r} of that run is {info.get('status')!r}, not done, so it has no "
            f"value to reuse; resume the run first (scout-persist resume {source.run_id})"
        )
    _require_unchanged(where, source, entry, info)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is None or flow_ctx.flow_run is None or TaskRunContext.get() is not None:
        verdict = attempt.verdict()  # outside a flow body: the verified value, no lineage
        if not isinstance(verdict, Served):
            return _cannot_serve(key, source.run_id, task)
        _require_unchanged(where, source, entry, dict(verdict.info))  # the .info the verdict followed
        return verdict.value
    run_recorder.begin(url)  # a run that reuses a job is recorded like one that runs a scout task
    found = _Reused(job_store.url, key, info, source.run_id, source.workflow, str(entry.get("task")))
    value = _task_for(found, url)(key)
    _require_verified(where, source, entry, job_store.where(key), found)
    _record_lineage(found, str(flow_ctx.flow_run.id))
    return value


def _require_unchanged(where: str, run: core.Run, entry: dict[str, Any], info: dict[str, Any]) -> None:
    """ReuseError unless the job still holds the value ``run`` recorded for it (see :func:`core.still_holds`)."""
    key = str(entry["key"])
    now = core.job_content(dependency_token(key, info), key, stored_signature(info))
    why = core.still_holds(run, entry, info, now)
    if why is not None:
        raise ReuseError(
            f"{where}: {why}, so it is not reused (it may not be that run's value); {_fixes(run, entry, info)}"
        )


def _require_verified(where: str, run: core.Run, entry: dict[str, Any], location: str, found: _Reused) -> None:
    """The content the hit check verified is the one checked before (a rewrite between the two reads is refused)."""
    attempt = found.attempt
    if attempt is None or attempt.token is None:
        raise ReuseError(
            f"{where}: job {location!r} was served without the scout hit check recording what it verified, so it "
            f"cannot be shown to be run {run.run_id}'s value; {_fixes(run, entry, found.info)}"
        )
    key = str(entry["key"])
    served = core.job_content(attempt.token, key, None)
    recorded = entry.get(core.CONTENT)
    expected = (
        recorded if isinstance(recorded, dict) else core.job_content(dependency_token(key, found.info), key, None)
    )
    if served.get("result") != expected.get("result"):
        raise ReuseError(
            f"{where}: job {location!r} was rewritten while it was being reused (checksum {expected.get('result')} "
            f"recorded, {served.get('result')} served), so it is not reused; {_fixes(run, entry, found.info)}"
        )


def _fixes(run: core.Run, entry: dict[str, Any], info: dict[str, Any]) -> str:
    writer = core.writer_run_of(info)
    task = str(entry.get("task"))
    newer = (
        f", or reuse the run that wrote the job now (reuse(run={writer!r}, task={task!r}))"
        if writer and writer != run.run_id
        else ""
    )
    return (
        f"resume run {run.run_id} to recompute its value (scout-persist resume {run.run_id}) and reuse the new "
        f"run{newer}"
    )


def _task_for(found: _Reused, url: str | None) -> Task[..., Any]:
    def reused_job(job: str) -> Any:
        return _cannot_serve(job, found.run_id, found.task)

    policy = ReusePolicy(
        spec=ScoutSpec(url=found.store_url), key_storage=ScoutInfoStorage(url=found.store_url), reused=found
    )
    return Task(
        fn=reused_job,
        name=f"reuse {found.task}",
        cache_policy=policy,
        result_storage=saved_storage(found.store_url if found.store_url != settings.root_url(url) else url),
        result_serializer=ScoutSerializer(),
        persist_result=True,
        retries=0,
    )


def _record_lineage(found: _Reused, consumer: str) -> None:
    recorder = run_recorder.recorder_for(consumer)
    data = {"run_id": found.run_id, "workflow": found.workflow, "task": found.task, "job": found.key}
    if recorder is not None:
        if found.key in recorder.noted_reuse:
            return
        recorder.noted_reuse.add(found.key)
        recorder.note("reused", data)
        workflow = recorder.workflow
    else:
        current = run_recorder.current()
        if current is None:
            return
        current.note("reused", data)
        workflow = current.workflow
    try:
        core.write_marker(
            settings.store_for(None) if recorder is None else recorder.store,
            found.workflow,
            found.run_id,
            core.REUSED_BY,
            consumer,
            {"run_id": consumer, "workflow": workflow, "task": found.task, "job": found.key, "at": core.now_iso()},
        )
    except Exception as exc:  # noqa: BLE001 - lineage never fails the flow
        logger.warning("scout-persist: run %s not marked as reused by %s (%s)", found.run_id, consumer, exc)


__all__ = ["ReuseError", "ReusePolicy", "reuse"]
