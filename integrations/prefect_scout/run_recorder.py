"""Run records from Prefect: what a flow run that runs scout tasks writes to ``var/runs``.

See :mod:`scout_persist.runs`.

The record is started by the flow's own process the first time the flow calls a scout task (flow run id, flow
name, entrypoint, code hashes, parameters, host and pid), kept current by that process as the run's jobs start and
finish, renewed while the flow runs (its lease), and closed by a flow hook with ``completed``, ``failed``,
``cancelled`` or ``crashed``.  Writes are batched: at most one per ``$SCOUT_PERSIST_RUN_FLUSH`` seconds for jobs
(default 1 s), plus one per ``lease / 3`` seconds as the renewal; a write never fails the flow (it warns).

A job that finishes in another process (a process pool or Dask worker, whose flow context is ``detached``) cannot
reach the flow's process cheaply: that process writes the job's entry as one small file of the run
(``parts/<task run id>.json``, one PUT), which readers merge into the record.

This module holds the records of this process's runs; its functions are the one door to them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import inspect
import logging
import os
import threading
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prefect import Task
from prefect.context import FlowRunContext, TaskRunContext

from scout_persist import runs as core
from scout_persist.audit import Finding
from scout_persist.signature import code_identity
from scout_persist.store import Store

from . import plans, settings
from .cache_policy import ScoutCachePolicy

logger = logging.getLogger("prefect_scout")

_guard = threading.Lock()
_recorders: dict[str, Recorder] = {}  # flow run id -> the recorder of that run in this process


@dataclass
class Resuming:
    """What ``resume`` is running: the run it resumes (and from which task)."""

    workflow: str
    run_id: str
    from_task: str | None = None
    used: bool = False
    new_run_id: str | None = None  # the run that resumed it (set when that run starts its record)


_resuming: contextvars.ContextVar[Resuming | None] = contextvars.ContextVar("scout_resuming", default=None)


@contextlib.contextmanager
def resuming(workflow: str, run_id: str, from_task: str | None = None) -> Iterator[Resuming]:
    """The next top-level flow run started in this context records ``resumed_from`` (used by ``resume``)."""
    marker = Resuming(workflow, run_id, from_task)
    token = _resuming.set(marker)
    try:
        yield marker
    finally:
        _resuming.reset(token)


# ------------------------------------------------------------------------------------------------ the recorder
@dataclass
class Recorder:
    """The record of one flow run, owned by the flow's process: kept in memory, written batched."""

    store: Store
    record: dict[str, Any]
    lease: float
    flush: float
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    noted_reuse: set[str] = field(default_factory=set)
    dirty: bool = False
    closed: bool = False
    writes: int = 0
    _last_write: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _warned: bool = False
    _told: bool = False  # the thread was woken for the notes not yet written (see _soon)

    @property
    def run_id(self) -> str:
        run_id: str = self.record["run_id"]
        return run_id

    @property
    def workflow(self) -> str:
        workflow: str = self.record["workflow"]
        return workflow

    def start(self) -> None:
        self.write()
        self._thread = threading.Thread(target=self._loop, name=f"scout run record {self.run_id}", daemon=True)
        self._thread.start()

    # -- notes ------------------------------------------------------------------------------------------
    def note_job(self, entry: dict[str, Any]) -> None:
        """A job started (written with the next write, never causing one) or ended (written within ``flush``
        seconds): at most one write per finished task, fewer when tasks finish close together."""
        started = entry.get("status") == "start"
        with self._lock:
            old = self.jobs.get(entry["key"])
            self.jobs[entry["key"]] = {**(old or {}), **entry}
            if not started:
                self.dirty = True
        if not started:
            self._soon()

    def note_code(self, name: str, code: str) -> None:
        with self._lock:
            ran = self.record["code"].setdefault("ran", {})
            if ran.get(name) != code:
                ran[name] = code
                self.dirty = True

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """Lineage: ``artifact_logged``, ``artifact_used``, ``reused``."""
        with self._lock:
            if kind == "reused":
                self.record.setdefault("reused", []).append(data)
            else:
                bucket = {"artifact_logged": "logged", "artifact_used": "used"}.get(kind, kind)
                listed = self.record.setdefault("artifacts", {}).setdefault(bucket, [])
                if data not in listed:
                    listed.append(data)
            self.dirty = True
        self._soon()

    def _soon(self) -> None:
        if self.flush <= 0:
            self.write()  # no batching asked for: every note is written before it returns
            return
        with self._lock:
            if self._told:
                return  # the thread already knows a write is due: waking it per note would cost a switch per task
            self._told = True
        self._wake.set()

    # -- writing ----------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            record = dict(self.record)
            jobs = [dict(j) for j in self.jobs.values()]
            record["counts"] = core.job_counts_of(jobs)  # before the jobs: a listing reads no further
            record["jobs"] = jobs  # last
            lease = dict(record["lease"])
            lease["seq"] = self.writes + 1
            record["lease"] = lease
            self.dirty = self._told = False
            return record

    def write(self) -> None:
        with self._write_lock:
            data = core.encode(self.snapshot())
            try:
                self.store.put(core.record_key(self.workflow, self.run_id), data)
                self.writes += 1
            except Exception as exc:  # noqa: BLE001 - the record never fails the flow
                with self._lock:
                    self.dirty = True
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "scout-persist: the run record of flow run %s could not be written to %s (%s); "
                        "the flow goes on, the record may lag",
                        self.run_id,
                        self.store.url,
                        exc,
                    )
            self._last_write = time.monotonic()

    def _loop(self) -> None:
        """Renew the lease every ``lease / 3`` seconds; write batched notes ``flush`` seconds after the last write."""
        refresh = self.lease / 3
        batched = self.flush > 0  # flush 0: every note is written by its caller
        while not self.closed:
            since = time.monotonic() - self._last_write
            wait = refresh - since
            if batched and self.dirty:
                wait = min(wait, self.flush - since)
            self._wake.wait(max(wait, 0.005))
            self._wake.clear()
            if self.closed:
                return
            since = time.monotonic() - self._last_write
            if since >= refresh or (batched and self.dirty and since >= self.flush):
                self.write()

    def close(self, status: str, error: str | None = None) -> None:
        """The final write: status, end time, every job."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.record["status"] = status
            self.record["end"] = core.now_iso()
            if error:
                self.record["error"] = error
            for job in self.jobs.values():
                if job.get("status") == "start" and status != core.COMPLETED:
                    job["status"] = "aborted"  # the run ended without finishing it
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.write()


# ------------------------------------------------------------------------------------------------- the door
def begin(url: str | None = None) -> None:
    """Start recording the current flow run in store ``url`` (None: ``$SCOUT_PERSIST_URL``), once; called when the
    flow's process binds a scout task call or reuses a job."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or ctx.flow is None or getattr(ctx, "detached", False):
        return
    run_id = str(ctx.flow_run.id)
    with _guard:
        if run_id in _recorders:
            return
    try:
        recorder = _new_recorder(ctx, settings.store_for(url))
    except Exception as exc:  # noqa: BLE001 - a record that cannot be made never fails the flow
        logger.warning("scout-persist: no run record for flow run %s (%s: %s)", run_id, type(exc).__name__, exc)
        return
    with _guard:
        if run_id in _recorders:
            return
        _recorders[run_id] = recorder
    _install_hooks(ctx.flow)
    recorder.start()
    if recorder.record.get("resumed_from"):
        src = recorder.record["resumed_from"]
        try:
            core.write_marker(
                recorder.store,
                src["workflow"],
                src["run_id"],
                core.RESUMED_BY,
                run_id,
                {
                    "run_id": run_id,
                    "workflow": recorder.workflow,
                    "at": core.now_iso(),
                    "from_task": src.get("from_task"),
                },
            )
        except Exception as exc:  # noqa: BLE001
            logger.warning("scout-persist: could not mark run %s as resumed by %s (%s)", src["run_id"], run_id, exc)


