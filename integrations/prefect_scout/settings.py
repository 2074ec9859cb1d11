"""Where the plug-in stores jobs: ``SCOUT_PERSIST_URL``, read at use time in the process that runs a task.

It is the same variable the core and the CLI read (any fsspec URL; default ``~/.scout``), so worker processes
(process pools, Dask) follow their own environment: an ``s3://`` root with ``FSSPEC_S3_ENDPOINT_URL`` works there
as it does locally.  (``SCOUT_PERSIST_COMPRESSION`` is read by the core's codecs when a result is stored.)
"""

from __future__ import annotations

from scout_persist.store import Store, default_url, shared_store


def root_url(url: str | None = None) -> str:
    """The store root: ``url`` when given, else ``$SCOUT_PERSIST_URL``, else ``~/.scout``."""
    return url or default_url()


def store_for(url: str | None = None) -> Store:
    """The process's one :class:`Store` of the resolved root (file systems are costly to build)."""
    return shared_store(root_url(url))
