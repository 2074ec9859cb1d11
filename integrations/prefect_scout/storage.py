"""Prefect result storage over the scout-persist store: payloads at Scout job paths, metadata in ``.info``.

Two blocks share one root (``url``; None means ``$SCOUT_PERSIST_URL`` read in the process that runs the task):

* :class:`ScoutInfoStorage` (the cache policy's ``key_storage``): reading ``<key>`` is the hit check of
  :mod:`prefect_scout.hits` on ``<root>/var/jobs/<key>``: it answers Prefect's metadata only for a job that can serve
  the run, after verifying and decoding its result; anything else raises, which Prefect's ``exists()`` turns into a
  recompute.  A hit is one ``.info`` read and one result read.
* :class:`ScoutStorage` (the task's ``result_storage``): reading ``<key>`` hands over the bytes that check verified
  (the serializer then returns their decoded value).

Writing through either block stores nothing: the scout task wrapper commits the job itself (payload, then ``.info``
``done``) before Prefect persists, so a failure to store fails the task (see :mod:`prefect_scout.lifecycle`).

Both accept Prefect's ``_sync`` keyword on ``read_path``/``write_path`` and offer ``aread_path``/``awrite_path``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from prefect.filesystems import WritableFileSystem
from pydantic import Field

from scout_persist.errors import KeyNotFound, ScoutPersistError
from scout_persist.layout import job_key_below
from scout_persist.store import Store, check_key

from . import hits, plans, runs, settings
from .hits import CacheMiss
from .serializer import SERIALIZER_TYPE, scout_type_from_info


class NotAScoutKey(ScoutPersistError, ValueError):
    """A storage key that is not a Scout job path."""


def job_key(key: str) -> str:
    """The store key of the result file of cache key ``key`` (``Baking/whisk_eggs/Default``).

    Anything that is not ``<Workflow>/<task>/<name>`` is refused: Prefect also uses random keys (the exception of a
    failed run), and those have no place in ``var/jobs`` (the ``.info`` keeps the error).
    """
    found = job_key_below(check_key(str(key)))
    if found is None:
        raise NotAScoutKey(
            f"{key!r} is not a Scout job key (<Workflow>/<task>/<name>); the scout storage keeps only task results "
            "at their job path (a failed run's exception is in the job's .info)"
        )
    return found


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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

    def _verified(self, path: str) -> tuple[plans.Verified, plans.RunPlan | None]:
        """The verified read of ``path`` for the run in progress: the one made earlier in this attempt, or a new one."""
        key = job_key(path)
        plan = plans.current(str(path))
        if plan is not None and plan.job_key != key:
            plan = None
        store = self._store()
        # Within a planned run, Prefect's exists() and read() are one attempt: check once.  Outside one, every
        # metadata read checks anew (its result read takes what it verified).
        found = plans.peek_verified(store.url, key, plan) if plan is not None else None
        if found is None:
            found = self._check(store, key, plan)
            plans.hold(store.url, key, found, plan)
        return found, plan

    def _check(self, store: Store, key: str, plan: plans.RunPlan | None) -> plans.Verified:
        try:
            return hits.check(store, key, plan)
        except (CacheMiss, KeyNotFound):
            if plan is None or plan.lock_pass is None:
                raise
        # The lock was granted without a lock file because the .info said done, yet the job cannot serve the run
        # (damaged, replaced): take the real lock now, then look again (another holder may have fixed it).
        plans.forget_reads(plan)
        manager, holder = plan.lock_pass
        manager.take_real_lock(plan.cache_key, holder)
        return hits.check(store, key, plan)

    def _write(self, path: str, content: bytes) -> str:
        plan = plans.current(str(path))
        try:
            key = job_key(path)
        except NotAScoutKey:
            return str(path)  # Prefect's record of a failed run: the job's .info already holds the exception
        if plan is None or not plan.stored:
            raise ScoutPersistError(
                f"no scout task run of this process committed the job {key!r}; results reach the Scout store only "
                "through @scout_task, which stores them itself before Prefect persists"
            )
        return key

    def _read(self, path: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError


class ScoutStorage(_ScoutBlock):
    """Result storage: a task result is the file ``<root>/var/jobs/<Workflow>/<task>/<name>[.ext]``."""

    _block_type_name: ClassVar[str] = "Scout Persist Storage"
    _block_type_slug: ClassVar[str] = "scout-persist-storage"
    _description: ClassVar[str] = "Task results as Ruby Scout jobs (var/jobs layout) on any fsspec URL."

    def _read(self, path: str) -> bytes:
        key = job_key(path)
        plan = plans.current(str(path))
        if plan is not None and plan.job_key != key:
            plan = None
        store = self._store()
        found = plans.take_verified(store.url, key, plan)
        if found is None:  # no metadata read came first in this attempt: check now
            found = self._check(store, key, plan)
            found.where = (store.url, key)
            plans.hand(found, plan)
        return found.data


class ScoutInfoStorage(_ScoutBlock):
    """Metadata storage: Prefect's record of a result is built from the job's ``.info``."""

    _block_type_name: ClassVar[str] = "Scout Persist Info"
    _block_type_slug: ClassVar[str] = "scout-persist-info"
    _description: ClassVar[str] = "Result metadata from Scout .info sidecars (hits verified against their checksum)."

    def _read(self, path: str) -> bytes:
        found, plan = self._verified(str(path))
        if plan is not None:
            runs.job_reused(plan)  # verified: the run is served by the stored job (noted before the result read)
        meta = {
            "storage_key": str(path),
            "expiration": None,  # checked by the hit check itself
            "serializer": {"type": SERIALIZER_TYPE, "scout_type": scout_type_from_info(found.info)},
            "storage_block_id": None,
        }
        return json.dumps(meta).encode()


__all__ = ["CacheMiss", "NotAScoutKey", "ScoutInfoStorage", "ScoutStorage", "job_key"]
