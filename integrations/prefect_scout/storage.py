"""Prefect result storage over the scout-persist store: payloads at Scout job paths, metadata in ``.info``.

Two blocks share one root (``url``; None means ``$SCOUT_PERSIST_URL`` read in the process that runs the task):

* :class:`ScoutStorage` (the task's ``result_storage``): ``<key>`` -> ``<root>/var/jobs/<key>``, the result file.
* :class:`ScoutInfoStorage` (the cache policy's ``key_storage``): ``<key>`` -> ``<root>/var/jobs/<key>.info``.
  Reading returns Prefect's metadata record only for a usable job: status ``done``, result file present with the
  recorded size, same strong signature.  Anything else raises, which Prefect's ``exists()`` turns into a miss
  (recompute) instead of a failed task.  Local stores check the size with a stat; object stores fetch the result
  file once (its length is the check) and hand those bytes to the result read, so a hit on S3 is two GETs.
  Writing nests Prefect's metadata under the ``prefect`` key and sets ``status=done`` (the commit point).

Both accept Prefect's ``_sync`` keyword on ``read_path``/``write_path`` and offer ``aread_path``/``awrite_path``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from prefect.context import TaskRunContext
from prefect.filesystems import WritableFileSystem
from pydantic import Field

from scout_persist.errors import KeyNotFound, ScoutPersistError
from scout_persist.info import hostname, loads_info, read_info
from scout_persist.layout import JOBS_DIR
from scout_persist.locks import pid_alive
from scout_persist.store import Store, check_key

from . import lifecycle, runs, settings
from .serializer import SERIALIZER_TYPE, scout_type_from_info

PREFECT_KEY = "prefect"


class CacheMiss(ScoutPersistError, LookupError):
    """A stored job exists but cannot serve as a cached result (not done, damaged, or another signature)."""


class NotAScoutKey(ScoutPersistError, ValueError):
    """A storage key that is not a Scout job path."""


def job_key(key: str) -> str:
    """The store key of the result file of cache key ``key`` (``Baking/whisk_eggs/Default``).

    Anything that is not ``<Workflow>/<task>/<name>`` is refused: Prefect also writes records under random keys
    (the exception of a failed run), and those must not litter ``var/jobs`` (the ``.info`` keeps the error).
    """
    key = check_key(str(key))
    if key.count("/") < 2:
        raise NotAScoutKey(
            f"{key!r} is not a Scout job key (<Workflow>/<task>/<name>); the scout storage keeps only task results "
            "at their job path (a failed run's exception is in the job's .info)"
        )
    return f"{JOBS_DIR}/{key}"


def changed_parts(info: dict, plan: runs.RunPlan) -> list[str]:
    """The parts of ``plan``'s signature that the job of ``info`` was computed with differently (none recorded: [])."""
    record = info.get(PREFECT_KEY) if isinstance(info.get(PREFECT_KEY), dict) else {}
    stored_sig = record.get("signature")
    if not isinstance(stored_sig, dict):
        return []
    return [part for part, value in plan.signature.items() if stored_sig.get(part) != value]


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _current_plan(key: str) -> runs.RunPlan | None:
    ctx = TaskRunContext.get()
    plan = runs.for_run(ctx.task_run.id) if ctx and ctx.task_run else None
    if isinstance(plan, runs.RunPlan) and plan.cache_key == key:
        return plan
    return runs.for_key(key)


