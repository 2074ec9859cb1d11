"""What a storage backend is: a handful of primitives over keys below one root, and the capabilities it declares.

A backend implements reading (``get``, ``get_versioned``, ``open``, ``exists``, ``isdir``, ``size``, ``mtime``,
``list_dir``, ``find``), atomic writing (``put``, ``writer``, ``create``) and ``delete``; where it can, conditional
writes (``put_if``/``delete_if``) and multipart-upload housekeeping.  Keys reach it already checked; it raises the
builtin exceptions (``FileNotFoundError``, ``FileExistsError``, ``OSError``...), which :class:`~.facade.Store`
translates, retries and names once for every backend.  ``tests/`` runs the conformance suite
(:class:`scout_persist.testing.StoreConformance`) on each; a third-party backend runs it the same way.
"""

from __future__ import annotations

import enum
import hashlib
import os
import posixpath
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .. import settings
from ..errors import ScoutPersistError, StorageError

if TYPE_CHECKING:
    import mmap

# Name prefix of a write in flight (local files and the temp-key fallback); listings hide it.
TEMP_PREFIX = ".tmp_mv."
ABSENT = None  # put_if(..., expect=ABSENT): the entry must not exist


class Conflict(ScoutPersistError, FileExistsError):
    """A conditional write or delete found the entry changed (or present / absent) since it was read.

    ``read``: the backend read the entry when it refused the write (S3 reads it back anyway, to tell a lost reply of
    its own write; memory:// has it at hand); ``current`` is then what it found (None: absent by then), so the caller
    need not read it again."""

    def __init__(self, message: str, *, current: Versioned | None = None, read: bool = False) -> None:
        super().__init__(message)
        self.current = current
        self.read = read


@dataclass(frozen=True)
class Versioned:
    """An entry's ``data``, its ``version`` (what ``put_if`` expects), and its age in seconds by the store's own
    clock when the store tells it (S3: its ``Date`` reply header minus ``Last-Modified``; local: a probe file)."""

    data: bytes
    version: str
    age: float | None


