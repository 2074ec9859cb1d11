"""``@scout_task``: a Prefect task whose result persists as a Scout job, with no block to save by hand.

The decorator wires the Scout pieces together: :class:`ScoutCachePolicy` (key = job path, SERIALIZABLE isolation,
:class:`ScoutLockManager`, :class:`ScoutInfoStorage` as key storage), :class:`ScoutSerializer`, and
:class:`ScoutStorage` as result storage.  The storage block is saved under a deterministic name the first time a
scout task is called in a process (Prefect wants saved result storage), then reused.

The function is wrapped so that the job follows Scout's lifecycle (:mod:`prefect_scout.lifecycle`): ``start``
before the body runs, then the result stored and ``done``, or ``error`` (class, message, backtrace) when it raises.
Calling a scout task checks that no other function of this process claims the same workflow/task.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, cast

from prefect import Task
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.utilities.engine import get_state_for_result

from scout_persist import audit
from scout_persist.callplan import JOBNAME_MARK, UpstreamRef, call_signature, check_format
from scout_persist.errors import ScoutPersistError

from . import lifecycle, plans, run_recorder, settings
from .cache_policy import ScoutCachePolicy, ScoutKeyError, ScoutSpec, current_job_name
from .locking import ScoutLockManager
from .result_serializer import ScoutSerializer
from .storage import ScoutInfoStorage, ScoutStorage

JobName = Annotated[str | None, JOBNAME_MARK]
"""Annotate a parameter ``JobName`` to make it Scout's ``jobname: true`` input (its value names the job)."""

_saved: dict[str | None, ScoutStorage] = {}
_save_guard = threading.Lock()


def block_name(url: str | None) -> str:
    """Deterministic block document name for a root (``scout-env`` follows $SCOUT_PERSIST_URL per process)."""
    return "scout-env" if url is None else "scout-" + hashlib.md5(url.encode()).hexdigest()[:16]


def saved_storage(url: str | None = None) -> ScoutStorage:
    """The result storage block for ``url``, saved once per process under :func:`block_name`."""
    with _save_guard:
        block = _saved.get(url)
        if block is None:
            block = ScoutStorage(url=url)
            # also when the flow is async: save is dispatched by prefect's async_dispatch, which takes _sync=
            block.save(block_name(url), overwrite=True, _sync=True)  # type: ignore[call-arg]  # (see above)
            _saved[url] = block
        return block


