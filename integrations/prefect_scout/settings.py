"""Where the plug-in stores jobs: ``SCOUT_PERSIST_URL``, read at use time in the process that runs a task.

It is the same variable the core and the CLI read (any fsspec URL; default ``~/.scout``), so worker processes
(process pools, Dask) follow their own environment: an ``s3://`` root with ``FSSPEC_S3_ENDPOINT_URL`` works there
as it does locally.  (``SCOUT_PERSIST_COMPRESSION`` is read by the core's codecs when a result is stored.)
"""

from __future__ import annotations

from scout_persist.store import Store, default_url

URL_ENV = "SCOUT_PERSIST_URL"

_stores: dict[str, Store] = {}


def root_url(url: str | None = None) -> str:
    """The store root: ``url`` when given, else ``$SCOUT_PERSIST_URL``, else ``~/.scout``."""
    return url or default_url()


def store_for(url: str | None = None) -> Store:
    """One cached :class:`Store` per resolved root URL in this process (file systems are costly to build)."""
    resolved = root_url(url)
    store = _stores.get(resolved)
    if store is None:
        store = _stores[resolved] = Store(resolved)
    return store
