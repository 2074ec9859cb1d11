"""The plan of each scout task run in this process, and the verified reads a cache hit hands from Prefect's
metadata read to its result read to the serializer.

Prefect's interfaces pass a task run, a key or bytes, never our objects: the cache policy files a :class:`RunPlan`
under the task run id, and the task wrapper, storages, serializer and lock manager look it up here (and only here).
A hit is verified once (``.info`` read, result bytes checked against its checksum and decoded, see
:mod:`prefect_scout.hits`); the verified value is held under the job until Prefect's result read and the
serializer take it, so the bytes decoded are exactly the bytes checked, in the same attempt.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from scout_persist.workflow import JobIdentity

if TYPE_CHECKING:
    from scout_persist.job import JobWriter
    from scout_persist.lease import JobLease

MAX_ENTRIES = 50_000  # a long-lived worker must not grow without bound
MAX_HELD = 64  # verified reads outside planned runs waiting for their result read
HELD_TTL = 30.0  # seconds a verified read without a plan stays valid for the result read that follows it

_guard = threading.Lock()
_by_run: OrderedDict[str, RunPlan | BaseException] = OrderedDict()
_scout_runs: OrderedDict[str, None] = OrderedDict()


@dataclass
class RunPlan:
    """One planned scout task run: where its job lives and what must match for a stored job to count."""

    cache_key: str  # <Workflow>/<task>/<name>[.ext], Prefect's cache and storage key
    job_key: str  # var/jobs/<cache_key>, the store key of the result file
    workflow: str
    task: str
    declared_type: str | None  # the task's type= (None: any Python value, pickled)
    identity: JobIdentity
    dependencies: list[str]  # job keys of the direct dependencies, in order
    signature: dict[str, Any]
    url: str | None = None  # store root (None: $SCOUT_PERSIST_URL in this process)
    task_run_id: str | None = None
    flow_run_id: str | None = None
    fixed: tuple[str, ...] = ()  # inputs fixed by the caller (prefect_scout.fixed): not inherited by dependents
    expiration: timedelta | None = None  # the task's cache_expiration
    changed: list[str] = field(default_factory=list)  # why the stored job did not count (signature parts, expired)
    # The .info bytes read for this run's hit check (under the lock when it missed): the previous job a rewrite
    # keeps until it commits.  job_absent: that read found no job.
    info_raw: bytes | None = None
    job_absent: bool = False
    lock_pass: Any = None  # (lock manager, holder) when the lock was granted without a lock file (committed job)
    # How dependents see this job once it is committed or verified: "<job key>=<checksum>".
    token: str | None = None
    stored: bool = False  # this run committed its job (Prefect's own writes that follow store nothing)
    format: str | None = None  # the task's format= (None: chosen by the value's type)
    lease: JobLease | None = None  # the JobLease this run holds (None: a read, or not yet acquired)
    verified: Any = None  # the hit check's Verified read of this attempt, until the result read takes it
    handed: Any = None  # what the result read handed on, until the serializer takes its value
    writer: JobWriter | None = (
        None  # the run's JobWriter from its 'start' (which, where .info is the lease, acquired it) to its
    )
    # end; prefect_scout.job_files() hands out its files while the body runs


def remember(run_id: Any, plan: RunPlan | BaseException) -> None:
    with _guard:
        _by_run[str(run_id)] = plan
        _by_run.move_to_end(str(run_id))
        while len(_by_run) > MAX_ENTRIES:
            _by_run.popitem(last=False)


def for_run(run_id: Any) -> RunPlan | BaseException | None:
    with _guard:
        return _by_run.get(str(run_id))


def current(key: str | None = None) -> RunPlan | None:
    """The plan of the task run in progress in this context (None outside one, or when it is for another key)."""
    from prefect.context import TaskRunContext

    ctx = TaskRunContext.get()
    plan = for_run(ctx.task_run.id) if ctx and ctx.task_run else None
    if isinstance(plan, RunPlan) and (key is None or plan.cache_key == key):
        return plan
    return None


def mark_scout(run_id: Any) -> None:
    """Remember that task run ``run_id`` was submitted by a scout task of this process."""
    with _guard:
        _scout_runs[str(run_id)] = None
        while len(_scout_runs) > MAX_ENTRIES:
            _scout_runs.popitem(last=False)


def is_scout(run_id: Any) -> bool:
    """Whether this process knows ``run_id`` as a scout task run (submitted or planned here)."""
    with _guard:
        return str(run_id) in _scout_runs or isinstance(_by_run.get(str(run_id)), RunPlan)


def forget_reads(plan: RunPlan) -> None:
    """What this run read of its job no longer holds (the job is being written, or is read again under a lock)."""
    plan.info_raw = None
    plan.job_absent = False
    plan.verified = None
    drop_verified(None, plan.job_key)


def settle(plan: RunPlan) -> None:
    """The run ended: keep what dependents need (key, names, token), drop input values and reads."""
    plan.info_raw = None
    plan.writer = None
    plan.identity = replace(plan.identity, inputs=[], provided_inputs={})


# ------------------------------------------------------------------------------------------- verified reads
@dataclass
class Verified:
    """A stored job checked for one read: its ``.info``, the result bytes, and their decoded value."""

    info: dict[str, Any]
    data: bytes  # what the result read returns (a unique placeholder for a job without a result file)
    value: Any
    owner: int | None  # id() of the plan that checked it, None for a read outside a planned run
    at: float = field(default_factory=time.monotonic)
    where: tuple[str, str] = ("", "")  # (store url, job key)


# Reads outside a planned run (a flow collecting a worker's result): few, short-lived.  A planned run keeps its own
# on its plan, so any number of concurrent hits never evict one another.
_held: OrderedDict[tuple[str, str], Verified] = OrderedDict()
_handed: OrderedDict[int, Verified] = OrderedDict()


def placeholder() -> bytes:
    """Unique bytes standing for "no result file" (a None result) on its way to the serializer."""
    return f"scout-persist:none:{uuid.uuid4().hex}".encode()


def hold(url: str, key: str, verified: Verified, plan: RunPlan | None = None) -> None:
    verified.where = (url, key)
    if plan is not None:
        plan.verified = verified
        return
    with _guard:
        _held[(url, key)] = verified
        _held.move_to_end((url, key))
        while len(_held) > MAX_HELD:
            _held.popitem(last=False)


def peek_verified(url: str, key: str, plan: RunPlan | None) -> Verified | None:
    """The verified read of this job made by ``plan`` (or, outside a run, a recent one), without taking it."""
    if plan is not None:
        found = plan.verified
        return found if found is not None and found.where == (url, key) and found.owner == id(plan) else None
    with _guard:
        found = _held.get((url, key))
    if found is None:
        return None
    return found if found.owner is None and time.monotonic() - found.at < HELD_TTL else None


def take_verified(url: str, key: str, plan: RunPlan | None) -> Verified | None:
    """Take the verified read for the result read; its bytes then lead the serializer to its value."""
    found = peek_verified(url, key, plan)
    if found is None:
        return None
    if plan is not None:
        plan.verified = None
    else:
        with _guard:
            if _held.get((url, key)) is found:
                del _held[(url, key)]
    hand(found, plan)
    return found


def hand(found: Verified, plan: RunPlan | None = None) -> None:
    """Let the serializer find the value of ``found`` by the identity of the bytes the result read returns."""
    if plan is not None:
        plan.handed = found
        return
    with _guard:
        _handed[id(found.data)] = found
        while len(_handed) > MAX_HELD:
            _handed.popitem(last=False)


def value_for(data: Any) -> tuple[bool, Any]:
    """``(True, value)`` when ``data`` is the very bytes object a verified result read handed out."""
    plan = current()
    if plan is not None and plan.handed is not None and plan.handed.data is data:
        found, plan.handed = plan.handed, None
        return True, found.value
    with _guard:
        found = _handed.get(id(data))
        if found is None or found.data is not data:
            return False, None
        del _handed[id(data)]
    return True, found.value


def drop_verified(url: str | None, key: str) -> None:
    with _guard:
        for held_key in [k for k in _held if k[1] == key and (url is None or k[0] == url)]:
            del _held[held_key]


def forget_all() -> None:
    """Drop every entry (tests)."""
    with _guard:
        _by_run.clear()
        _held.clear()
        _handed.clear()
