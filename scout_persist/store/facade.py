""":class:`Store`: one store over any URL — keys, safety checks, error translation and retries, once, over a backend.

Writes are atomic on every backend: a local file is written under a temporary name in the same folder and renamed;
an object appears on an object store only when its single PUT (or multipart upload) completes.  Backend errors are
translated here: ``KeyNotFound`` for a missing entry, ``StorageError`` for anything else, each naming the store URL
and key, with the backend's exception chained.  Transient errors of remote backends (5xx, dropped connections,
timeouts) are retried with backoff.
"""

from __future__ import annotations

import builtins
import posixpath
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .. import settings
from ..errors import KeyNotFound, ScoutPersistError, StorageError, UnsafePathError
from . import faults
from .addressing import URL_VARIABLE, check_key, store_url
from .backend import TEMP_PREFIX, Backend, Capabilities, Sync, Upload, Versioned
from .generic import FsspecBackend, protocols
from .local import LocalBackend
from .memory import MemoryBackend
from .s3 import S3Backend, client_options

if TYPE_CHECKING:
    import mmap

T = TypeVar("T")


def open_backend(url: str, storage_options: dict[str, Any]) -> Backend:
    """The backend for a checked root URL: local folders without fsspec, else by the fsspec protocol."""
    if "://" not in url:
        return LocalBackend(url, url)
    import fsspec.core  # lazy: local stores never load fsspec

    if url.startswith(("s3://", "s3a://")):
        storage_options = client_options(storage_options)
    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"cannot open store {url!r}: {exc}; install the fsspec backend for this protocol "
            "(e.g. pip install 'scout-persist[s3]' for s3://)"
        ) from exc

    names = set(protocols(fs))
    if "file" in names:
        return LocalBackend(url, root)
    if "memory" in names:
        return MemoryBackend(url, root, fs)
    if names & {"s3", "s3a"}:
        return S3Backend(url, root, fs)
    return FsspecBackend(url, root, fs)


