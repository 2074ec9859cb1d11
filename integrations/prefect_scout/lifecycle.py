"""The Scout ``.info`` lifecycle of a scout task run: setup -> start (wrapper), done (storage), error (wrapper)."""

from __future__ import annotations

from typing import Any

from scout_persist.info import InfoFile
from scout_persist.store import Store

from . import runs, settings


def absolute(store: Store, key: str) -> str:
    """How ``.info`` names another job: its absolute path (local roots) or its URL (object stores)."""
    return store.path(key) if store.is_local else f"{store.url}/{key}"


def _info_value(store: Store, value: Any) -> Any:
    """Values as Ruby writes them in ``.info``: a Step as its job's absolute path, containers element-wise."""
    step = getattr(value, "scout_step_path", None)
    if step is not None:
        return absolute(store, step)
    if isinstance(value, list):
        return [_info_value(store, v) for v in value]
    if isinstance(value, dict):
        return {k: _info_value(store, v) for k, v in value.items()}
    return value


def start(plan: runs.RunPlan) -> InfoFile:
    """Reset the job's ``.info`` to ``setup`` (Ruby's keys and order) then ``start``, one write; drop a stale result."""
    store = settings.store_for(plan.url)
    absent = plan.job_absent
    runs.forget_reads(plan)
    if not absent:  # our writers put .info before the result, so no .info (read under the lock) means no result
        store.delete(plan.job_key)  # a stale or partial result of an earlier run must not survive this one
    ident = plan.identity
    info = InfoFile(store, plan.job_key)
    info.setup(
        task_name=plan.task,
        workflow=plan.workflow,
        type=plan.scout_type,
        inputs=_info_value(store, list(ident.inputs)),
        input_names=ident.input_names,
        provided_inputs=_info_value(store, dict(ident.provided_inputs)),
        non_default_inputs=ident.non_default_inputs,
        dependencies=[absolute(store, k) for k in plan.dependencies],
        save=False,
    )
    info.start()  # one write: setup's keys with status start (only the final status matters to readers)
    plan.info = info
    return info


def done(plan: runs.RunPlan, prefect_record: dict[str, Any]) -> None:
    """The payload is stored: record Prefect's metadata and the signature, then ``status=done`` (commit point)."""
    info = plan.info if plan.info is not None else start(plan)
    extra: dict[str, Any] = dict(plan.payload or {})
    extra["prefect"] = prefect_record
    info.done(**extra)
    runs.settle(plan)


def fail(plan: runs.RunPlan, exc: BaseException) -> None:
    """The task raised: remove any partial result; ``.info`` gets ``error`` with class, message and backtrace."""
    store = settings.store_for(plan.url)
    info = plan.info if plan.info is not None else start(plan)
    store.delete(plan.job_key)
    info.error(exc)
    runs.settle(plan)
