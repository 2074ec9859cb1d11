"""The oracle's flows run on two engines with one source: the real Prefect plug-in, or a core runner.

A flow of the oracle's library imports ``task``, ``flow`` and ``job_name`` from here.  With
``SCOUT_ORACLE_ENGINE=prefect`` they are ``prefect_scout.scout_task``, ``prefect.flow`` and ``prefect_scout.job_name``;
otherwise (``core``, the default) a task call is planned by the very core the plug-in uses
(:func:`scout_persist.callplan.plan_call`), its result encoded by :mod:`scout_persist.payload`, and a store of the
run's jobs decides hits by the plug-in's own rule (the signature of a done job equals the call's), in-process and in
milliseconds, so thousands of (flow, edit) cells fit in the suite.

The core runner mirrors what Prefect does with a call: a ``.submit`` returns a future whose value is resolved before
the call; a direct call returns the value, linked to its run by object identity (and its items one level deep), so a
later call that receives it has it as an upstream value; ``*args``/``**kwargs`` are bound as Prefect binds them.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scout_persist import payload, signature
from scout_persist.callplan import TaskDecl, Upstream, UpstreamRef, plan_call

ENGINE = os.environ.get("SCOUT_ORACLE_ENGINE", "core")


@dataclass
class StoredJob:
    signature: dict[str, Any]
    data: Any
    record: dict[str, Any]
    token: str


@dataclass
class Call:
    """One call of a task in a run: its plan, whether it was served by a stored job, what it handed on."""

    name: str  # "<task>#<n>": the n-th call of the task in the run
    key: str
    signature: dict[str, Any]
    value: Any = None
    error: str | None = None
    hit: bool = False


@dataclass
class CoreRun:
    """One run of a flow by the core runner over ``store`` (job key -> StoredJob; shared between runs: warm)."""

    workflow: str
    store: dict[str, StoredJob]
    parameters: dict[str, Any]
    calls: dict[str, Call] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    linked: dict[int, tuple[str, Any]] = field(default_factory=dict)  # id(value) -> (run id, value)
    upstream: dict[str, Upstream] = field(default_factory=dict)  # run id -> its job
    ids: Iterator[int] = field(default_factory=itertools.count)
    error: str | None = None


_current: contextvars.ContextVar[CoreRun | None] = contextvars.ContextVar("oracle_run", default=None)
_job_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("oracle_job_name", default=None)


class TaskFailed(Exception):
    """A task body raised in the core runner (the flow stops, as Prefect's would)."""


class CoreFuture:
    def __init__(self, run_id: str, value: Any) -> None:
        self.run_id = run_id
        self.value = value

    def result(self) -> Any:
        return self.value


class CoreTask:
    def __init__(self, fn: Callable[..., Any], decl: TaskDecl) -> None:
        self.fn = fn
        self.decl = decl
        self.__name__ = getattr(fn, "__name__", "task")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run_id, value = _call(self, args, kwargs)
        run = _current.get()
        assert run is not None
        _link(run, run_id, value)
        return value

    def submit(self, *args: Any, **kwargs: Any) -> CoreFuture:
        return CoreFuture(*_call(self, args, kwargs))


_UNTRACKABLE = (bool, type(None))


def _link(run: CoreRun, run_id: str, value: Any) -> None:
    """As Prefect links a result (and its items one level deep) to its run by object identity."""
    items = [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        items += list(value)
    elif isinstance(value, dict):
        items += list(value.values())
    for item in items:
        if isinstance(item, _UNTRACKABLE) or (isinstance(item, int) and -5 <= item <= 256):
            continue
        run.linked[id(item)] = (run_id, item)


def _template(run: CoreRun, value: Any, found: list[str], depth: int = 0) -> Any:
    if isinstance(value, CoreFuture):
        found.append(value.run_id)
        return UpstreamRef(value.run_id)
    linked = run.linked.get(id(value))
    if linked is not None and linked[1] is value:
        found.append(linked[0])
        return UpstreamRef(linked[0])
    if depth >= 8:
        return value
    before = len(found)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        items = [_template(run, v, found, depth + 1) for v in value]
        rebuilt: Any = items if isinstance(value, list) else tuple(items)
    elif isinstance(value, dict):
        rebuilt = {k: _template(run, v, found, depth + 1) for k, v in value.items()}
    else:
        return value
    return rebuilt if len(found) > before else value


def _resolve(value: Any, depth: int = 0) -> Any:
    if isinstance(value, CoreFuture):
        return value.value
    if depth >= 8:
        return value
    if isinstance(value, list):
        return [_resolve(v, depth + 1) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_resolve(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, depth + 1) for k, v in value.items()}
    return value


def _call(task: CoreTask, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    run = _current.get()
    if run is None:
        raise RuntimeError("an oracle task was called outside an oracle flow")
    bound = inspect.signature(task.fn).bind(*args, **kwargs)
    upstream: dict[str, list[tuple[str, Upstream | None]]] = {}
    templates: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        found: list[str] = []
        template = _template(run, value, found)
        if found:
            upstream[name] = [(r, run.upstream.get(r)) for r in found]
            templates[name] = template
    bound.apply_defaults()
    arguments = {name: _resolve(value) for name, value in bound.arguments.items()}
    plan = plan_call(
        task.fn,
        task.decl,
        run.workflow,
        arguments,
        upstream=upstream,
        templates=templates,
        provided=run.parameters,
        job_id=_job_name.get(),
    )
    count = run.counts.get(plan.task, 0)
    run.counts[plan.task] = count + 1
    call = Call(f"{plan.task}#{count}", plan.job_key, dict(plan.signature))
    run.calls[call.name] = call
    run_id = f"run-{next(run.ids)}"
    stored = run.store.get(plan.job_key)
    if stored is not None and not signature.changed_parts(stored.signature, plan.signature):
        call.hit = True  # the plug-in's rule: a done job with this call's signature serves it
        value = payload.decode(payload.joined(stored.data), stored.record, key=plan.job_key)
        run.upstream[run_id] = Upstream(plan.job_key, stored.token, tuple(plan.identity.non_default_inputs))
        call.value = value
        return run_id, value
    bound_call = inspect.signature(task.fn).bind(*_resolve(list(args)), **_resolve(kwargs))
    try:
        value = task.fn(*bound_call.args, **bound_call.kwargs)
    except Exception as exc:
        call.error = f"{type(exc).__name__}: {exc}"
        raise TaskFailed(call.error) from exc
    try:
        encoded = payload.encode(value, task.decl.type, key=plan.job_key, format=task.decl.format)
    except Exception as exc:
        call.error = f"{type(exc).__name__}: {exc}"
        raise TaskFailed(call.error) from exc
    record = encoded.record
    token = signature.dependency_token(plan.job_key, {"payload": record})
    run.store[plan.job_key] = StoredJob(dict(plan.signature), encoded.data, record, token)
    run.upstream[run_id] = Upstream(plan.job_key, token, tuple(plan.identity.non_default_inputs))
    call.value = encoded.value
    return run_id, encoded.value


# ------------------------------------------------------------------------------------------------ the API
def task(fn: Callable[..., Any] | None = None, **decl: Any) -> Any:
    """``@task(type=..., version=..., ignore=..., format=...)``: a scout task on either engine."""
    if fn is None:
        return lambda f: task(f, **decl)
    if ENGINE == "prefect":
        from prefect_scout import scout_task

        return scout_task(fn, **decl)
    fields = {k: (tuple(v) if k in ("ignore", "step_inputs") else v) for k, v in decl.items()}
    return CoreTask(fn, TaskDecl(**fields))


def flow(name: str) -> Callable[[Callable[..., Any]], Any]:
    """``@flow("Workflow")``: the flow whose name is the Scout workflow."""

    def wrap(fn: Callable[..., Any]) -> Any:
        if ENGINE == "prefect":
            from prefect import flow as prefect_flow

            return prefect_flow(name=name)(fn)
        fn.oracle_workflow = name  # type: ignore[attr-defined]
        return fn

    return wrap


@contextlib.contextmanager
def job_name(name: str) -> Iterator[None]:
    if ENGINE == "prefect":
        from prefect_scout import job_name as scout_job_name

        with scout_job_name(name):
            yield
        return
    token = _job_name.set(name)
    try:
        yield
    finally:
        _job_name.reset(token)


def run_core(flow_fn: Callable[..., Any], store: dict[str, StoredJob], **parameters: Any) -> CoreRun:
    """Run an oracle flow with the core runner over ``store`` (jobs of earlier runs are hits when they match)."""
    run = CoreRun(flow_fn.oracle_workflow, store, dict(parameters))  # type: ignore[attr-defined]
    token = _current.set(run)
    try:
        flow_fn(**parameters)
    except TaskFailed:
        pass  # the calls so far are the run's outcome; the failing call has its error
    except Exception as exc:  # noqa: BLE001 - the flow's own code failed: the calls so far are the outcome
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        _current.reset(token)
    return run
