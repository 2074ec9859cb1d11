"""Turn a command-line JOB or ROOT argument into a store + key.

JOB or ROOT: a local path, an fsspec URL or a key under SCOUT_PERSIST_URL.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import JobNotFound
from ..layout import JOBS_MARK, split_location
from ..store import Store, shared_store, store_url

_SCHEME_SLASH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


class JobRef:
    """A job addressed by its root (local folder or URL, or an open Store) and its key (``var/jobs/W/t/name``).

    The Store is created only when something needs it (a local one imports no fsspec).
    """

    __slots__ = ("root", "key", "_store")

    def __init__(self, root: str | Store, key: str):
        if isinstance(root, str):
            self.root, self._store = root, None
        else:
            self.root, self._store = root.url, root
        self.key = key

    def __repr__(self) -> str:
        return f"JobRef({self.root!r}, {self.key!r})"

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = store_for(self.root)
        return self._store

    @property
    def display(self) -> str:
        """The path printed by the CLI: absolute for local stores, the full URL otherwise."""
        return self.root.rstrip("/") + "/" + self.key

    @property
    def info_key(self) -> str:
        return self.key + ".info"

    @property
    def files_key(self) -> str:
        return self.key + ".files"

    def sibling(self, key: str) -> JobRef:
        return JobRef(self._store or self.root, key)


def store_for(url: str | None, **storage_options: Any) -> Store:
    """One Store per root URL and options, so a long listing does not re-create file systems.

    ``None`` is the default root (``$SCOUT_PERSIST_URL`` or ``~/.scout``): the Store then knows, for its messages,
    that the root came from the variable.
    """
    return shared_store(url, **storage_options)


def _strip(arg: str) -> str:
    arg = arg.rstrip("/")
    for suffix in (".info", ".files"):
        if arg.endswith(suffix) and len(arg) > len(suffix):
            return arg[: -len(suffix)]
    return arg


def resolve_job(arg: str, root: str | None = None, strip_suffix: bool = True) -> JobRef:
    """Address of the job named by ``arg``.

    ``arg`` is a local path, an fsspec URL (``s3://bucket/x/var/jobs/W/t/name``) or, when it names no local file, a
    key relative to ``root`` (default ``$SCOUT_PERSIST_URL`` or ``~/.scout``): ``var/jobs/W/t/name`` or ``W/t/name``.
    A trailing ``.info`` or ``.files`` is removed (Ruby's ``prov`` does so; its ``info`` prints nothing instead).
    """
    if not arg:
        raise JobNotFound(
            "empty job argument; give a job path such as ~/.scout/var/jobs/Baking/bake_muffin_tray/Default"
        )
    if strip_suffix:
        arg = _strip(arg)
    if "://" in arg:
        base, key = split_location(arg)
        return JobRef(base, key)
    if _SCHEME_SLASH.match(arg):  # 's3:/bucket/...': a URL without its '//', never a local folder named 's3:'
        store_url(arg)
    expanded = os.path.expanduser(arg)
    looks_local = (
        expanded.startswith(("/", "./", "../"))
        # 'store/var/jobs/W/t/name': a path from the working directory, not a key (it would be doubled)
        or (JOBS_MARK in "/" + expanded and not expanded.startswith("var/"))
        or any(os.path.lexists(expanded + sfx) for sfx in ("", ".info"))
    )
    if looks_local:
        base, key = split_location(os.path.abspath(expanded))
        return JobRef(base, key)
    key = arg.lstrip("/")
    if not key.startswith("var/"):
        key = "var/jobs/" + key
    return JobRef(store_for(root), key)


def resolve_root(arg: str | None) -> Store:
    """The store of a ROOT argument (a Scout root such as ``~/.scout`` or ``s3://bucket/scout``), else the default."""
    return store_for(arg or None)
