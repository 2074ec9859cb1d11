"""One store over any fsspec URL: a handful of primitives, keys relative to a root.

Keys are '/'-separated paths relative to the store root (``var/jobs/Baking/whisk_eggs/Default``).
A key may never escape the root: absolute keys, '..' segments and NUL bytes are refused.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from contextlib import contextmanager
from typing import IO, Iterator

from .errors import KeyNotFound, StorageError, UnsafePathError

DEFAULT_URL = "~/.scout"


def default_url() -> str:
    """The store root: ``SCOUT_PERSIST_URL`` or Scout's own user root ``~/.scout``."""
    return os.environ.get("SCOUT_PERSIST_URL") or DEFAULT_URL


def check_key(key: str, root: str = "") -> str:
    """Return ``key`` normalised, or raise UnsafePathError when it could escape ``root``."""
    if not isinstance(key, str):
        raise UnsafePathError(f"store key {key!r} is a {type(key).__name__}; keys are str paths relative to the root")
    if "\x00" in key:
        raise UnsafePathError(f"store key {key!r} contains a NUL byte; no file system or object store can hold it")
    if key.startswith("/"):
        raise UnsafePathError(
            f"store key {key!r} is absolute; keys are relative to the store root {root!r} (drop the leading '/')"
        )
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(
            f"store key {key!r} escapes the store root {root!r}; keys may not contain '..' path segments"
        )
    return "/".join(parts)


class Store:
    """Key/value access to one fsspec URL; ``storage_options`` go to fsspec untouched."""

    def __init__(self, url: str | None = None, **storage_options):
        import fsspec.core

        url = url or default_url()
        if "://" not in url:
            url = os.path.abspath(os.path.expanduser(url))
        self.url = url.rstrip("/") or "/"
        self.storage_options = storage_options
        self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        self.root = root.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- addressing -------------------------------------------------------
    def path(self, key: str) -> str:
        """The backend path of ``key`` (for fsspec calls and error messages)."""
        key = check_key(key, self.url)
        return f"{self.root}/{key}" if key else self.root

    def key_of(self, path: str) -> str:
        """Inverse of :meth:`path` for a backend path under the root."""
        path = self.fs._strip_protocol(path).rstrip("/")
        if path == self.root:
            return ""
        prefix = self.root.rstrip("/") + "/"
        if not path.startswith(prefix):
            raise UnsafePathError(f"path {path!r} is outside the store root {self.url!r}")
        return path[len(prefix):]

    def child(self, key: str) -> "Store":
        """A store rooted at ``key`` below this one, sharing the file system."""
        sub = object.__new__(Store)
        sub.__dict__.update(self.__dict__)
        sub.root = self.path(key)
        sub.url = f"{self.url}/{check_key(key)}"
        return sub

    # -- primitives ---------------------------------------------------------
    def get(self, key: str) -> bytes:
        """The whole value stored under ``key``; KeyNotFound when absent."""
        path = self.path(key)
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise KeyNotFound(f"no entry {key!r} in store {self.url!r}") from exc
        except IsADirectoryError as exc:
            raise KeyNotFound(f"{key!r} in store {self.url!r} is a directory, not an entry") from exc

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` atomically: readers see the old value or the whole new one."""
        with self.writer(key) as fh:
            fh.write(data)

    def create(self, key: str, data: bytes) -> bool:
        """Exclusive create: store ``data`` only if ``key`` is absent; True when this call created it."""
        path = self.path(key)
        self._makedirs(posixpath.dirname(path))
        try:
            with self.fs.open(path, "xb") as fh:
                fh.write(data)
        except FileExistsError:
            return False
        return True

    def exists(self, key: str) -> bool:
        """Whether an entry or folder exists at ``key`` (never reads a payload)."""
        return self.fs.exists(self.path(key))

    def isdir(self, key: str) -> bool:
        return self.fs.isdir(self.path(key))

    def delete(self, key: str, recursive: bool = False) -> None:
        """Remove ``key`` (a folder too when ``recursive``); absent keys are ignored."""
        path = self.path(key)
        try:
            self.fs.rm(path, recursive=recursive)
        except FileNotFoundError:
            pass

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every entry key below ``prefix`` (recursive, files only), sorted."""
        path = self.path(prefix)
        try:
            found = self.fs.find(path, withdirs=False)
        except FileNotFoundError:
            return iter(())
        return iter(sorted(self.key_of(p) for p in found))

    def ls(self, prefix: str = "") -> list[str]:
        """Names directly below ``prefix`` (entries and folders), sorted."""
        try:
            names = self.fs.ls(self.path(prefix), detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(n.rstrip("/")) for n in names)

    def size(self, key: str) -> int:
        try:
            return int(self.fs.size(self.path(key)))
        except FileNotFoundError as exc:
            raise KeyNotFound(f"no entry {key!r} in store {self.url!r}") from exc

    def mtime(self, key: str) -> float | None:
        """Modification time as epoch seconds, or None when the backend does not say."""
        try:
            info = self.fs.info(self.path(key))
        except FileNotFoundError as exc:
            raise KeyNotFound(f"no entry {key!r} in store {self.url!r}") from exc
        value = info.get("mtime") or info.get("LastModified") or info.get("created")
        if value is None:
            return None
        return value.timestamp() if hasattr(value, "timestamp") else float(value)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """A streaming reader for ``key``."""
        if "r" not in mode:
            raise ValueError(f"Store.open mode {mode!r}: only reading; use Store.writer() to write atomically")
        try:
            return self.fs.open(self.path(key), mode)
        except FileNotFoundError as exc:
            raise KeyNotFound(f"no entry {key!r} in store {self.url!r}") from exc

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        """A streaming writer whose content appears at ``key`` atomically when the block ends without error."""
        path = self.path(key)
        self._makedirs(posixpath.dirname(path))
        if self.is_local:
            tmp = posixpath.join(posixpath.dirname(path), f".tmp_mv.{uuid.uuid4().hex}.{posixpath.basename(path)}"[:255])
            try:
                with open(tmp, "wb") as fh:
                    yield fh
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        else:
            # Object stores publish an object only when its upload completes: one put is atomic.
            try:
                with self.fs.open(path, "wb") as fh:
                    yield fh
            except OSError as exc:
                raise StorageError(f"writing {key!r} to {self.url!r} failed: {exc}") from exc

    def _makedirs(self, path: str) -> None:
        if self.is_local or "memory" in _protocols(self.fs):
            self.fs.makedirs(path, exist_ok=True)


def _protocols(fs) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