class _ScoutBlock(WritableFileSystem):
    url: str | None = Field(
        default=None,
        description="Store root (any fsspec URL). Empty: $SCOUT_PERSIST_URL of the process running the task.",
    )

    def _store(self) -> Store:
        return settings.store_for(self.url)

    def _resolve_path(self, path: str) -> str:
        """Keys stay relative cache keys; idempotent (Prefect passes the output back in)."""
        return str(path)

    def read_path(self, path: str, _sync: bool | None = None) -> Any:
        if _sync is False or (_sync is None and _in_event_loop()):
            return self.aread_path(path)
        return self._read(path)

    def write_path(self, path: str, content: bytes, _sync: bool | None = None) -> Any:
        if _sync is False or (_sync is None and _in_event_loop()):
            return self.awrite_path(path, content)
        return self._write(path, content)

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self._read, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self._write, path, content)

    def _read(self, path: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write(self, path: str, content: bytes) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class ScoutStorage(_ScoutBlock):
    """Result storage: a task result is the file ``<root>/var/jobs/<Workflow>/<task>/<name>[.ext]``."""

    _block_type_name: ClassVar[str] = "Scout Persist Storage"
    _block_type_slug: ClassVar[str] = "scout-persist-storage"
    _description: ClassVar[str] = "Task results as Ruby Scout jobs (var/jobs layout) on any fsspec URL."

    def _read(self, path: str) -> bytes:
        plan = _current_plan(str(path))
        fetched = runs.take_payload(plan) if plan is not None else None
        if fetched is not None:
            return fetched  # the metadata check of this run already fetched it
        return self._store().get(job_key(path))

    def _write(self, path: str, content: bytes) -> str:
        key = job_key(path)
        plan = _current_plan(str(path))
        if plan is not None:
            runs.forget_reads(plan)
        self._store().put(key, bytes(content))
        if plan is not None:
            plan.stored_size = len(content)
        return key


class ScoutInfoStorage(_ScoutBlock):
    """Metadata storage: Prefect's record of a result lives in the job's ``.info`` under ``prefect``."""

    _block_type_name: ClassVar[str] = "Scout Persist Info"
    _block_type_slug: ClassVar[str] = "scout-persist-info"
    _description: ClassVar[str] = "Result metadata inside Scout .info sidecars (cache hits read metadata only)."

    def _read(self, path: str) -> bytes:
        store = self._store()
        key = job_key(path)
        plan = _current_plan(str(path))
        try:
            return self._check(store, key, str(path), plan)
        except (CacheMiss, KeyNotFound):
            if plan is None or plan.lock_pass is None:
                raise
        # The lock was granted without a lock file because the .info said done, yet the job is not usable (its
        # result file is missing or damaged): take the real lock now, then look again (another holder may fix it).
        runs.forget_reads(plan)
        manager, holder = plan.lock_pass
        manager.take_real_lock(str(path), holder)
        return self._check(store, key, str(path), plan)

    def _check(self, store: Store, key: str, path: str, plan: runs.RunPlan | None) -> bytes:
        if plan is not None and plan.info_raw is not None:
            info = loads_info(plan.info_raw, store.path(key + ".info"))
        else:
            info = read_info(store, key + ".info")
            if plan is not None:
                plan.job_absent = not info
        if not info:
            raise KeyNotFound(f"no job {key!r} in {store.url!r}")
        status = info.get("status")
        if status != "done":
            raise CacheMiss(f"job {key!r} is {self._describe(status, info)}: recompute")
        record = info.get(PREFECT_KEY) if isinstance(info.get(PREFECT_KEY), dict) else {}
        if plan is not None:
            changed = changed_parts(info, plan)
            if changed:
                plan.changed = changed
                raise CacheMiss(f"job {key!r} was computed with another {', '.join(changed)}: recompute")
        expected = info.get("stored_size", record.get("stored_size"))
        size = self._stored_size(store, key, plan)
        if expected is not None and expected != size:
            if plan is not None:
                runs.take_payload(plan)
            raise CacheMiss(f"job {key!r} result holds {size} bytes, its .info says {expected}: damaged, recompute")
        meta = dict(record.get("metadata") or {})
        meta["storage_key"] = path
        meta["expiration"] = None
        meta["serializer"] = {"type": SERIALIZER_TYPE, "scout_type": scout_type_from_info(info)}
        meta.setdefault("storage_block_id", None)
        return json.dumps(meta).encode()

    @staticmethod
    def _stored_size(store: Store, key: str, plan: runs.RunPlan | None) -> int:
        """Bytes of the result file.  Object stores: fetch it (one GET, kept for the result read) instead of a
        HEAD now and a GET right after; local stores: a stat."""
        try:
            if store.is_local or plan is None:
                return store.size(key)
            if plan.payload_raw is None:
                runs.hold_payload(plan, store.get(key))
            return len(plan.payload_raw or b"")
        except KeyNotFound:
            raise CacheMiss(f"job {key!r} is done but its result file is missing: recompute") from None

    @staticmethod
    def _describe(status: Any, info: dict) -> str:
        if status in ("start", "setup") and info.get("pid_hostname") == hostname():
            pid = info.get("pid")
            if isinstance(pid, int) and not pid_alive(pid):
                return f"'{status}' with a dead process (pid {pid}): aborted"
        return repr(status)

    def _write(self, path: str, content: bytes) -> str:
        plan = _current_plan(str(path))
        if plan is None:
            raise ScoutPersistError(
                f"no scout task run planned the job {path!r} in this process; the Scout metadata storage only "
                "records results of runs keyed by ScoutCachePolicy (use @scout_task)"
            )
        meta = json.loads(content)
        record: dict[str, Any] = {"metadata": meta, "signature": plan.signature}
        if plan.stored_size is not None:
            record["stored_size"] = plan.stored_size
        if plan.changed:
            record["recomputed_because"] = list(plan.changed)
        if plan.fixed:
            record["fixed_inputs"] = list(plan.fixed)
        if plan.task_run_id:
            record["task_run_id"] = plan.task_run_id
        if plan.flow_run_id:
            record["flow_run_id"] = plan.flow_run_id
        lifecycle.done(plan, record)
        return plan.job_key + ".info"


__all__ = ["CacheMiss", "NotAScoutKey", "ScoutInfoStorage", "ScoutStorage", "job_key"]
