"""Where the plug-in stores jobs and how it compresses Python payloads: environment variables read at use time.

``SCOUT_PERSIST_URL`` is the store root (any fsspec URL; default ``~/.scout``), the same variable the core and the
CLI read.  ``SCOUT_PERSIST_COMPRESSION`` (``zstd:3``, ``zstd:19``, ``none``) applies to values that have no Scout
type.  Both are read in the process that runs a task, so worker processes (process pools, Dask) follow their own
environment: an ``s3://`` root with ``FSSPEC_S3_ENDPOINT_URL`` works there as it does locally.
"""

from __future__ import annotations

import os

from scout_persist.store import Store, default_url

URL_ENV = "SCOUT_PERSIST_URL"
COMPRESSION_ENV = "SCOUT_PERSIST_COMPRESSION"
DEFAULT_COMPRESSION = "zstd:3"

_stores: dict[str, Store] = {}


def root_url(url: str | None = None) -> str:
    """The store root: ``url`` when given, else ``$SCOUT_PERSIST_URL``, else ``~/.scout``."""
    return url or default_url()


def compression() -> str:
    """The codec spec for Python payloads (``$SCOUT_PERSIST_COMPRESSION``, default ``zstd:3``)."""
    return os.environ.get(COMPRESSION_ENV) or DEFAULT_COMPRESSION


def store_for(url: str | None = None) -> Store:
    """One cached :class:`Store` per resolved root URL in this process (file systems are costly to build)."""
    resolved = root_url(url)
    store = _stores.get(resolved)
    if store is None:
        store = _stores[resolved] = Store(resolved)
    return store
