"""What the plug-in knows about the scout task runs of this process: their job, signature and ``.info`` writer.

The cache policy plans a run (job key, Scout identity, strong signature); the task wrapper writes ``setup`` and
``start``; the storages write the payload and then ``done``.  All of them meet here, keyed by task run id and by
cache key.  Entries are small (no payloads) and live as long as the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from scout_persist.workflow import JobIdentity

MAX_ENTRIES = 50_000  # a long-lived worker must not grow without bound

_guard = threading.Lock()
_by_run: "OrderedDict[str, RunPlan | BaseException]" = OrderedDict()
_by_key: "OrderedDict[str, RunPlan]" = OrderedDict()


@dataclass
class RunPlan:
    """One planned scout task run: where its job lives and what must match for a cached job to count."""

    cache_key: str  # <Workflow>/<task>/<name>[.ext], Prefect's cache and storage key
    job_key: str  # var/jobs/<cache_key>, the store key of the result file
    workflow: str
    task: str
    scout_type: str  # written as .info "type"
    identity: JobIdentity
    dependencies: list[str]  # job keys of the direct dependencies, in order
    signature: dict[str, str]
    url: str | None = None  # store root (None: $SCOUT_PERSIST_URL in this process)
    task_run_id: str | None = None
    flow_run_id: str | None = None
    info: Any = None  # the InfoFile of the run once the wrapper started it
    changed: list[str] = field(default_factory=list)  # signature parts that differed from the stored job
    payload: dict | None = None  # pickle record (codec, sizes, checksum) of the payload this run wrote
    stored_size: int | None = None  # bytes of the result file this run wrote
    fixed: tuple[str, ...] = ()  # inputs fixed by the caller (prefect_scout.fixed): not inherited by dependents
    # A cache hit reads each object once: the lock manager's lock-free check keeps the .info bytes it read, the
    # metadata reads (Prefect's exists() then read()) reuse them, and the payload fetched for the size check is
    # handed to the result read.  Writing the job drops both.
    info_raw: bytes | None = None
    payload_raw: bytes | None = None
    job_absent: bool = False  # the last .info read of this run found no job: no stale result file to delete
    lock_pass: Any = None  # (lock manager, holder) when the lock was granted without a lock file (committed job)


def remember(run_id: Any, plan: "RunPlan | BaseException") -> None:
    with _guard:
        _by_run[str(run_id)] = plan
        _by_run.move_to_end(str(run_id))
        if isinstance(plan, RunPlan):
            _by_key[plan.cache_key] = plan
            _by_key.move_to_end(plan.cache_key)
        for table in (_by_run, _by_key):
            while len(table) > MAX_ENTRIES:
                table.popitem(last=False)


_scout_runs: "OrderedDict[str, None]" = OrderedDict()


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


MAX_PREFETCHED = 8  # payloads fetched by a hit check and not yet taken by the result read
_prefetched: "OrderedDict[int, RunPlan]" = OrderedDict()


def hold_payload(plan: "RunPlan", data: bytes) -> None:
    """Keep ``data`` on ``plan`` for the result read; only the newest few are kept (a check without a read)."""
    with _guard:
        plan.payload_raw = data
        _prefetched[id(plan)] = plan
        _prefetched.move_to_end(id(plan))
        while len(_prefetched) > MAX_PREFETCHED:
            _, old = _prefetched.popitem(last=False)
            old.payload_raw = None


def take_payload(plan: "RunPlan") -> bytes | None:
    """The payload a hit check fetched for ``plan`` (once), or None."""
    with _guard:
        data, plan.payload_raw = plan.payload_raw, None
        _prefetched.pop(id(plan), None)
        return data


def forget_reads(plan: "RunPlan") -> None:
    """The job is being written: what this run read of it no longer holds."""
    plan.info_raw = None
    plan.job_absent = False
    take_payload(plan)


def settle(plan: "RunPlan") -> None:
    """The run ended: keep what dependents need (key, names, signature), drop input values and the writer."""
    forget_reads(plan)
    plan.info = None
    plan.identity = replace(plan.identity, inputs=[], provided_inputs={})


def for_run(run_id: Any) -> "RunPlan | BaseException | None":
    with _guard:
        return _by_run.get(str(run_id))


def for_key(cache_key: str) -> "RunPlan | None":
    with _guard:
        return _by_key.get(cache_key)


def forget_all() -> None:
    """Drop every entry (tests)."""
    with _guard:
        _by_run.clear()
        _by_key.clear()
        for plan in _prefetched.values():
            plan.payload_raw = None
        _prefetched.clear()
