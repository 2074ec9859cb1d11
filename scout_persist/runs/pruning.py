"""``runs prune``: the runs to remove (the newest N of each workflow kept, or those older than D days) and the jobs
only they reach; never a live run, a job a kept run or a registry version reaches, or a job another run wrote."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, KeyNotFound, ScoutPersistError
from ..info import read_info
from ..job import Job
from ..registry import Registry
from ..store import Store
from .content import writer_run_of
from .listing import Run, list_runs
from .record import RUNNING


@dataclass
class PrunePlan:
    """What ``runs prune`` removes and keeps, and why."""

    remove_runs: list[Run]
    keep_runs: list[Run]
    remove_jobs: list[str]  # job keys written by removed runs and reachable from nothing kept
    kept_jobs: dict[str, str]  # job key of a removed run -> why it stays


def _reachable(store: Store, keys: Iterable[str], limit: int = 1_000_000) -> set[str]:
    """``keys`` and every job of ``store`` they depend on, through their ``.info`` dependencies."""
    seen: set[str] = set()
    todo = [k for k in keys if isinstance(k, str)]
    while todo and len(seen) < limit:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        try:
            deps = Job.at(store, key).dependencies
        except (ScoutPersistError, OSError, ValueError):
            continue
        for dep in deps:
            if getattr(dep, "store", None) is not None and dep.store.url == store.url:
                todo.append(dep.key)
    return seen


def registry_jobs(store: Store) -> set[str]:
    """Job keys published in the artifact registry of ``store`` (every live version, aliased or not)."""
    registry = Registry(store)
    if not store.isdir(registry.prefix):
        return set()
    keys = set()
    for name in registry.artifacts():
        for version in registry.versions(name):
            try:
                job = (registry.resolve(f"{name}:{version}").metadata or {}).get("scout_job") or {}
            except (KeyNotFound, ScoutPersistError):
                continue
            if isinstance(job.get("key"), str):
                keys.add(job["key"])
    return keys


def plan_prune(
    store: Store,
    *,
    keep_last: int | None = None,
    older_than_days: float | None = None,
    workflow: str | None = None,
    now: float | None = None,
    progress: Any = None,
) -> PrunePlan:
    """Choose the runs to remove (``keep_last`` newest of each workflow kept, or those started more than
    ``older_than_days`` ago) and the jobs only they reach.

    Never removed: a live run; a job reachable from a kept run (its jobs, the jobs it reused, their dependencies);
    a job reachable from a registry version; a job whose ``.info`` does not name a removed run as its writer (jobs
    of runs not recorded, legacy Ruby jobs, jobs rewritten by a later run).
    """
    if (keep_last is None) == (older_than_days is None):
        raise InvalidInputError("runs prune needs exactly one of --keep-last N or --older-than DAYS")
    if keep_last is not None and keep_last < 0:
        raise InvalidInputError(f"--keep-last {keep_last}: keep a number of runs >= 0")
    if older_than_days is not None and not (older_than_days >= 0):
        raise InvalidInputError(f"--older-than {older_than_days}: give a number of days >= 0")
    now = time.time() if now is None else now
    runs = list_runs(store, workflow, progress=progress, with_parts=lambda r: True)
    remove: list[Run] = []
    keep: list[Run] = []
    by_workflow: dict[str, list[Run]] = {}
    for run in runs:  # newest first
        by_workflow.setdefault(run.workflow, []).append(run)
    for group in by_workflow.values():
        for i, run in enumerate(group):
            live = run.status == RUNNING
            if keep_last is not None:
                old = i >= keep_last
            else:
                assert older_than_days is not None  # one of the two (checked above)
                started = run.started
                old = started is not None and now - started > older_than_days * 86400
            (remove if old and not live else keep).append(run)
    if workflow:  # runs of other workflows are kept: they may reach the same jobs
        keep += [r for r in list_runs(store, None, with_parts=lambda r: True) if r.workflow != workflow]
    removed_ids = {r.run_id for r in remove}
    kept_roots: set[str] = set()
    for run in keep:
        kept_roots.update(str(j.get("key")) for j in run.jobs())
        kept_roots.update(str(u.get("job")) for u in run.reused() if isinstance(u, dict))
    reach_kept = _reachable(store, kept_roots)
    reach_registry = _reachable(store, registry_jobs(store))
    candidates: dict[str, Run] = {}
    for run in remove:
        for job in run.jobs():
            key = job.get("key")
            if isinstance(key, str) and key.startswith("var/jobs/") and job.get("store") in (None, store.url):
                candidates.setdefault(key, run)
    remove_jobs: list[str] = []
    kept_jobs: dict[str, str] = {}
    for key, run in sorted(candidates.items()):
        if key in reach_kept:
            kept_jobs[key] = "reachable from a kept run"
            continue
        if key in reach_registry:
            kept_jobs[key] = "reachable from a registry version"
            continue
        writer = _writer_run(store, key, run)
        if writer is None:
            continue  # gone already
        if writer not in removed_ids:
            kept_jobs[key] = (
                "not written by a recorded run (its .info names none)"
                if writer == "?"
                else f"written by run {writer}, which is kept"
            )
            continue
        remove_jobs.append(key)
    return PrunePlan(remove, keep, remove_jobs, kept_jobs)


def _writer_run(store: Store, key: str, listed_by: Run) -> str | None:
    """The run that wrote job ``key``: the flow run id its ``.info`` records at ``done``; for a job that never got
    there (error, aborted), ``listed_by`` when the ``.info`` names that run's process.  ``"?"``: no recorded run
    wrote it (a legacy Ruby job, a job of a run without record); None: the job is gone."""
    try:
        info = read_info(store, key + ".info")
    except ScoutPersistError:
        return "?"
    if not info:
        return None
    run = writer_run_of(info)
    if run:
        return run
    if (
        info.get("status") in ("error", "aborted", "start", "setup")
        and str(info.get("pid")) == str(listed_by.record.get("pid"))
        and info.get("pid_hostname") == listed_by.record.get("pid_hostname")
    ):
        return listed_by.run_id
    return "?"
