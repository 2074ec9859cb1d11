"""Run a recorded flow run again: load its flow from its entrypoint, check its code, call it with its parameters.

Used by ``scout-persist resume``; needs nothing but the store (a fresh ``PREFECT_HOME`` starts its own ephemeral
API).  Done jobs are reused by the scout hit check; failed and not-started ones run.  The new run records
``resumed_from`` and marks the old one ``resumed_by``.

The flow runs against the store the run was found in (given explicitly, whatever ``$SCOUT_PERSIST_URL`` says), and
with the flow's own module standing in for ``__main__`` when stored values are unpickled: a run started as
``python pipeline.py`` pickled its script's classes as ``__main__.RidgeModel``, which the resumed run finds in the
module it loaded from ``pipeline.py``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.task_runners import ThreadPoolTaskRunner

from scout_persist import runs as core, unpickling
from scout_persist.errors import InvalidInputError

from . import run_recorder, settings


@dataclass
class Outcome:
    """How a resume ended: the new run's id (None when its flow ran no scout task), its final Prefect state."""

    run_id: str | None
    state_name: str
    completed: bool
    message: str


def load_flow(run: core.Run) -> Any:
    """The flow of ``run`` from its recorded entrypoint (``module:function``, else its source file)."""

    record = run.record
    entrypoint, source = record.get("entrypoint"), record.get("source_file")
    if not entrypoint:
        raise InvalidInputError(
            f"run {run.run_id} cannot be resumed: {record.get('not_resumable') or 'it has no entrypoint'}"
        )
    qualname = entrypoint.rsplit(":", 1)[-1]
    loaded = _already_loaded(source, qualname)
    if loaded is not None:
        return loaded
    tries = [entrypoint]
    if source and not entrypoint.startswith(source + ":"):
        tries.append(f"{source}:{qualname}")
    problems = []
    for candidate in tries:
        path = candidate.rsplit(":", 1)[0]
        if path.endswith(".py") and not os.path.exists(path):
            problems.append(f"{candidate}: the file does not exist")
            continue
        try:
            flow: Flow[..., Any] = load_flow_from_entrypoint(candidate, use_placeholder_flow=False)
        except Exception as exc:  # noqa: BLE001 - every way of failing to load is reported together
            problems.append(f"{candidate}: {type(exc).__name__}: {exc}")
            continue
        if isinstance(flow, Flow):
            return flow
        problems.append(f"{candidate}: not a Prefect flow")
    raise InvalidInputError(
        f"run {run.run_id} cannot be resumed: its flow {run.flow!r} does not load from its entrypoint ("
        + "; ".join(problems)
        + f"); run resume from the folder the flow ran in ({record.get('cwd')}), with the flow's code and its "
        "packages installed"
    )


def _already_loaded(source: str | None, qualname: str) -> Any:
    """The flow when this process already runs the module of its source file (``resume`` called from the script
    that defines it): loading the file again would make a second copy of its scout tasks."""

    if not source:
        return None
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or os.path.abspath(path) != source:
            continue
        obj: Any = module
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, Flow):
            return obj
    return None


def code_change(run: core.Run, flow: Any) -> str | None:
    """What changed in the flow's code since ``run`` (None: the same code hash)."""
    code = got if isinstance(got := run.record.get("code"), dict) else {}
    flow_code, tasks, hashed = run_recorder.code_of(flow)
    if hashed == code.get("hash"):
        return None
    parts = []
    if flow_code != code.get("flow"):
        parts.append(f"the flow function {run.flow!r}")
    before = got if isinstance(got := code.get("tasks"), dict) else {}
    changed = sorted(n for n in set(before) | set(tasks) if before.get(n) != tasks.get(n))
    if changed:
        parts.append("the scout task" + ("s " if len(changed) > 1 else " ") + ", ".join(changed))
    what = " and ".join(parts) or "its code"
    return f"{what} changed (code hash {str(code.get('hash'))[:12]} recorded, {hashed[:12]} now)"


def _check_workers_find(root: str, flow: Any, run: core.Run) -> None:
    """Refuse a root other than ``$SCOUT_PERSIST_URL`` when the flow's tasks run in other processes: they find the
    store through their own environment."""
    runner = getattr(flow, "task_runner", None)
    if runner is None or isinstance(runner, ThreadPoolTaskRunner) or settings.root_url(None) == root:
        return
    raise InvalidInputError(
        f"run {run.run_id} is in store {root!r}, but flow {run.flow!r} runs its tasks with "
        f"{type(runner).__name__}, whose worker processes find the store through $SCOUT_PERSIST_URL "
        f"({settings.root_url(None)!r} here); set SCOUT_PERSIST_URL={root} and resume again"
    )


@contextlib.contextmanager
def _in_folder(folder: str | None) -> Iterator[None]:
    before = os.getcwd()
    moved = False
    if folder and os.path.isdir(folder) and folder != before:
        os.chdir(folder)
        moved = True
    added = folder if folder and folder not in sys.path else None
    if added:
        sys.path.insert(0, added)
    try:
        yield
    finally:
        if moved:
            os.chdir(before)
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(added)


def run_flow(run: core.Run, flow: Any, from_task: str | None = None, root: str | None = None) -> Outcome:
    """Call ``flow`` with the parameters of ``run`` (in the folder it ran in), as a resume of it, its scout tasks
    storing in ``root`` (None: ``$SCOUT_PERSIST_URL``) unless they name their own ``url=``."""
    params = dict(run.record.get("parameters") or {})
    if root is not None:
        _check_workers_find(root, flow, run)
    module = sys.modules.get(getattr(inspect.unwrap(flow.fn), "__module__", "") or "")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_in_folder(run.record.get("cwd")))
        if root is not None:
            stack.enter_context(settings.using_root(root))
        stack.enter_context(unpickling.main_module(module))
        marker = stack.enter_context(run_recorder.resuming(run.workflow, run.run_id, from_task))
        state = flow(**params, return_state=True)
    return Outcome(
        marker.new_run_id,
        getattr(state, "name", str(state)),
        bool(state.is_completed()),
        str(getattr(state, "message", "") or ""),
    )


__all__ = ["Outcome", "code_change", "load_flow", "run_flow"]