def _current_attempt(fn_name: str) -> plans.TaskRunAttempt:
    ctx = TaskRunContext.get()
    found = plans.for_run(ctx.task_run.id) if ctx and ctx.task_run else None
    if isinstance(found, ScoutPersistError):
        raise found  # its message names the argument, the task and the fix: say it once, unwrapped
    if isinstance(found, BaseException):
        raise ScoutKeyError(
            f"scout task {fn_name!r}: its Scout job key could not be computed, so its result would not persist "
            f"as a Scout job ({type(found).__name__}: {found})"
        ) from found
    if found is None:
        raise ScoutKeyError(
            f"scout task {fn_name!r} ran without a Scout job key: its cache policy was replaced or removed "
            "(do not pass cache_policy=, cache_key_fn= or result_storage_key= to a scout task)"
        )
    return found


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await lifecycle.arun(_current_attempt(fn.__name__), fn, args, kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return lifecycle.run(_current_attempt(fn.__name__), fn, args, kwargs)

    return run


_claims: dict[tuple[str, str, str], tuple[str, Any]] = {}
_claims_guard = threading.Lock()


def claim(root: str, workflow: str, task: str, fn: Callable[..., Any]) -> None:
    """Refuse a second, different function resolving to the same workflow/task on the same store in this process:
    the two would share one job and overwrite each other's result on every run."""
    fn = inspect.unwrap(fn)
    who = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    with _claims_guard:
        first = _claims.setdefault((root, workflow, task), (who, fn))
    if first[0] != who:
        raise ScoutKeyError(
            f"scout task {workflow}#{task}: two different functions resolve to it, {first[0]} and {who}; they would "
            f"share the jobs under var/jobs/{workflow}/{task}/ and overwrite each other's results. Give one of them "
            f"its own Scout task name: @scout_task(name='...')"
        )


_CALL_OPTIONS = ("return_state", "wait_for")


class fixed:
    """``base.submit(n=fixed(10))``: a value fixed by the dependency declaration (Ruby ``dep :base, n: 10``).

    The dependency hashes it as usual, but its name is not inherited by the jobs that depend on it, as Ruby drops
    names a ``dep`` declaration fixes from the parent's non-default inputs.
    """

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"fixed({self.value!r})"


def _unfix(
    args: tuple[Any, ...], kwargs: dict[str, Any], fn: Callable[..., Any]
) -> tuple[tuple[Any, ...], dict[str, Any], set[str]]:
    names: set[str] = set()
    params = list(call_signature(fn).parameters)
    new_args = []
    for i, a in enumerate(args):
        if isinstance(a, fixed):
            if i < len(params):
                names.add(params[i])
            a = a.value
        new_args.append(a)
    new_kwargs = {}
    for k, v in kwargs.items():
        if isinstance(v, fixed):
            names.add(k)
            v = v.value
        new_kwargs[k] = v
    return tuple(new_args), new_kwargs, names


def _template(value: Any, found: list[str], depth: int = 0) -> Any:
    """``value`` with an :class:`UpstreamRef` in place of each future and each value Prefect links to a task run
    (collected in ``found``, in order); containers are rebuilt only where they hold one."""
    if isinstance(value, PrefectFuture):
        found.append(str(value.task_run_id))
        return UpstreamRef(found[-1])
    linked = get_state_for_result(value) if not isinstance(value, (bool, type(None))) else None
    if linked is not None:
        state, run_type = linked
        if getattr(run_type, "value", run_type) == "task_run" and state.state_details.task_run_id:
            found.append(str(state.state_details.task_run_id))
            return UpstreamRef(found[-1])
    if depth >= 8:
        return value
    before = len(found)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        items = [_template(item, found, depth + 1) for item in value]
        rebuilt: Any = items if isinstance(value, list) else tuple(items)
    elif isinstance(value, dict):
        rebuilt = {k: _template(v, found, depth + 1) for k, v in value.items()}
    elif isinstance(value, (set, frozenset)):
        rebuilt = type(value)(_template(item, found, depth + 1) for item in value)
    else:
        return value
    return rebuilt if len(found) > before else value


def upstream_runs(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """``({argument: [task run ids]}, {argument: template})`` for the arguments of one call fed by upstream task
    runs; a template is the argument as passed with an :class:`UpstreamRef` where each upstream value goes."""
    call_kwargs = {k: v for k, v in kwargs.items() if k not in _CALL_OPTIONS}
    try:
        bound = call_signature(fn).bind_partial(*args, **call_kwargs)
    except TypeError:
        return {}, {}  # Prefect reports the bad call itself
    found: dict[str, list[str]] = {}
    templates: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        ids: list[str] = []
        template = _template(value, ids)
        if ids:
            found[name] = ids
            templates[name] = template
    return found, templates


class ScoutTask(Task[..., Any]):
    """A Prefect task that knows its Scout root and carries the ``job_name`` in force when it was called."""

    scout_url: str | None = None
    # set on the copy bound to a call (_prepared), read by the cache policy
    _scout_job_name: str | None
    _scout_upstream: dict[str, list[str]]
    _scout_templates: dict[str, Any]
    _scout_plain: tuple[str, ...]
    _scout_fixed: tuple[str, ...]

    def _prepared(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, upstream: bool = False
    ) -> ScoutTask:
        """This task bound to the call: the job name in force and which arguments come from which task runs.

        Both travel with the task object to thread, process and Dask workers (a process pool resolves futures
        to plain values before the worker creates the task run, losing Prefect's own record of upstreams).
        """
        if self.result_storage is None:
            self.result_storage = saved_storage(self.scout_url)
        bound = copy.copy(self)
        bound._scout_job_name = current_job_name()
        if upstream:
            found, templates = upstream_runs(self.fn, args, kwargs or {})
            bound._scout_upstream = found
            bound._scout_templates = templates
            # which upstream runs are plain Prefect tasks: their values are inputs, no need to ask the API
            bound._scout_plain = tuple(i for ids in found.values() for i in ids if not plans.is_scout(i))
        return bound

    def _claim(self) -> None:
        spec: ScoutSpec = cast(ScoutCachePolicy, self.cache_policy).spec  # always ours (with_options refuses others)
        flow_ctx = FlowRunContext.get()
        workflow = spec.workflow or (flow_ctx.flow.name if flow_ctx and flow_ctx.flow else None)
        if workflow:
            fn = inspect.unwrap(self.fn)
            claim(settings.root_url(spec.url), workflow, spec.name or fn.__name__, fn)
        run_recorder.begin(self.scout_url)  # the flow's process starts the run's record at its first scout task
        # settings a task run reads, checked where the task is called: a bad value fails the flow with its own
        # message, not with Prefect's "Run is in PENDING state" of the dependents of a task that could not plan
        audit.fraction(spec.audit)
        audit.replaces(spec.audit_replace)

    def _bind_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[ScoutTask, tuple[Any, ...], dict[str, Any]]:
        self._claim()
        args, kwargs, fixed_names = _unfix(args, kwargs, self.fn)
        bound = self._prepared(args, kwargs, upstream=True)
        bound._scout_fixed = tuple(sorted(fixed_names))
        return bound, args, kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound, args, kwargs = self._bind_call(args, kwargs)
        return Task.__call__(bound, *args, **kwargs)

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        bound, args, kwargs = self._bind_call(args, kwargs)
        future = Task.submit(bound, *args, **kwargs)
        plans.mark_scout(future.task_run_id)
        return future

    def map(self, *args: Any, **kwargs: Any) -> Any:
        self._claim()
        futures = Task.map(self._prepared(), *args, **kwargs)
        for future in futures:
            plans.mark_scout(future.task_run_id)
        return futures

    def with_options(self, **kwargs: Any) -> ScoutTask:
        for forbidden in ("cache_policy", "cache_key_fn", "result_storage_key", "result_serializer"):
            if forbidden in kwargs:
                raise ScoutPersistError(
                    f"scout task {self.name!r}: with_options({forbidden}=...) would break its Scout job key or "
                    "bytes; declare type=, extension=, version= in @scout_task instead"
                )
        new = super().with_options(**kwargs)
        new.__class__ = type(self)  # Prefect rebuilds a plain Task; keep the Scout call-time binding
        scout = cast(ScoutTask, new)
        scout.scout_url = self.scout_url
        return scout


def scout_task(
    fn: Callable[..., Any] | None = None,
    *,
    workflow: str | None = None,
    name: str | None = None,
    type: str | None = None,
    extension: str | None = None,
    version: str | None = None,
    ignore: Iterable[str] = (),
    types: Mapping[str, str] | None = None,
    url: str | None = None,
    step_inputs: Iterable[str] = (),
    lock_lease: float = 30.0,
    format: str | None = None,
    ruby_strings: bool = False,
    audit: float | None = None,
    audit_replace: bool | None = None,
    **task_options: Any,
) -> Any:
    """Turn ``fn`` into a Prefect task whose result persists as a Scout job.

    ``workflow`` defaults to the flow's name, ``name`` (Scout task name) to the function's; ``type`` is the Scout
    result type (None: any Python value, stored as zstd pickle); ``extension`` as Ruby's ``extension:``;
    ``version`` bumps the signature; ``ignore`` lists arguments that change neither key nor signature; ``types``
    overrides Scout input types inferred from annotations; ``url`` pins the store root (None:
    ``$SCOUT_PERSIST_URL`` in the process that runs the task); ``step_inputs`` names arguments whose upstream
    task result is a Scout *input* holding that job (Ruby's ``dep :consume, data: :base``) instead of a
    dependency.  ``format`` stores results of any Python type (``type=None``) in that format (``"npy"``,
    ``"parquet"``, ``"arrow"``, ``"safetensors"``, ``"json"``, ``"pickle"``; None: chosen by the value's type, see
    docs/formats.md).  ``ruby_strings=True`` applies Ruby's ``:string`` rule to every ``str`` input (also inside lists
    and dicts): one naming an existing file or folder is loaded / digested by its content, as Ruby's
    ``Workflow#job`` does — for tasks that mirror a Ruby task and reuse its jobs.  By default only inputs typed as
    paths (``Path`` annotations, ``types=`` ``path``/``file``/``folder``/``file_array``) are read from disk, so a key
    never depends on what the working directory happens to hold.  ``audit`` (a fraction from 0 to 1; None:
    ``$SCOUT_PERSIST_AUDIT``) computes that fraction of this task's cache hits again and compares them with the stored
    value, warning about and recording a mismatch; ``audit_replace=True`` (None: ``$SCOUT_PERSIST_AUDIT_REPLACE``) then
    replaces the stored job (docs/identity.md, "Audit mode").  Other keywords go to ``prefect.task``.
    """
    if fn is None:
        return functools.partial(
            scout_task,
            workflow=workflow,
            name=name,
            type=type,
            extension=extension,
            version=version,
            ignore=ignore,
            types=types,
            url=url,
            step_inputs=step_inputs,
            lock_lease=lock_lease,
            format=format,
            ruby_strings=ruby_strings,
            audit=audit,
            audit_replace=audit_replace,
            **task_options,
        )
    for forbidden in ("cache_policy", "cache_key_fn", "result_storage_key", "result_serializer", "result_storage"):
        if forbidden in task_options:
            raise ScoutPersistError(
                f"@scout_task got {forbidden}=: a scout task sets its own (its key is the Scout job path); "
                "use a plain @task if you need another policy"
            )
    check_format(format, type, name or fn.__name__)
    if type == "pickle" and format is None:
        format = "pickle"  # declared pickle: a pickle, whatever the value's type
    spec = ScoutSpec(
        workflow=workflow,
        name=name,
        type=type,
        extension=extension,
        version=version,
        ignore=tuple(ignore),
        types=dict(types) if types else None,
        url=url,
        step_inputs=tuple(step_inputs),
        format=format,
        ruby_strings=bool(ruby_strings),
        audit=audit,
        audit_replace=audit_replace,
    )
    policy = ScoutCachePolicy(
        spec=spec,
        key_storage=ScoutInfoStorage(url=url),
        isolation_level="SERIALIZABLE",
        lock_manager=ScoutLockManager(url=url, lease=lock_lease, refresh=min(2.0, lock_lease / 3)),
    )
    task_options.setdefault("name", name or fn.__name__)
    task = ScoutTask(
        fn=_wrap(fn),
        cache_policy=policy,
        result_serializer=ScoutSerializer(scout_type=type),
        persist_result=True,
        **task_options,
    )
    task.scout_url = url
    return task


__all__ = ["JobName", "ScoutTask", "block_name", "fixed", "saved_storage", "scout_task"]
