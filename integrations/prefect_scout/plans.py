"""The one table of scout task runs in this process: ``{task run id: its attempt}``, and each run's immutable plan.

Prefect's interfaces pass a task run, a key or bytes, never our objects: the cache policy files a
:class:`TaskRunAttempt` (a core :class:`~scout_persist.attempt.Attempt` with the run's :class:`Plan`) under the task
run id, and each door (lock manager, storages, task wrapper, run records) looks it up here and calls one method of
it.  Reads outside a planned run (a flow collecting a worker's result) use short-lived attempts held by job, so that
Prefect's metadata read and result read see one attempt.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from prefect.context import TaskRunContext

from scout_persist.attempt import Attempt, Expiry, JobSetup
from scout_persist.audit import Finding
from scout_persist.callplan import JobIdentity
from scout_persist.errors import ScoutPersistError
from scout_persist.layout import job_key_of
from scout_persist.store import Store, check_key

from . import settings

MAX_ENTRIES = 50_000  # a long-lived worker must not grow without bound
MAX_HELD = 64  # attempts of reads outside planned runs waiting for their result read
HELD_TTL = 30.0  # seconds such an attempt stays valid for the result read that follows its metadata read


class NotAScoutKey(ScoutPersistError, ValueError):
    """A storage key that is not a Scout job path."""


def job_key_from_prefect(key: str) -> str:
    """The job key (the store key of the result file) named by the key Prefect passes (a cache, storage or lock key:
    the cache key ``Baking/whisk_eggs/Default``).

    Anything that is not ``<Workflow>/<task>/<name>`` is refused: Prefect also uses random keys (the exception of a
    failed run), and those have no place in ``var/jobs`` (the ``.info`` keeps the error).
    """
    found = job_key_of(check_key(str(key)))
    if found is None:
        raise NotAScoutKey(
            f"{key!r} is not a Scout job key (<Workflow>/<task>/<name>); the scout storage keeps only task results "
            "at their job path (a failed run's exception is in the job's .info)"
        )
    return found


@dataclass(frozen=True)
class Plan:
    """One planned scout task run: where its job lives, what names it and what must match for a stored job to serve."""

    cache_key: str  # <Workflow>/<task>/<name>[.ext], Prefect's cache and storage key
    job_key: str  # var/jobs/<cache_key>, the store key of the result file
    workflow: str
    task: str
    declared_type: str | None  # the task's type= (None: any Python value, pickled)
    identity: JobIdentity
    dependencies: tuple[str, ...]  # job keys of the direct dependencies, in order
    signature: dict[str, Any]
    url: str | None = None  # store root (None: $SCOUT_PERSIST_URL in this process)
    task_run_id: str | None = None
    flow_run_id: str | None = None
    fixed: tuple[str, ...] = ()  # inputs fixed by the caller (prefect_scout.fixed): not inherited by dependents
    expiration: timedelta | None = None  # the task's cache_expiration
    format: str | None = None  # the task's format= (None: chosen by the value's type)
    reuse: bool = False  # a run of reuse(): it serves another run's job, it is not one of this run's jobs
    audit: bool = False  # a hit of this run is computed again and compared (scout_persist.audit)
    audit_replace: bool = False  # ... and a mismatch replaces the stored job


class TaskRunAttempt(Attempt):
    """The attempt of one planned task run: the core attempt, its plan, and what its run record noted."""

    def __init__(self, plan: Plan) -> None:
        ident = plan.identity
        super().__init__(
            settings.store_for(plan.url),
            plan.job_key,
            plan.signature,
            plan.expiration if plan.expiration is not None else Expiry.RECORDED,
            setup=JobSetup(
                workflow=plan.workflow,
                task=plan.task,
                type=plan.declared_type,
                inputs=ident.inputs,
                input_names=ident.input_names,
                provided_inputs=ident.provided_inputs,
                non_default_inputs=ident.non_default_inputs,
                dependencies=plan.dependencies,
            ),
        )
        self.plan = plan
        self.started: float | None = None  # when its body started (epoch seconds)
        self.noted: set[tuple[str, bool]] = set()  # (status, reused) already in the run record
        self.audited: Finding | None = None  # the audit of this run's hit, once made

    def settle(self) -> None:
        """The run is served or computed: keep what dependents need (key, names, token), drop input values."""
        self.plan = replace(self.plan, identity=replace(self.plan.identity, inputs=[], provided_inputs={}))
        self.setup = None


_SUBMITTED = object()  # a task run a scout task of this process submitted, not yet planned
_guard = threading.Lock()
_by_run: OrderedDict[str, Any] = OrderedDict()  # task run id -> TaskRunAttempt | BaseException | _SUBMITTED
_unplanned: OrderedDict[tuple[str, str], tuple[Attempt, float]] = OrderedDict()


def remember(run_id: Any, entry: TaskRunAttempt | BaseException) -> None:
    """File the attempt of task run ``run_id`` (or why it has none: raised by the task wrapper)."""
    _put(str(run_id), entry)


def mark_scout(run_id: Any) -> None:
    """Remember that task run ``run_id`` was submitted by a scout task of this process."""
    with _guard:
        if str(run_id) in _by_run:
            return
    _put(str(run_id), _SUBMITTED)


def _put(run_id: str, entry: Any) -> None:
    with _guard:
        _by_run[run_id] = entry
        _by_run.move_to_end(run_id)
        while len(_by_run) > MAX_ENTRIES:
            _by_run.popitem(last=False)


def for_run(run_id: Any) -> TaskRunAttempt | BaseException | None:
    with _guard:
        found = _by_run.get(str(run_id))
    return None if found is _SUBMITTED else found


def is_scout(run_id: Any) -> bool:
    """Whether this process knows ``run_id`` as a scout task run (submitted or planned here)."""
    with _guard:
        return isinstance(_by_run.get(str(run_id)), TaskRunAttempt) or _by_run.get(str(run_id)) is _SUBMITTED


def current(key: str | None = None) -> TaskRunAttempt | None:
    """The attempt of the task run in progress in this context (None outside one, or when it is for another key)."""
    ctx = TaskRunContext.get()
    found = for_run(ctx.task_run.id) if ctx and ctx.task_run else None
    if isinstance(found, TaskRunAttempt) and (key is None or found.plan.cache_key == key):
        return found
    return None


# ------------------------------------------------------------------------------ reads outside a planned run
def unplanned(store: Store, key: str) -> Attempt:
    """A new attempt to read job ``key`` outside a planned run (no signature, no expiry: the value is the job's),
    held for the result read that follows the metadata read."""
    attempt = Attempt(store, key, expiration=Expiry.IGNORED)
    with _guard:
        _unplanned[(store.url, key)] = (attempt, time.monotonic())
        _unplanned.move_to_end((store.url, key))
        while len(_unplanned) > MAX_HELD:
            _unplanned.popitem(last=False)
    return attempt


def take_unplanned(url: str, key: str) -> Attempt | None:
    """The attempt a recent metadata read outside a planned run made for job ``key`` (taken: used once)."""
    with _guard:
        found = _unplanned.pop((url, key), None)
    if found is None or time.monotonic() - found[1] >= HELD_TTL:
        return None
    return found[0]


def drop_unplanned(key: str) -> None:
    """Job ``key`` is being rewritten: what reads outside a run judged of it no longer holds."""
    with _guard:
        for held in [k for k in _unplanned if k[1] == key]:
            del _unplanned[held]


def forget_all() -> None:
    """Drop every entry (tests)."""
    with _guard:
        _by_run.clear()
        _unplanned.clear()


__all__ = [
    "NotAScoutKey",
    "Plan",
    "TaskRunAttempt",
    "current",
    "drop_unplanned",
    "for_run",
    "forget_all",
    "is_scout",
    "job_key_from_prefect",
    "mark_scout",
    "remember",
    "take_unplanned",
    "unplanned",
]
