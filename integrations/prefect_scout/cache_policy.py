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
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import ObjectNotFound

from scout_persist import audit, signature
from scout_persist.callplan import (
    ScoutKeyError,
    TaskDecl,
    Upstream,
    plan_call,
    scout_type_of,
    upstream_at,
    upstream_token,
)
from scout_persist.errors import InvalidInputError
from scout_persist.layout import cache_key_of, job_key_of

from . import plans, settings

logger = logging.getLogger("prefect_scout")

_current_job_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("scout_job_name", default=None)


# What ``scout_task`` declares about a task (the core's declaration; the name the plug-in has always exported).
ScoutSpec = TaskDecl


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


def _upstream(task_ctx: TaskRunContext) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, sources in (task_ctx.task_run.task_inputs or {}).items():
        ids = [str(s.id) for s in sources if s.input_type == "task_run"]  # a TaskRunResult
        if ids:
            found[name] = ids
    return found


def _dependency(run_id: str, url: str | None, plain: Any = ()) -> Upstream | None:
    """The upstream job of task run ``run_id`` (None when that run is not a Scout job: a plain Prefect task, whose
    value is then an ordinary input)."""
    if run_id in plain:
        return None
    found = plans.for_run(run_id)
    if isinstance(found, plans.TaskRunAttempt):
        plan = found.plan
        inherited = tuple(n for n in plan.identity.non_default_inputs if n not in plan.fixed)
        store = settings.store_for(url)
        token = found.token or upstream_token(store, plan.job_key)
        return Upstream(plan.job_key, token, inherited)
    if isinstance(found, BaseException):
        raise ScoutKeyError(f"upstream task run {run_id} has no Scout job key ({found})") from found
    key = _key_from_api(run_id)
    if key is None:
        return None
    return upstream_at(settings.store_for(url), key)


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
    return job_key_of(str(storage_key))


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
    runs_by_arg = _upstream(task_ctx)
    runs_by_arg.update(getattr(task, "_scout_upstream", None) or {})  # ordered, and survives process pools
    plain = set(getattr(task, "_scout_plain", ()) or ())
    upstream = {name: [(run, _dependency(run, spec.url, plain)) for run in ids] for name, ids in runs_by_arg.items()}
    planned = plan_call(
        fn,
        spec,
        workflow,
        inputs,
        upstream=upstream,
        templates=getattr(task, "_scout_templates", None) or {},
        provided=flow_parameters,
        job_id=getattr(task, "_scout_job_name", None) or current_job_name(),
    )
    signature.warn_not_followed(f"{workflow}#{planned.task}", planned.code)
    ident = planned.identity
    sig = dict(planned.signature)
    dep_keys = list(planned.dependencies)
    task_name = planned.task
    cache_key = cache_key_of(ident.key)
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
        audit=audit.selected(audit.fraction(spec.audit), ident.key, flow_run_id or ""),
        audit_replace=audit.replaces(spec.audit_replace),
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