class Store:
    """Key/value access to one root URL; ``storage_options`` go to fsspec untouched."""

    def __init__(self, url: str | None = None, **storage_options: Any) -> None:
        given, url = url, store_url(url)
        self.url = url.rstrip("/") or "/"
        self.storage_options = storage_options
        # Where the root came from, for messages: the environment variable when its value is this URL.
        env = settings.store_url()
        self.origin = URL_VARIABLE if env and (given is None or given == env) else ""
        self.backend = open_backend(self.url, storage_options)
        self.root = self.backend.root

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    @property
    def is_local(self) -> bool:
        """Whether keys are files of this machine (``path(key)`` is an OS path)."""
        return self.backend.capabilities.local_paths

    @property
    def conditional_writes(self) -> bool:
        """Whether :meth:`put_if` / :meth:`delete_if` are atomic here (S3's If-Match / If-None-Match; memory://)."""
        return self.backend.capabilities.conditional_writes

    # -- addressing -------------------------------------------------------
    def path(self, key: str) -> str:
        """The backend path of ``key`` (for messages, and for OS calls where :attr:`is_local`)."""
        return self.backend.path(check_key(key, self.url))

    def key_of(self, path: str) -> str:
        """Inverse of :meth:`path` for a backend path under the root."""
        key = self.backend.key_of(path)
        if key is None:
            raise UnsafePathError(f"path {path!r} is outside the store root {self.url!r}")
        return key

    def child(self, key: str) -> Store:
        """A store rooted at ``key`` below this one, sharing the backend's connections (and its write boundary)."""
        key = check_key(key, self.url)
        sub = object.__new__(Store)
        sub.__dict__.update(self.__dict__)
        sub.backend = self.backend.child(key)
        sub.root = sub.backend.root
        sub.url = f"{self.url}/{key}"
        return sub

    def where(self, key: str) -> str:
        """``key`` as a full URL, for messages."""
        return f"{self.url}/{check_key(key, self.url)}" if key else self.url

    def safe_path(self, key: str, *, writing: bool = False) -> str:
        """The backend path of ``key`` (an OS path where ``capabilities.local_paths``), refused with UnsafePathError
        when it resolves through symlinks outside the store root — for callers that open it themselves."""
        return self.backend.check_inside(check_key(key, self.url), writing)

    def write_path(self, key: str, action: str = "writing") -> str:
        """The backend path of ``key`` for a write: UnsafePathError when it would land outside the store (local
        disks: through a symlink below the root)."""
        key = check_key(key, self.url)
        self.backend.check_write(key, action)
        return self.backend.path(key)

    # -- reading ------------------------------------------------------------
    def get(self, key: str, *, use: float | None = None) -> bytes:
        """The whole value stored under ``key``; KeyNotFound when absent.  ``use``: the read is a use of the entry,
        recorded where the backend keeps access times (local disks) when its last one is older than ``use`` seconds
        (:mod:`scout_persist.usage`)."""
        if use is not None:
            return self._call(key, "reading", lambda k: self.backend.get_used(k, use))
        return self._call(key, "reading", lambda k: self.backend.get(k))

    def get_versioned(self, key: str) -> Versioned:
        """The value of ``key`` with its version (what :meth:`put_if` expects) and its age by the store's own clock
        when the store tells it with the value (S3; elsewhere see :meth:`age`); one request.  KeyNotFound when
        absent."""
        return self._call(key, "reading", lambda k: self.backend.get_versioned(k))

    def exists(self, key: str) -> bool:
        """Whether an entry or folder exists at ``key`` (never reads a payload)."""
        return self._call(key, "checking", lambda k: self.backend.exists(k))

    def isdir(self, key: str) -> bool:
        return self._call(key, "checking", lambda k: self.backend.isdir(k))

    def size(self, key: str) -> int:
        """Stored size of the entry in bytes; KeyNotFound when absent."""
        return self._call(key, "sizing", lambda k: self.backend.size(k))

    def mtime(self, key: str) -> float | None:
        """Modification time as epoch seconds, or None when the backend does not say."""
        return self._call(key, "reading the time of", lambda k: self.backend.mtime(k))

    def age(self, key: str) -> float | None:
        """Seconds since ``key`` was last written, by the store's own clock (None when it cannot tell)."""
        return self._call(key, "reading the age of", lambda k: self.backend.age(k), retry=False)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """A streaming reader for ``key``; KeyNotFound when absent."""
        if mode not in ("rb", "r"):
            raise ValueError(f"Store.open mode {mode!r}: only 'rb' reading; use Store.writer() to write atomically")
        return self._call(key, "opening", lambda k: self.backend.open(k))

    def map(self, key: str) -> mmap.mmap | bytearray | None:
        """A private, copy-on-write memory map of the entry on a local disk (its pages are read on first touch; writes
        to it never reach the file); None on other backends.  KeyNotFound when absent."""
        return self._call(key, "mapping", lambda k: self.backend.map(k), retry=False)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every entry key below ``prefix`` (recursive, files only, writes in flight hidden), sorted."""
        keys = self._call(prefix, "listing", lambda k: self.backend.find(k))
        return iter(sorted(k for k in keys if not posixpath.basename(k).startswith(TEMP_PREFIX)))

    # (below the method list(), the type is builtins.list)
    def ls(self, prefix: str = "") -> builtins.list[str]:
        """Names directly below ``prefix`` (entries and folders), sorted."""
        found = self.list_dir(prefix)
        return sorted(name for name, _ in found)

    def list_dir(self, prefix: str = "") -> builtins.list[tuple[str, tuple[bool, int, float | None]]]:
        """``(name, (is_dir, size, mtime))`` of everything directly below ``prefix`` (writes in flight hidden)."""
        found = self._call(prefix, "listing", lambda k: self.backend.list_dir(k))
        return [item for item in found if not item[0].startswith(TEMP_PREFIX)]

    def tree_size(self, prefix: str) -> int:
        """Total bytes of the entries below ``prefix``."""
        return self._call(prefix, "sizing", lambda k: self.backend.tree_size(k))

    # -- writing ------------------------------------------------------------
    def put(self, key: str, data: bytes, *, durable: bool | Sync = True) -> None:
        """Store ``data`` atomically: readers see the old value or the whole new one.  ``durable``: what of it must
        be on the disk when this returns (:class:`~.backend.Sync`: True, the default, is all of it; False, none: a
        write a crash may lose, e.g. a job's ``start``)."""
        self._write(key, "writing", lambda k: self.backend.put(k, data, durable))

    def create(self, key: str, data: bytes, *, durable: bool | Sync = True) -> bool:
        """Exclusive create: store ``data`` only if ``key`` is absent; True when this call created it.

        Local: Ruby lockfile's hard-link protocol (never a partial entry); memory and S3: a conditional write
        (``If-None-Match: *``) that tells a lost reply of our own create from someone else's entry.
        """
        return self._write(key, "creating", lambda k: self.backend.create(k, bytes(data), durable), retry=False)

    def put_if(self, key: str, data: bytes, expect: str | None) -> str:
        """Store ``data`` only if ``key`` still has version ``expect`` (``ABSENT``: only if it is absent); returns
        the new version, raises ``Conflict`` when the precondition does not hold.  Idempotent under ambiguous
        replies (our own bytes read back count as success)."""
        return self._write(key, "writing", lambda k: self.backend.put_if(k, bytes(data), expect), retry=False)

    def delete_if(self, key: str, version: str) -> bool:
        """Delete ``key`` only if it still has ``version``; False when it changed or is gone."""
        return self._write(key, "deleting", lambda k: self.backend.delete_if(k, version), prepare=False)

    def delete(self, key: str, recursive: bool = False) -> None:
        """Remove ``key`` (a folder too when ``recursive``); absent keys are ignored."""
        if not check_key(key) and not recursive:
            raise UnsafePathError(f"deleting the root of store {self.url!r} needs recursive=True")
        key = check_key(key, self.url)
        if key:
            self.backend.check_write(key, "deleting")
        self._call(key, "deleting", lambda k: self.backend.delete(k, recursive))

    @contextmanager
    def writer(self, key: str, *, durable: bool | Sync = True) -> Iterator[IO[bytes]]:
        """A streaming writer: the content appears at ``key`` atomically when the block ends without error.

        If the block raises, nothing is published and the old value (if any) stays. Memory use is bounded on
        every backend except memory:// (which holds the value in memory anyway).
        """
        key = check_key(key, self.url)
        self.backend.check_write(key, "writing")
        self._call(key, "writing", lambda k: self.backend.prepare(k), retry=False)
        in_block = False
        try:
            with self.backend.writer(key, durable) as fh:
                in_block = True
                yield fh
                in_block = False
        except Exception as exc:
            # The caller's own exception passes unchanged; publishing failures are translated.
            translated = exc if in_block else self._translated(exc, key, "writing")
            if translated is exc:
                raise
            raise translated from exc

    def touch(self, key: str) -> bool:
        """Renew ``key``'s modification time without rewriting it (local files); False where the backend cannot."""
        return self._call(key, "touching", lambda k: self.backend.touch(k), retry=False)

    def forget(self, key: str) -> None:
        """Drop what the backend cached of ``key`` (listings): another process may have changed it."""
        self.backend.forget(check_key(key, self.url))

    # -- multipart uploads ----------------------------------------------------
    def incomplete_uploads(self, older_than: float = 0.0) -> builtins.list[Upload]:
        """Multipart uploads under this store's root never completed nor aborted (e.g. their writer was killed with
        -9), idle for more than ``older_than`` seconds; least recently active first.  Keep ``older_than`` well above
        the longest pause of a live writer (hours).  StorageError on stores without multipart uploads."""
        return self._call("", "listing incomplete uploads of", lambda k: self.backend.incomplete_uploads(older_than))

    def abort_upload(self, upload: Upload) -> bool:
        """Abort an incomplete multipart upload (its parts are freed); False when it is already gone."""
        key = check_key(upload.key, self.url)
        return self._call(key, "aborting the multipart upload of", lambda k: self.backend.abort_upload(upload))

    # -- the boundary: retries and error translation, once ------------------------------------------------
    def _call(self, key: str, action: str, operation: Callable[[str], T], retry: bool = True) -> T:
        key = check_key(key, self.url)
        try:
            if retry and self.backend.capabilities.remote:
                return self._retry(lambda: operation(key))
            return operation(key)
        except Exception as exc:
            translated = self._translated(exc, key, action)
            if translated is exc:
                raise
            raise translated from exc

    def _write(
        self, key: str, action: str, operation: Callable[[str], T], retry: bool = True, prepare: bool = True
    ) -> T:
        key = check_key(key, self.url)
        self.backend.check_write(key, action)

        def write(k: str) -> T:
            if prepare:
                self.backend.prepare(k)
            return operation(k)

        return self._call(key, action, write, retry=retry)

    def _retry(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; on a transient error of a remote backend wait (exponential backoff) and try again."""
        if not self.backend.capabilities.remote:
            return operation()
        return faults.retry(operation)

    def _translated(self, exc: BaseException, key: str, action: str) -> BaseException:
        if isinstance(exc, ScoutPersistError):
            return exc
        if isinstance(exc, (NotADirectoryError, FileExistsError)) and action in ("writing", "creating"):
            return StorageError(
                f"{action} {self.where(key)!r} failed: a parent of {key!r} is an entry, not a folder; "
                "choose a key that does not nest under an existing entry"
            )
        hint = self.backend.explain(exc)  # credentials, a missing bucket, an endpoint out of reach
        if isinstance(exc, FileNotFoundError) and action in ("writing", "creating"):
            fix = hint or f"create the store's root {self.url!r}, or point the store at a folder that exists"
            return StorageError(
                f"{action} {self.where(key)!r} failed: its folder is missing on the backend ({exc}); {fix}"
            )
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # (reads: a miss, whatever the reason)
            return KeyNotFound(f"no entry {key!r} in store {self.url!r} ({action} {self.where(key)!r})")
        if hint:
            return StorageError(f"{action} {self.where(key)!r} failed: {hint} ({type(exc).__name__}: {exc})")
        if isinstance(exc, IsADirectoryError) and action in ("writing", "creating"):
            return StorageError(f"{action} {self.where(key)!r} failed: {key!r} is a folder; delete it first")
        if isinstance(exc, OSError) and exc.errno in faults.DENIED and action in ("writing", "creating", "deleting"):
            origin = f" (from ${self.origin})" if self.origin else ""
            fix = f"set {self.origin} to" if self.origin else "open the store on"
            return StorageError(
                f"{action} {self.where(key)!r} failed: {exc.strerror or exc}: the store root {self.url!r}{origin} "
                f"is not writable here (or a folder in it is not); {fix} a folder this user may write, or fix "
                "the permissions"
            )
        if isinstance(exc, IsADirectoryError) and action == "deleting":
            return StorageError(f"{self.where(key)!r} is a folder; pass recursive=True to delete it with its content")
        if isinstance(exc, IsADirectoryError):
            return KeyNotFound(f"{key!r} in store {self.url!r} is a folder, not an entry; name a file below it")
        if faults.is_backend_error(exc):
            return StorageError(f"{action} {self.where(key)!r} failed: {type(exc).__name__}: {exc}")
        return exc


_SHARED: dict[tuple[Any, ...], Store] = {}
_SHARED_GUARD = threading.Lock()


def shared_store(url: str | None = None, **storage_options: Any) -> Store:
    """One :class:`Store` per root and options in this process (file systems and their connections are costly to
    build).  ``None`` is the default root (``$SCOUT_PERSIST_URL``, else ``~/.scout``), resolved at each call."""
    key = (url or None, None if url else settings.store_url(), tuple(sorted(storage_options.items())))
    with _SHARED_GUARD:
        store = _SHARED.get(key)
        if store is None:
            store = _SHARED[key] = Store(url or None, **storage_options)
        return store


__all__ = ["Store", "open_backend", "shared_store"]
