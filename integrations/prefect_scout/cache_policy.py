"""The Scout cache policy: the cache key of a task run is its Ruby-exact job path, plus a strong signature.

Key: ``<Workflow>/<task>/<id>[_<md5>][.ext]`` computed by :func:`scout_persist.workflow.job_identity` as Ruby would
for the same declaration: arguments fed by upstream task runs are dependencies (``Step: var/jobs/...``), the other
arguments are inputs (types from annotations, defaults from the signature), the provided inputs are the flow run's
parameters plus the values this call binds, ``job_name(...)`` (or a ``JobName`` argument) sets the id.

Signature (:mod:`scout_persist.signature`, kept in ``.info`` under ``signature``): every input by value, the
dependencies by the content of their results, the task's code identity and ``version=``; arguments in ``ignore``
take part in neither.  A stored job whose signature differs is a miss, and the new ``.info`` names the parts that
changed.

Prefect swallows errors raised here and then silently runs without caching; so every failure is recorded instead,
and the scout task wrapper raises it as the task's own failure before the body runs (see :mod:`prefect_scout.task`).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound

from scout_persist import signature
from scout_persist.errors import InvalidInputError, ScoutPersistError, UnsupportedValueError
from scout_persist.info import read_info
from scout_persist.layout import below_jobs, job_key_below
from scout_persist.rubydigest import digest_str
from scout_persist.rubyvalues import Step
from scout_persist.workflow import Input, job_identity

from . import plans, settings

logger = logging.getLogger("prefect_scout")

JOBNAME_MARK = "scout:jobname"
_current_job_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("scout_job_name", default=None)


class ScoutKeyError(ScoutPersistError, ValueError):
    """The Scout job key of a task run could not be computed; the task fails instead of running uncached."""


@dataclass(frozen=True)
class ScoutSpec:
    """What ``scout_task`` declares about a task (None: take it from the flow / function)."""

    workflow: str | None = None
    name: str | None = None
    type: str | None = None
    extension: str | None = None
    version: str | None = None
    ignore: tuple[str, ...] = ()
    types: Mapping[str, str] | None = None
    url: str | None = None
    step_inputs: tuple[str, ...] = ()  # arguments whose upstream job is an input value (Ruby ``data: :base``)
    format: str | None = None  # payload format of results of any Python type (None: chosen by the value's type)
    # Ruby's ``:string`` rule: a str naming an existing file or folder is loaded / digested by its content.  Off, only
    # inputs typed as paths (Path annotations, types= path/file/folder/file_array) are read from disk.
    ruby_strings: bool = False


@dataclass
class ScoutCachePolicy(CachePolicy):
    """Cache key = Scout job path; pair it with :class:`ScoutInfoStorage` as ``key_storage``."""

    spec: ScoutSpec = field(default_factory=ScoutSpec)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        run_id = task_ctx.task_run.id if task_ctx and task_ctx.task_run else None
        try:
            plan = plan_run(task_ctx, inputs, flow_parameters, self.spec)
            attempt = plans.TaskRunAttempt(plan)
        except Exception as exc:  # noqa: BLE001 - recorded for the task wrapper to raise (below)
            # Recorded, not raised: the task wrapper raises it as the run's failure (prefect_scout.task), so the user
            # reads it once.  Raised here, Prefect would log a second copy saying the result "will not be persisted".
            logger.debug("scout-persist: no Scout job key for task run %s: %s", run_id, exc)
            plans.remember(run_id, exc)
            return None
        plans.remember(run_id, attempt)
        _show_job(task_ctx, plan.cache_key)
        return plan.cache_key


JOB_TAG_PREFIX = "scout:"


def _show_job(task_ctx: TaskRunContext, cache_key: str) -> None:
    """Tag the task run with its job (``scout:<Workflow>/<task>/<name>``) so the Prefect UI shows it.

    The task run is the engine's own object: the tag travels with the state events the engine emits anyway (the
    server records the run from them), so it costs no API call — an artifact per run costs a round trip each.
    """
    task_run = task_ctx.task_run if task_ctx else None
    tag = JOB_TAG_PREFIX + cache_key
    if task_run is not None and tag not in task_run.tags:
        task_run.tags = [t for t in task_run.tags if not t.startswith(JOB_TAG_PREFIX)] + [tag]


# ------------------------------------------------------------------------------------------------ job name


class job_name:
    """``with job_name("Blueberry muffin"): ...`` sets the Scout job id of the scout tasks called inside."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"job_name({name!r}): a job name is a non-empty str, e.g. job_name('Default')")
        self.name = name
        self._token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> job_name:
        self._token = _current_job_name.set(self.name)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _current_job_name.reset(self._token)
            self._token = None


def current_job_name() -> str | None:
    return _current_job_name.get()


# ---------------------------------------------------------------------------------------------- planning

