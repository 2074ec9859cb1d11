"""The environment of a benchmark's child process: its own Prefect home and storage roots under ``work``."""

from __future__ import annotations

import os
from pathlib import Path


def child_env(work: Path) -> dict:
    """Every store under ``work``; an ephemeral Prefect API of its own (never a server the user configured)."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(work / "prefect-home"),
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(work / "prefect-storage"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",  # 2 busy cores start it slowly
        SCOUT_PERSIST_URL=str(work / "scout"),
    )
    env.pop("PREFECT_API_URL", None)
    return env
