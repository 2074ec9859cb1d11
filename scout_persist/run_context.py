"""The run in progress: which recorded flow run (if any) the calling code runs in, as the Prefect plug-in tells the
core, so the registry and outputs can note lineage (``artifact_logged``, ``artifact_used``, ``reused``) in its record
without importing Prefect or the run records."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CurrentRun:
    """The flow run this code runs in, as the plug-in tells the core (for lineage)."""

    run_id: str
    workflow: str
    flow: str
    store_url: str
    note: Callable[[str, dict[str, Any]], None] = field(repr=False, default=lambda kind, data: None)


_provider: Callable[[], CurrentRun | None] | None = None
_provider_guard = threading.Lock()


def set_current_run_provider(
    provider: Callable[[], CurrentRun | None] | None,
) -> Callable[[], CurrentRun | None] | None:
    """Called by the Prefect plug-in: how the core learns which recorded run (if any) the caller is in.  Returns the
    provider it replaces (to put it back)."""
    global _provider
    with _provider_guard:
        previous, _provider = _provider, provider
    return previous


def current_run() -> CurrentRun | None:
    """The recorded run the calling code runs in, or None (no plug-in, no flow, or no record)."""
    provider = _provider
    if provider is None:
        return None
    try:
        return provider()
    except Exception:  # noqa: BLE001 - lineage is best effort; never fail the caller's read or write
        return None


__all__ = ["CurrentRun", "current_run", "set_current_run_provider"]