_SIMPLE_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    tuple: "array",
    dict: "hash",
}
_NAMED_TYPES = {
    "bool": "boolean",
    "int": "integer",
    "float": "float",
    "str": "string",
    "list": "array",
    "dict": "hash",
    "list[str]": "array",
    "list[int]": "integer_array",
    "list[float]": "float_array",
    "Path": "file",
    "pathlib.Path": "file",
    "JobName": "string",
}


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - hints that do not resolve: the raw annotations
        return dict(getattr(fn, "__annotations__", {}) or {})


def _is_jobname(hint: Any) -> bool:
    if isinstance(hint, str):
        return hint.replace(" ", "") in ("JobName", "prefect_scout.JobName")
    return JOBNAME_MARK in getattr(hint, "__metadata__", ())


def scout_type_of(hint: Any) -> str:
    """The Scout input type for a parameter annotation (``string`` when unknown)."""
    if hint is inspect.Parameter.empty or hint is None:
        return "string"
    if isinstance(hint, str):
        text = hint.replace(" ", "").replace("Optional[", "").rstrip("]") if hint.startswith("Optional[") else hint
        text = text.split("|")[0] if "|" in text else text
        return _NAMED_TYPES.get(text, "string")
    if getattr(hint, "__metadata__", None) is not None:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union or (origin is not None and type(hint).__name__ == "UnionType"):
        return scout_type_of(args[0]) if args else "string"
    if origin in (list, tuple):
        inner = _SIMPLE_TYPES.get(args[0]) if args else None
        return f"{inner}_array" if inner in ("integer", "float", "boolean") else "array"
    if origin is dict:
        return "hash"
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "file"
    return _SIMPLE_TYPES.get(hint, "string")


def _upstream(task_ctx: TaskRunContext) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, sources in (task_ctx.task_run.task_inputs or {}).items():
        ids = [str(s.id) for s in sources if s.input_type == "task_run"]  # a TaskRunResult
        if ids:
            found[name] = ids
    return found


def _dependency(run_id: str, url: str | None, plain: Any = ()) -> tuple[str, list[str], str] | None:
    """``(job key, non-default input names, signature token)`` of the upstream task run ``run_id``.

    None when that run is not a Scout job (a plain Prefect task): its value is then an ordinary input.
    """
    if run_id in plain:
        return None
    found = plans.for_run(run_id)
    if isinstance(found, plans.TaskRunAttempt):
        plan = found.plan
        inherited = [n for n in plan.identity.non_default_inputs if n not in plan.fixed]
        token = found.token or signature.dependency_token(
            plan.job_key, read_info(settings.store_for(url), plan.job_key + ".info")
        )
        return plan.job_key, inherited, token
    if isinstance(found, BaseException):
        raise ScoutKeyError(f"upstream task run {run_id} has no Scout job key ({found})") from found
    key = _key_from_api(run_id)
    if key is None:
        return None
    info = read_info(settings.store_for(url), key + ".info")
    if not info or not info.get("workflow"):
        return None
    record = info.get("prefect") or {}
    fixed_names = set(record.get("fixed_inputs") or ())
    inherited = [n for n in info.get("non_default_inputs") or [] if n not in fixed_names]
    return key, inherited, signature.dependency_token(key, info)


def _key_from_api(run_id: str, wait: float = 30.0) -> str | None:
    """The job key of an upstream task run planned in another process, from its persisted result record.

    The upstream run has finished, but the API may not have ingested its last state yet: wait up to ``wait``
    seconds for a final state.  None when the run is not a Scout job.
    """

    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            try:
                task_run = client.read_task_run(run_id)  # type: ignore[arg-type]  # a UUID str: it goes into a URL
            except ObjectNotFound:
                task_run = None
            state = task_run.state if task_run is not None else None
            if state is not None and state.is_final():
                break
            if time.monotonic() > deadline:
                raise ScoutKeyError(
                    f"upstream task run {run_id} has no final state in the Prefect API after {wait:.0f}s, so its "
                    "Scout job is unknown; check that workers share one API (PREFECT_API_URL)"
                )
            time.sleep(0.1)
    data = state.data
    storage_key = data.get("storage_key") if isinstance(data, dict) else getattr(data, "storage_key", None)
    serializer = data.get("serializer") if isinstance(data, dict) else getattr(data, "serializer", None)
    kind = serializer.get("type") if isinstance(serializer, dict) else getattr(serializer, "type", None)
    if not storage_key or kind != "scout-persist":
        return None
    return job_key_below(str(storage_key))


def _identity_value(value: Any, where: str) -> Any:
    """A value job_identity can digest: Scout values as they are, anything else as a content token."""
    try:
        digest_str(value, str_paths=False)  # only whether it can be digested: no need to look at the disk
        return value
    except UnsupportedValueError:
        return f"<{type(value).__name__} {_value_digest(value, where)}>"


def _provided_value(value: Any) -> Any:
    """A flow parameter among the provided inputs: digested like an input when it can be; else a constant token
    (a parameter this task does not take as an input must not make it fail; one it takes is digested as its own)."""
    try:
        return _identity_value(value, "flow parameter")
    except ScoutKeyError:
        return f"<{type(value).__name__}>"


def _value_digest(value: Any, where: str) -> str:
    try:
        return signature.value_digest(value, where)
    except UnsupportedValueError as exc:
        raise ScoutKeyError(str(exc)) from None