def recorder_for(run_id: str | None) -> Recorder | None:
    if run_id is None:
        return None
    with _guard:
        return _recorders.get(str(run_id))


def job_started(run: plans.TaskRunAttempt) -> None:
    """The body of ``run``'s task run starts (its job is being computed)."""
    run.started = now = time.time()
    recorder = recorder_for(run.plan.flow_run_id)
    if recorder is not None:  # other processes write only final statuses (one request per task)
        recorder.note_job(_entry(run, "start", recorder, started=now))


def job_finished(run: plans.TaskRunAttempt, status: str, error: BaseException | None = None) -> None:
    """``run``'s job was computed and committed (``done``) or failed (``error``)."""
    started, run.started = run.started, None
    ended = time.time()
    extra: dict[str, Any] = {"reused": False, "ended": _iso(ended)}
    if started is not None:
        extra["started"] = _iso(started)
        extra["seconds"] = round(ended - started, 6)
    if error is not None:
        extra["error"] = f"{type(error).__name__}: {error}"[:2000]
    _record(run, status, extra)


def job_reused(run: plans.TaskRunAttempt) -> None:
    """``run``'s task run was served by its stored job (a cache hit)."""
    if run.plan.reuse:
        return  # reuse(): recorded as what the run reused, not as one of its jobs
    _record(run, "done", {"reused": True, "ended": _iso(time.time())})


def job_audited(run: plans.TaskRunAttempt, finding: Finding) -> None:
    """``run``'s hit was computed again and compared (audit mode): the finding joins the job's entry."""
    status = {"reused": not finding.replaced, "ended": _iso(time.time()), "audit": finding.record()}
    _record(run, "done", status)