@dataclass(frozen=True)
class Upload:
    """An incomplete multipart upload: its store ``key``, the backend's ``upload_id``, when it was begun
    (``initiated``) and when it last received a part (``last_active``, ``initiated`` when it has none); epoch
    seconds by the backend's clock, None when unknown."""

    key: str
    upload_id: str
    initiated: float | None
    last_active: float | None


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, for callers that choose a strategy (never a backend's name)."""

    local_paths: bool = False  # keys are files of this machine: os calls work on path(key)
    conditional_writes: bool = False  # put_if / delete_if are atomic (If-Match / If-None-Match)
    multipart: bool = False  # large writes stream as multipart uploads a killed writer can leave behind
    atomic_rename: bool = False  # a finished temporary file is renamed over the entry
    remote: bool = False  # requests cross a network: transient errors are retried
    folders: bool = False  # real folders: an entry cannot nest under an entry, nor replace a folder
    names: tuple[str, ...] = field(default=())  # fsspec protocols, for messages


class Sync(str, enum.Enum):
    """What of a write must be on the disk (fsync) before it returns, on stores where that is a choice (local disks;
    an object store's PUT is durable when it returns).  Writers pass it as ``durable=``: ``True`` is ``ALL``,
    ``False`` is ``NONE``.  Which kind of write needs which, and the crash-state evidence for it, is in
    docs/reliability.md ("Durability: what is fsynced and why")."""

    NONE = "none"  # a power cut may lose the write, or leave its name on empty or torn bytes: for bytes every
    #                reader checks (a checksum in .info) or a write that only says work is under way
    DATA = "data"  # the bytes reach the disk before the name does: no name ever leads to torn bytes (the write
    #                itself may be lost): for bytes read as they are (Ruby's readers) that can be recomputed
    ALL = "all"  # DATA, and the name (with any folder made for it) is on the disk when the write returns: for what
    #              cannot be recomputed (registry versions, run records)

    @classmethod
    def of(cls, durable: bool | Sync) -> Sync:
        """The level a writer asked for, as this process's durability (:func:`durability`) allows it."""
        if durability() == "fast":
            return cls.NONE
        if isinstance(durable, Sync):
            return durable
        return cls.ALL if durable else cls.NONE


DURABILITY_VARIABLE = settings.DURABILITY.name


def durability() -> str:
    """``safe`` (default): writes are synced as their kind needs (:class:`Sync`); ``fast``: nothing is, it is left to
    the OS.

    Either way writes are atomic and every result is checksummed, so a power cut in ``fast`` mode can lose recent
    jobs (they are recomputed) but never serves a torn one to our readers (Ruby's, which check nothing, may)."""
    return settings.durability()


def content_version(data: bytes) -> str:
    """What S3 gives a single-PUT object as ETag: the quoted md5 of its bytes (backends without one mimic it)."""
    return '"' + hashlib.md5(data).hexdigest() + '"'


def temp_name(path: str) -> str:
    folder, name = posixpath.split(path)
    # Keep the name under the 255-byte file-name limit of common file systems.
    tail = name.encode()[:200].decode(errors="ignore")
    # 128 bits from the OS, never from `random`: a flow that calls random.seed(0) would give two processes the same
    # temporary names, and one's rename would publish the other's half-written file
    return posixpath.join(folder, f"{TEMP_PREFIX}{os.urandom(16).hex()}.{tail}")


class Backend(ABC):
    """Primitives over keys below ``root`` (a backend path); ``url`` names the store in messages."""

    capabilities = Capabilities()
    kind_name = "generic"  # for messages only

    def __init__(self, url: str, root: str) -> None:
        self.url = url
        self.root = root.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- addressing -----------------------------------------------------------------------------------------
    def path(self, key: str) -> str:
        """The backend path of (checked) ``key``."""
        return f"{self.root}/{key}" if key else self.root

    def key_of(self, path: str) -> str | None:
        """The key of a backend path below the root ('' for the root), None when it is not below it."""
        path = path.rstrip("/")
        if path == self.root:
            return ""
        prefix = self.root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else None

    def child(self, key: str) -> Backend:
        """This backend rooted at ``key`` (sharing connections and caches)."""
        sub = object.__new__(type(self))
        sub.__dict__.update(self.__dict__)
        sub.root = self.path(key)
        sub.url = f"{self.url}/{key}"
        return sub

    # -- reading ----------------------------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> bytes: ...

    def get_versioned(self, key: str) -> Versioned:
        data = self.get(key)
        return Versioned(data, content_version(data), None)

    def get_used(self, key: str, every: float) -> bytes:
        """``get``, recording a use of the entry when its last one is older than ``every`` seconds, where the
        backend keeps access times (local disks); elsewhere a plain ``get``."""
        return self.get(key)

    @abstractmethod
    def open(self, key: str) -> IO[bytes]: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def isdir(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def mtime(self, key: str) -> float | None: ...

    @abstractmethod
    def find(self, prefix: str) -> list[str]:
        """Keys of every entry below ``prefix`` (recursive, files only), unsorted; [] when absent."""

    @abstractmethod
    def list_dir(self, prefix: str) -> list[tuple[str, tuple[bool, int, float | None]]]:
        """``(name, (is_dir, size, mtime))`` of everything directly below ``prefix``; [] when absent."""

    def tree_size(self, prefix: str) -> int:
        """Total bytes of the entries below ``prefix``."""
        return sum(self.size(k) for k in self.find(prefix))

    # -- writing ----------------------------------------------------------------------------------------------
    @abstractmethod
    def put(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        """Store ``data`` atomically: readers see the old value or the whole new one.  ``durable``: what must be on
        the disk before this returns (:class:`Sync`; True: all of it), where the backend can be asked to."""

    @abstractmethod
    def writer(self, key: str, durable: bool | Sync = True) -> AbstractContextManager[IO[bytes]]:
        """A streaming writer whose content appears at ``key`` atomically when its block ends without error."""

    def create(self, key: str, data: bytes, durable: bool | Sync = True) -> bool:
        """Exclusive create; True when this call created the entry.  Backends with conditional writes get it as
        :meth:`put_if` with the entry required absent (which recognises a lost reply of its own create)."""
        try:
            self.put_if(key, data, ABSENT)
        except Conflict:
            return False
        return True

    @abstractmethod
    def delete(self, key: str, recursive: bool = False) -> None:
        """Remove ``key`` (a folder too when ``recursive``); absent keys are ignored."""

    def put_if(self, key: str, data: bytes, expect: str | None) -> str:
        raise StorageError(
            f"conditional write of store {self.url!r}: this backend has no atomic conditional writes; leases "
            "there use lock files instead"
        )

    def delete_if(self, key: str, version: str) -> bool:
        raise StorageError(f"conditional delete of store {self.url!r}: this backend has no atomic conditional writes")

    def incomplete_uploads(self, older_than: float = 0.0) -> list[Upload]:
        raise StorageError(
            f"listing incomplete uploads of store {self.url!r}: a {self.kind_name} store has no multipart uploads "
            "(only object stores "
            "stream large writes as multipart uploads that a killed writer can leave behind); nothing to list"
        )

    def abort_upload(self, upload: Upload) -> bool:
        raise StorageError(f"aborting an upload in store {self.url!r}: it has no multipart uploads")

    def map(self, key: str) -> mmap.mmap | bytearray | None:
        """A private, copy-on-write memory map of the entry (local disks); None where the backend cannot."""
        return None

    def touch(self, key: str) -> bool:
        """Renew ``key``'s modification time without rewriting it; False when this backend cannot."""
        return False

    # -- hooks ------------------------------------------------------------------------------------------------
    def check_write(self, key: str, action: str) -> None:
        """Refuse a write that would land outside the store (local disks: through symlinks below the root)."""

    def check_inside(self, key: str, writing: bool) -> str:
        """The backend path of ``key``; local disks refuse one that resolves through links outside the root."""
        return self.path(key)

    def age(self, key: str) -> float | None:
        """Seconds since ``key`` was last written, by the store's own clock; None when it cannot tell."""
        return None

    def forget(self, key: str) -> None:
        """Drop cached knowledge of ``key`` (listings): another process may have changed it."""

    def prepare(self, key: str) -> None:
        """Make the parent folders a write of ``key`` needs (backends with real folders)."""

    def explain(self, exc: BaseException) -> str | None:
        """What ``exc`` means for a user of this backend and how to fix it (credentials, a missing bucket, an
        endpoint out of reach), for the store's message; None when there is nothing to add."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"backend": type(self).__name__, "url": self.url, "capabilities": self.capabilities}
