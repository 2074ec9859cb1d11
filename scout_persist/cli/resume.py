"""``scout-persist resume RUN [--force] [--from TASK]`` and ``resume --incomplete [--workflow W]``.

Runs a recorded flow run again from its entrypoint with its parameters, in this process, with Prefect (a fresh
``PREFECT_HOME`` is enough: the store holds everything).  Done jobs are reused; failed and not-started ones run.

Refused, naming the reason and the fix: a run that is still live (its lease is fresh), a run whose parameters were
not JSON, a flow whose code hash changed since the run (unless ``--force``), and a run another ``resume`` is
resuming now.  ``--from TASK`` first removes that task's jobs of the run and every job of the run downstream of
them (Scout's clean of the dependents), so they are recomputed.  ``--incomplete`` resumes every run whose process
died (status ``running``, lease lapsed) and that no later run resumed; each run is claimed with a lock (an
exclusive create), so restorers racing each other resume it once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, KeyNotFound
from ..locks import Lock, describe_holder
from ..runs import CRASHED, RESUME_LOCK, RESUMED_BY, RUNNING, judge, lease_left, list_runs, load_run, markers
from . import SUMMARIES
from .clean import remove
from .output import emit, warn
from .scan import job_entry
from .target import resolve_root

if TYPE_CHECKING:
    from types import ModuleType

    from ..runs import Run
    from ..store import Store

CLAIM_LEASE = 30.0
WATCH_POLL = 1.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("resume", help=SUMMARIES["resume"])
    p.add_argument("run_ref", nargs="?", metavar="RUN", help="a run id (or a unique start of one)")
    p.add_argument(
        "--incomplete",
        action="store_true",
        help="resume every run whose process died (status running, lease lapsed) not resumed yet",
    )
    p.add_argument("-w", "--workflow", help="the run's workflow; with --incomplete, only that workflow's runs")
    p.add_argument("--force", action="store_true", help="resume although the flow's code changed since the run")
    p.add_argument(
        "--from",
        dest="from_task",
        metavar="TASK",
        help="recompute TASK's jobs of the run and every job of the run downstream of them",
    )
    p.add_argument("--root", default=None, help="store root (path or fsspec URL); default $SCOUT_PERSIST_URL")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    if args.incomplete and args.run_ref:
        raise InvalidInputError(f"resume takes a RUN or --incomplete, not both (got {args.run_ref!r} and --incomplete)")
    if args.incomplete and args.from_task:
        raise InvalidInputError("--from TASK restarts one run from a task; give that RUN instead of --incomplete")
    store = resolve_root(args.root)
    if args.incomplete:
        return _incomplete(args, store)
    if not args.run_ref:
        raise InvalidInputError(
            "resume needs a RUN id (scout-persist runs lists them), or --incomplete to resume every crashed run"
        )
    target = load_run(store, args.run_ref, args.workflow)
    outcome = _resume(args, store, target)
    return 0 if outcome else 1


# ------------------------------------------------------------------------------------------------ checks
def _live_reason(store: Store, target: Run) -> str | None:
    """Why ``target`` counts as live now, else None (watches the record when the store does not tell its age)."""

    if target.status != RUNNING:
        return None
    if target.age is not None or "cannot be judged" not in target.reason:
        left = lease_left(target.record, target.age)
        extra = f" about {left:.0f}s" if left is not None else ""
        return (
            f"run {target.run_id} of flow {target.flow} is still running ({target.reason}); wait for it to end "
            f"(scout-persist runs show {target.run_id}), or, if its process is gone, for its lease to lapse"
            f"{extra}, then resume it"
        )
    # The store does not tell the age of an entry: watch it with this process's clock for a lease.
    lease = float((target.record.get("lease") or {}).get("seconds") or 60.0)
    warn(
        f"resume: {target.store.url} does not tell the age of run records; watching run {target.run_id} for up to "
        f"{lease:g}s to see whether it is renewed"
    )
    first = time.monotonic()
    seen = target.store.get_versioned(target.key).version
    while True:
        time.sleep(WATCH_POLL)
        try:
            now = target.store.get_versioned(target.key).version
        except KeyNotFound:
            return None
        if now != seen:
            return (
                f"run {target.run_id} of flow {target.flow} is still running: its record was renewed while "
                "watched; wait for it to end, then resume it"
            )
        status, _ = judge(target.record, None, time.monotonic() - first)
        if status != RUNNING:
            return None


@contextlib.contextmanager
def _claimed(store: Store, target: Run, skip: bool) -> Iterator[bool]:
    """Hold the run's resume lock (an exclusive create): True when this process holds it."""

    lock = Lock(
        store,
        f"{target.dir}/{RESUME_LOCK}",
        lease=CLAIM_LEASE,
        refresh=CLAIM_LEASE / 10,
        owner=f"scout-persist resume {target.run_id}",
    )
    if not lock.acquire(timeout=0):
        message = (
            f"run {target.run_id} is being resumed by {describe_holder(lock.last_holder)}; wait for that "
            "resume to end (scout-persist runs lists the new run)"
        )
        if not skip:
            raise InvalidInputError(message)
        warn(f"skipped: {message}")
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _plugin() -> ModuleType:

    try:  # by module name, so a plug-in that cannot import is reported even if its package was imported before
        plugin = importlib.import_module("prefect_scout.resuming")
    except ImportError as exc:
        raise InvalidInputError(
            f"resume runs the flow with Prefect and the prefect_scout plug-in, which do not "
            f"import here ({exc}); pip install 'scout-persist[prefect]'"
        ) from exc
    return plugin