def plan_run(
    task_ctx: TaskRunContext,
    inputs: Mapping[str, Any],
    flow_parameters: Mapping[str, Any],
    spec: ScoutSpec,
) -> plans.Plan:
    """Compute the job, identity and signature of one task run (pure apart from dependency look-ups)."""
    task = task_ctx.task
    fn = getattr(task.fn, "__wrapped__", task.fn)
    flow_ctx = FlowRunContext.get()
    workflow = spec.workflow or (flow_ctx.flow.name if flow_ctx and flow_ctx.flow else None)
    if not workflow:
        raise ScoutKeyError(
            f"task {task.name!r} runs outside a flow and declares no workflow; use @scout_task(workflow='Name') "
            "or call it inside a @flow (the flow's name is the Scout workflow)"
        )
    task_name = spec.name or fn.__name__
    ignore = set(spec.ignore)
    upstream = _upstream(task_ctx)
    upstream.update(getattr(task, "_scout_upstream", None) or {})  # ordered, and survives process pools
    plain = set(getattr(task, "_scout_plain", ()) or ())
    hints = _hints(fn)
    declared: list[Input] = []
    own: dict[str, Any] = {}
    dep_keys: list[str] = []
    dep_nd: list[str] = []
    dep_tokens: list[str] = []
    by_value: dict[str, Any] = {}
    for pname, param in inspect.signature(fn).parameters.items():
        if pname in ignore or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(pname, param.annotation)
        if pname in upstream and pname in spec.step_inputs:
            if len(upstream[pname]) != 1:
                raise ScoutKeyError(
                    f"step input {pname!r} of {workflow}#{task_name} receives {len(upstream[pname])} upstream "
                    "results; a step input takes exactly one task result"
                )
            dep = _dependency(upstream[pname][0], spec.url, plain)
            if dep is None:
                raise ScoutKeyError(
                    f"step input {pname!r} of {workflow}#{task_name} is fed by a task that is not a scout task; "
                    "a step input holds a Scout job"
                )
            key, _nd, token = dep
            stype = (spec.types or {}).get(pname) or scout_type_of(hint)
            declared.append(Input(pname, stype, None))
            own[pname] = Step(key)
            by_value[pname] = f"Step:{token}"
            continue
        found = [_dependency(run_id, spec.url, plain) for run_id in upstream.get(pname, ())]
        if found and all(f is not None for f in found):
            for key, nd, token in found:  # type: ignore[misc]  # all() above: no None
                dep_keys.append(key)
                dep_nd.extend(nd)
                dep_tokens.append(token)
            continue
        # not fed by Scout jobs (a plain Prefect task, or a literal): an input, hashed by value
        where = f"input {pname!r} of scout task {workflow}#{task_name}"
        stype = (spec.types or {}).get(pname) or scout_type_of(hint)
        default = None if param.default is inspect.Parameter.empty else param.default
        declared.append(Input(pname, stype, _identity_value(default, where), jobname=_is_jobname(hint)))
        value = inputs.get(pname, default)
        if value is not None:
            own[pname] = _identity_value(value, where)
        by_value[pname] = value
    provided = {k: _provided_value(v) for k, v in (flow_parameters or {}).items() if v is not None and k not in ignore}
    for inp in declared:
        provided.pop(inp.name, None)
    provided.update(own)
    job_id = getattr(task, "_scout_job_name", None) or current_job_name()
    try:
        ident = job_identity(
            workflow,
            task_name,
            declared,
            provided,
            dep_keys,
            id=job_id,
            extension=spec.extension,
            type=spec.type,
            dependency_non_default_inputs=dep_nd,
            str_paths=spec.ruby_strings,
        )
    except ScoutPersistError:
        raise
    except Exception as exc:  # a bug or an odd value: still fail loudly, with the context
        raise ScoutKeyError(
            f"Scout job identity of {workflow}#{task_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        sig = signature.compute(
            by_value, dep_tokens, signature.code_identity(fn), spec.version, where=f"scout task {workflow}#{task_name}"
        )
    except UnsupportedValueError as exc:
        raise ScoutKeyError(str(exc)) from None
    cache_key = below_jobs(ident.key)
    flow_run_id = str(flow_ctx.flow_run.id) if flow_ctx and flow_ctx.flow_run else None
    return plans.Plan(
        cache_key=cache_key,
        job_key=ident.key,
        workflow=workflow,
        task=task_name,
        declared_type=spec.type,
        identity=ident,
        dependencies=tuple(dep_keys),
        signature=sig,
        url=spec.url,
        task_run_id=str(task_ctx.task_run.id),
        flow_run_id=flow_run_id,
        fixed=tuple(getattr(task, "_scout_fixed", ()) or ()),
        expiration=getattr(task, "cache_expiration", None),
        format=spec.format,
    )


__all__ = [
    "ScoutCachePolicy",
    "ScoutKeyError",
    "ScoutSpec",
    "current_job_name",
    "job_name",
    "plan_run",
    "scout_type_of",
]