def current() -> core.CurrentRun | None:
    """The recorded run the caller runs in (flow body, or a task of it in this or a worker process)."""
    run_id = None
    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run is not None:
        run_id = str(task_ctx.task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if run_id is None and flow_ctx is not None and flow_ctx.flow_run is not None:
        run_id = str(flow_ctx.flow_run.id)
    if run_id is None:
        return None
    recorder = recorder_for(run_id)
    if recorder is not None:
        return core.CurrentRun(
            run_id, recorder.workflow, recorder.record["flow"], recorder.store.url, note=recorder.note
        )
    if flow_ctx is None or flow_ctx.flow is None or not getattr(flow_ctx, "detached", False):
        return None  # the flow's own process records through its recorder (none: the run has no record)
    store = settings.store_for(None)
    workflow = flow_ctx.flow.name

    def note_elsewhere(kind: str, data: dict[str, Any]) -> None:
        core.write_part(store, workflow, run_id, f"note-{uuid.uuid4().hex}", {"kind": kind, **data})

    return core.CurrentRun(run_id, workflow, workflow, store.url, note=note_elsewhere)


def _record(run: plans.TaskRunAttempt, status: str, extra: dict[str, Any]) -> None:
    mark = (status, bool(extra.get("reused")))
    with _guard:  # Prefect reads a hit's metadata twice: note it once
        if mark in run.noted:
            return
        run.noted.add(mark)
    plan = run.plan
    recorder = recorder_for(plan.flow_run_id)
    if recorder is not None:
        code = (plan.signature or {}).get("code")
        if code:
            recorder.note_code(f"{plan.workflow}#{plan.task}", str(code))
        recorder.note_job(_entry(run, status, recorder, **extra))
        return
    _record_elsewhere(run, status, extra)


def _record_elsewhere(run: plans.TaskRunAttempt, status: str, extra: dict[str, Any]) -> None:
    """A worker process: the job's entry as one file of the run (one PUT)."""
    plan = run.plan
    ctx = FlowRunContext.get()
    if not plan.flow_run_id or not plan.task_run_id or ctx is None or ctx.flow is None:
        return
    store = settings.store_for(plan.url)  # the run's record is in the store of its scout tasks
    entry = _entry(run, status, None, **extra)
    code = (plan.signature or {}).get("code")
    if code:
        entry["code"] = str(code)
    try:
        core.write_part(store, ctx.flow.name, plan.flow_run_id, plan.task_run_id, entry)
    except Exception as exc:  # noqa: BLE001 - the record never fails the task
        logger.warning("scout-persist: job %s not recorded in run %s (%s)", plan.job_key, plan.flow_run_id, exc)


def _entry(run: plans.TaskRunAttempt, status: str, recorder: Recorder | None, **extra: Any) -> dict[str, Any]:
    plan = run.plan
    entry: dict[str, Any] = {
        "key": plan.job_key,
        "workflow": plan.workflow,
        "task": plan.task,
        "status": status,
        "task_run_id": plan.task_run_id,
        "dependencies": list(plan.dependencies),
    }
    if status == "done" and run.token:  # what the job holds, so a later reuse() can tell whether it still does
        entry[core.CONTENT] = core.job_content(run.token, plan.job_key, plan.signature or None)
    root = settings.root_url(plan.url)
    if recorder is None or root != recorder.store.url:
        entry["store"] = root
    if "started" in extra and isinstance(extra["started"], float):
        extra["started"] = _iso(extra["started"])
    entry.update(extra)
    return entry


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------------- the record
def _new_recorder(ctx: Any, store: Store) -> Recorder:
    flow, flow_run = ctx.flow, ctx.flow_run
    entrypoint, source_file, not_loadable = entrypoint_of(flow)
    flow_code, tasks, hashed = code_of(flow)
    plain, digests, not_json = core.record_parameters(dict(ctx.parameters or {}))
    lease = core.lease_seconds()
    reasons = [r for r in (not_loadable, not_json) if r]
    started: Any = getattr(flow_run, "start_time", None) or getattr(ctx, "start_time", None)  # a datetime
    record: dict[str, Any] = {
        "format": core.FORMAT,
        "run_id": str(flow_run.id),
        "flow_run_name": getattr(flow_run, "name", None),
        "workflow": core.check_workflow(flow.name),
        "flow": flow.name,
        "entrypoint": entrypoint,
        "source_file": source_file,
        "cwd": os.getcwd(),
        "code": {"hash": hashed, "flow": flow_code, "tasks": tasks, "ran": {}},
        "parameters": plain,
        "parameter_digests": digests,
        "resumable": not reasons,
        "not_resumable": "; ".join(reasons) or None,
        **core.writer_fields(),
        "start": started.isoformat() if hasattr(started, "isoformat") else core.now_iso(),
        "end": None,
        "status": core.RUNNING,
        "lease": {"seconds": lease, "refresh": round(lease / 3, 3), "seq": 0},
        "task_runner": type(getattr(ctx, "task_runner", None)).__name__,
        "parent_task_run_id": str(flow_run.parent_task_run_id) if flow_run.parent_task_run_id else None,
        "resumed_from": None,
        "reused": [],
        "artifacts": {"logged": [], "used": []},
        "error": None,
    }  # "counts" and "jobs" are added last by each write
    resume = _resuming.get()
    if resume is not None and not resume.used and flow_run.parent_task_run_id is None:
        resume.used = True
        resume.new_run_id = str(flow_run.id)
        record["resumed_from"] = {"workflow": resume.workflow, "run_id": resume.run_id, "from_task": resume.from_task}
    return Recorder(store=store, record=record, lease=lease, flush=core.flush_seconds())


def entrypoint_of(flow: Any) -> tuple[str | None, str | None, str | None]:
    """``(entrypoint, source file, why it cannot be loaded)``: ``module:function`` for a flow of an importable
    module, else ``/path/file.py:function``; the file is kept as a second way to load it."""
    fn = inspect.unwrap(flow.fn)
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    code = getattr(fn, "__code__", None)
    source = None
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    if source is None and code is not None and not code.co_filename.startswith("<"):
        source = code.co_filename
    source = os.path.abspath(source) if source else None
    if "<locals>" in qualname:
        return (
            None,
            source,
            (
                f"the flow function {qualname!r} is defined inside another function, so no "
                "entrypoint can load it; define the flow at module level"
            ),
        )
    module = getattr(fn, "__module__", None) or ""
    if module and module != "__main__" and not module.startswith("__prefect_loader"):
        return f"{module}:{qualname}", source, None
    if source is None:
        return None, None, "the flow's source file is unknown (defined interactively?), so no entrypoint can load it"
    return f"{source}:{qualname}", source, None


def code_of(flow: Any) -> tuple[str, dict[str, str], str]:
    """``(flow code identity, {scout task: code identity}, hash of both)`` for the flow and the scout tasks its code
    names (directly, or through functions of its module that it calls)."""
    fn = inspect.unwrap(flow.fn)
    flow_code = code_identity(fn)
    tasks: dict[str, str] = {}
    for task in _scout_tasks_named(fn):
        spec = task.cache_policy.spec
        inner = inspect.unwrap(task.fn)
        tasks[f"{spec.workflow or flow.name}#{spec.name or inner.__name__}"] = code_identity(inner)
    return flow_code, tasks, core.code_hash(flow_code, tasks)


def _scout_tasks_named(fn: Any) -> list[Any]:
    found: dict[int, Any] = {}
    seen: set[int] = set()
    todo = [fn]
    while todo:
        f = todo.pop()
        if id(f) in seen or getattr(f, "__code__", None) is None:
            continue
        seen.add(id(f))
        glob = getattr(f, "__globals__", {}) or {}
        for name in _names(f.__code__):
            value = glob.get(name)
            if isinstance(value, Task) and isinstance(value.cache_policy, ScoutCachePolicy):  # a scout task
                found[id(value)] = value
            elif isinstance(value, types.FunctionType) and value.__module__ == getattr(fn, "__module__", None):
                todo.append(value)
    return list(found.values())


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


# ---------------------------------------------------------------------------------------------- flow hooks
def _install_hooks(flow: Any) -> None:
    for attr in ("on_completion_hooks", "on_failure_hooks", "on_crashed_hooks", "on_cancellation_hooks"):
        hooks = getattr(flow, attr, None)
        if isinstance(hooks, list) and record_flow_end not in hooks:
            hooks.append(record_flow_end)


def record_flow_end(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook: close the run's record with how the flow ended."""
    with _guard:
        recorder = _recorders.pop(str(flow_run.id), None)
    if recorder is None:
        return
    if state.is_completed():
        status, error = core.COMPLETED, None
    elif state.is_crashed():
        status, error = core.CRASHED, state.message
    elif state.is_cancelled() or state.is_cancelling():
        status, error = core.CANCELLED, state.message
    else:
        status, error = core.FAILED, state.message
    recorder.close(status, error)


core.set_current_run_provider(current)


def forget_all() -> None:
    """Drop every recorder of this process without writing (tests)."""
    with _guard:
        for recorder in _recorders.values():
            recorder.closed = True
            recorder._wake.set()
        _recorders.clear()


__all__ = [
    "Recorder",
    "begin",
    "code_of",
    "current",
    "entrypoint_of",
    "job_finished",
    "job_reused",
    "job_started",
    "record_flow_end",
    "recorder_for",
    "resuming",
]
