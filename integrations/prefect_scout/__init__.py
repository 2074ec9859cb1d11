"""Prefect 3 plug-in for scout-persist: task results persist as Scout jobs.

``from prefect_scout import scout_task, job_name`` (see docs/prefect.md).  Importing this package registers the
storage blocks and the ``scout-persist`` serializer type with Prefect, and gives Prefect's ephemeral API server the
time it needs to start on a slow machine (:func:`prefect_scout.settings.give_the_ephemeral_server_time`).
"""

from __future__ import annotations

from .cache_policy import ScoutCachePolicy, ScoutKeyError, ScoutSpec, job_name
from .locking import ScoutLockManager
from .result_serializer import ScoutSerializer
from .reusing import ReuseError, reuse
from .settings import give_the_ephemeral_server_time
from .storage import CacheMiss, ScoutInfoStorage, ScoutStorage
from .task import JobName, ScoutTask, fixed, scout_task
from .task_files import job_files

give_the_ephemeral_server_time()

__all__ = [
    "CacheMiss",
    "JobName",
    "ReuseError",
    "ScoutCachePolicy",
    "ScoutInfoStorage",
    "ScoutKeyError",
    "ScoutLockManager",
    "ScoutSerializer",
    "ScoutSpec",
    "ScoutStorage",
    "ScoutTask",
    "fixed",
    "job_files",
    "job_name",
    "reuse",
    "scout_task",
]