def _resume(args: argparse.Namespace, store: Store, target: Run, incomplete: bool = False) -> bool | None:
    """Resume ``target``; True when the new run completed, False when it failed, None when skipped."""

    live = _live_reason(store, target)
    if live:
        raise InvalidInputError(live)
    if not target.record.get("resumable"):
        raise InvalidInputError(f"run {target.run_id} cannot be resumed: {target.record.get('not_resumable')}")
    with _claimed(store, target, skip=incomplete) as mine:
        if not mine:
            return None
        if incomplete and markers(store, target.workflow, target.run_id, RESUMED_BY):
            warn(f"skipped: run {target.run_id} was resumed meanwhile")
            return None
        plugin = _plugin()
        flow = plugin.load_flow(target)
        change = plugin.code_change(target, flow)
        if change and not args.force:
            raise InvalidInputError(
                f"run {target.run_id} of flow {target.flow} was made by other code: {change}; resuming would mix "
                "results of two versions of the flow. Resume with --force to run the current code (jobs whose "
                "task code changed are recomputed, the others reused), or restore the code of that run"
            )
        if change:
            warn(f"resume --force: {change}; running the current code")
        if args.from_task:
            _clean_from(store, target, args.from_task)
        emit(f"resuming run {target.run_id} of flow {target.flow} ({target.record.get('entrypoint')})")
        outcome = plugin.run_flow(target, flow, args.from_task, root=store.url)  # the store the run was found in
    if outcome.run_id is None:
        warn(
            f"resume: the flow of run {target.run_id} ended {outcome.state_name} before it ran a scout task, so no "
            "run was recorded" + (f": {outcome.message}" if outcome.message else "")
        )
    else:
        emit(
            f"run {outcome.run_id} resumed run {target.run_id}: {outcome.state_name}"
            + (f" ({outcome.message})" if outcome.message and not outcome.completed else "")
        )
    completed: bool | None = outcome.completed
    return completed


def _clean_from(store: Store, target: Run, task: str) -> None:
    """Remove the jobs of ``task`` in the run and every job of the run that depends on them."""

    jobs = [j for j in target.jobs() if isinstance(j.get("key"), str) and not j.get("store")]
    wf, _, plain = task.rpartition("#")
    start = {j["key"] for j in jobs if j.get("task") == plain and (not wf or j.get("workflow") == wf)}
    if not start:
        tasks = sorted({str(j.get("task")) for j in jobs})
        raise InvalidInputError(
            f"--from {task!r}: run {target.run_id} has no job of that task; its tasks: {', '.join(tasks) or 'none'}"
        )
    victims = set(start)
    grew = True
    while grew:
        grew = False
        for j in jobs:
            if j["key"] not in victims and set(j.get("dependencies") or []) & victims:
                victims.add(j["key"])
                grew = True
    refused = []
    for key in sorted(victims):
        entry = job_entry(store, key)
        if entry is None:
            continue
        if remove(entry):
            emit(f"removed {key} (recomputed by the resume)")
        else:
            refused.append(key)
    if refused:
        raise InvalidInputError(
            f"--from {task!r}: {', '.join(refused)} could not be removed (locked or running); "
            "wait for the run using them to end, then resume again"
        )


def _incomplete(args: argparse.Namespace, store: Store) -> int:

    candidates = [r for r in list_runs(store, args.workflow) if r.status == CRASHED]
    candidates = [r for r in candidates if not markers(store, r.workflow, r.run_id, RESUMED_BY)]
    if not candidates:
        warn(
            f"resume --incomplete: no crashed run to resume in {store.where('var/runs')}"
            + (f" for workflow {args.workflow}" if args.workflow else "")
        )
        return 0
    failed = 0
    for target in reversed(candidates):  # oldest first
        emit(f"run {target.run_id} of flow {target.flow} crashed: {target.reason}")
        try:
            result = _resume(args, store, target, incomplete=True)
        except InvalidInputError as exc:
            warn(f"not resumed: {exc}")
            failed += 1
            continue
        if result is False:
            failed += 1
    return 1 if failed else 0
