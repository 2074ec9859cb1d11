"""Where the plug-in stores jobs, and the one Prefect setting it adjusts.

The store root of a scout task: its ``url=`` when given, else the root a ``resume`` runs the flow against
(:func:`using_root`, passed explicitly by ``scout-persist resume``), else the core's ``$SCOUT_PERSIST_URL``
(:mod:`scout_persist.settings`, default ``~/.scout``), read at use time in the process that runs the task.  Worker
processes (process pools, Dask) follow their own environment: an ``s3://`` root with ``FSSPEC_S3_ENDPOINT_URL``
works there as it does locally.

Prefect's ephemeral API server (started by the first flow when no ``PREFECT_API_URL`` is set) gets
:data:`SERVER_STARTUP_SECONDS` to start instead of Prefect's 20 s, unless the user set
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (environment or profile): on a fresh ``PREFECT_HOME`` its
database migrations alone take about 20 s on a loaded 2-core machine, so a newcomer's first flow failed with
"Timed out while attempting to connect to ephemeral Prefect API server".
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar

import prefect.context
from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

from scout_persist import settings as core_settings
from scout_persist.store import Store, shared_store, store_url

SERVER_STARTUP_SECONDS = 120
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

# Copied by Prefect into the threads that run submitted tasks (ThreadPoolTaskRunner copies the context).
_run_root: ContextVar[str | None] = ContextVar("scout_run_root", default=None)


def root_url(url: str | None = None) -> str:
    """The store root, checked and spelled as :attr:`Store.url` spells it: ``url`` when given, else the root of
    :func:`using_root`, else ``$SCOUT_PERSIST_URL``, else ``~/.scout``.

    A malformed root raises its InvalidInputError here, where a scout task is called in the flow, so the flow fails
    with that message (rather than with each task failing and Prefect's "UnfinishedRun: Run is in PENDING state" for
    the tasks downstream)."""
    given = url or _run_root.get()
    env = None if given else core_settings.store_url()
    return _checked(given, env, core_settings.home() if not (given or env) else "")


@functools.lru_cache(maxsize=256)
def _checked(given: str | None, env: str | None, home: str) -> str:
    # keyed on what the answer depends on: None means $SCOUT_PERSIST_URL, else ~/.scout under $HOME (both may change
    # at run time, e.g. in tests)
    return store_url(given).rstrip("/") or "/"


def store_for(url: str | None = None) -> Store:
    """The process's one :class:`Store` of the resolved root (file systems are costly to build)."""
    return shared_store(root_url(url))


@contextlib.contextmanager
def using_root(url: str) -> Iterator[None]:
    """Scout tasks without their own ``url=`` store in ``url`` inside the block (this thread and the task threads
    it starts), whatever ``$SCOUT_PERSIST_URL`` says: how ``resume`` runs a flow against the store it was found in."""
    token = _run_root.set(url)
    try:
        yield
    finally:
        _run_root.reset(token)


def run_root() -> str | None:
    """The root set by :func:`using_root` in this context, None outside one."""
    return _run_root.get()


def give_the_ephemeral_server_time(seconds: int = SERVER_STARTUP_SECONDS) -> bool:
    """Raise the ephemeral API server's startup timeout to ``seconds`` unless the user chose one; True when raised.

    Applied to Prefect's process-wide settings (the context every flow and client falls back to), as a default:
    a value from the environment, a profile or a ``temporary_settings`` block already in force wins.
    """
    setting = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
    current = prefect.context.GLOBAL_SETTINGS_CONTEXT
    if "startup_timeout_seconds" in current.settings.server.ephemeral.model_fields_set:
        return False  # set by the user (environment, profile or prefect.toml)
    if setting.value_from(current.settings) >= seconds:
        return False
    raised = current.settings.copy_with_update(set_defaults={setting: seconds})
    prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.SettingsContext(profile=current.profile, settings=raised)
    return True


__all__ = [
    "SERVER_STARTUP_SECONDS",
    "STARTUP_SETTING",
    "give_the_ephemeral_server_time",
    "root_url",
    "run_root",
    "store_for",
    "using_root",
]
