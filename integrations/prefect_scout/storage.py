"""Prefect result storage over the scout-persist store: payloads at Scout job paths, metadata in ``.info``.

Two blocks share one root (``url``; None means ``$SCOUT_PERSIST_URL`` read in the process that runs the task):

* :class:`ScoutInfoStorage` (the cache policy's ``key_storage``): reading ``<key>`` is the verdict of the run's
  attempt on ``<root>/var/jobs/<key>`` (the hit rule, :mod:`scout_persist.verdict`): it answers Prefect's metadata
  only for a job that serves the run, after verifying and decoding its result; anything else raises, which
  Prefect's ``exists()`` turns into a recompute.  Prefect's ``exists()`` and ``read()`` see one attempt: a hit is one
  ``.info`` read and one result read.
* :class:`ScoutStorage` (the task's ``result_storage``): reading ``<key>`` hands the served value over as a token
  (the serializer redeems it).

Writing through either block stores nothing: the scout task wrapper commits the job itself (payload, then ``.info``
``done``) before Prefect persists, so a failure to store fails the task (see :mod:`prefect_scout.lifecycle`).

Both accept Prefect's ``_sync`` keyword on ``read_path``/``write_path`` and offer ``aread_path``/``awrite_path``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, ClassVar

from prefect.filesystems import WritableFileSystem
from pydantic import Field

from scout_persist.attempt import ABSENT, CORRUPT, UNTRUSTED, Attempt, Expiry, Served
from scout_persist.errors import KeyNotFound, ScoutPersistError
from scout_persist.store import Store

from . import plans, run_recorder, settings
from .plans import NotAScoutKey, TaskRunAttempt, job_key_from_prefect
from .result_serializer import SERIALIZER_TYPE, hand_over

logger = logging.getLogger("prefect_scout")
_warned_unsigned: set[str] = set()
_warn_guard = threading.Lock()


class CacheMiss(ScoutPersistError, LookupError):
    """A stored job exists but cannot serve as a cached result (not done, damaged, expired, another signature)."""


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _served(attempt: Attempt, run: TaskRunAttempt | None, hand: bool = False) -> Served:
    """The attempt's verdict when it serves (``hand``: handed over, see :meth:`Attempt.serve`); else the miss
    raised: KeyNotFound for no job, CacheMiss otherwise (damaged and untrusted results are logged)."""
    verdict = attempt.serve() if hand else attempt.verdict()
    if isinstance(verdict, Served):
        return verdict
    where = attempt.store.where(attempt.key)
    if verdict.has(ABSENT):
        raise KeyNotFound(f"no job {attempt.key!r} in {attempt.store.url!r}")
    if verdict.has(UNTRUSTED):
        _warn_untrusted(where, verdict.error, run)
    elif verdict.has(CORRUPT):
        logger.warning("scout-persist: stored job %s cannot be used (%s); recomputing it", where, verdict.error)
    raise CacheMiss(f"job {where!r}: {verdict.message}: recompute") from verdict.error


def _warn_untrusted(location: str, exc: BaseException | None, run: TaskRunAttempt | None) -> None:
    flow_run = (run.plan.flow_run_id if run is not None else None) or "-"
    with _warn_guard:
        if flow_run in _warned_unsigned:
            return
        _warned_unsigned.add(flow_run)
    logger.warning(
        "scout-persist: %s (and possibly more jobs of this run) is a pickle that does not verify under "
        "the pickle key; it is recomputed and rewritten signed. List them with "
        "`scout-persist verify --unsigned`. (%s)",
        location,
        exc,
    )


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

    def _attempt(self, path: str, metadata: bool) -> tuple[Attempt, TaskRunAttempt | None]:
        """The attempt that reads ``path``: the planned run's own (its ``exists()`` and ``read()`` see one verdict),
        else one for this read outside a planned run (the metadata read makes it, the result read takes it)."""
        key = job_key_from_prefect(path)
        store = self._store()
        run = plans.current(str(path))
        if run is not None and run.key == key and run.store.url == store.url:
            return run, run
        if metadata:
            return plans.unplanned(store, key), None
        return plans.take_unplanned(store.url, key) or Attempt(store, key, expiration=Expiry.IGNORED), None

    def _write(self, path: str, content: bytes) -> str:
        run = plans.current(str(path))
        try:
            key = job_key_from_prefect(path)
        except NotAScoutKey:
            return str(path)  # Prefect's record of a failed run: the job's .info already holds the exception
        if run is None or not (run.committed or run.audited is not None):
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
        attempt, run = self._attempt(str(path), metadata=False)
        token = hand_over(_served(attempt, run, hand=True).value)
        if run is not None:
            run.settle()  # served: its input values are no longer needed
        return token


class ScoutInfoStorage(_ScoutBlock):
    """Metadata storage: Prefect's record of a result is built from the job's ``.info``."""

    _block_type_name: ClassVar[str] = "Scout Persist Info"
    _block_type_slug: ClassVar[str] = "scout-persist-info"
    _description: ClassVar[str] = "Result metadata from Scout .info sidecars (hits verified against their checksum)."

    def _read(self, path: str) -> bytes:
        attempt, run = self._attempt(str(path), metadata=True)
        served = _served(attempt, run)
        if run is not None and run.plan.audit and run.audited is None:
            # audit mode: a hit computed again (the task wrapper compares it with this stored value)
            raise CacheMiss(f"job {attempt.store.where(attempt.key)!r} serves, and is audited: computed again")
        if run is not None:
            run_recorder.job_reused(run)  # served: the run is served by the stored job (noted before the result read)
        meta = {
            "storage_key": str(path),
            "expiration": None,  # checked by the hit check itself
            "serializer": {"type": SERIALIZER_TYPE, "scout_type": served.scout_type},
            "storage_block_id": None,
        }
        return json.dumps(meta).encode()


__all__ = ["CacheMiss", "NotAScoutKey", "ScoutInfoStorage", "ScoutStorage", "job_key_from_prefect"]
