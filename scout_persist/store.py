"""One store over any fsspec URL: a handful of primitives, keys relative to a root.

Keys are '/'-separated paths relative to the store root (``var/jobs/Baking/whisk_eggs/Default``).
A key may never escape the root: absolute keys, '..' segments and NUL bytes are refused. On local disks no write
(put, writer, create, delete, and the lock files of ``locks.py``) lands outside the root through a symlink either:
the folder of the target, with its symlinks resolved, must stay inside the real path of the root. The root itself
is the user's choice and may be a symlink (it is resolved once per Store); links *below* it are the hazard, e.g. a
``var/jobs/<Workflow>`` link that would send whole jobs elsewhere. Only the components below the root are looked
at (one ``lstat`` each), and the full ``realpath`` is taken only when one of them is a link.

Writes are atomic on every backend: a local file is written under a temporary name in the same folder and
renamed; an object appears on an object store only when its single put (or multipart upload) completes.
Backend errors are translated here: ``KeyNotFound`` for a missing entry, ``StorageError`` for anything
else, each naming the store URL and key, with the backend's exception chained.
"""

from __future__ import annotations

import datetime
import errno
import io
import logging
import os
import posixpath
import random
import stat
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Callable, Iterator, TypeVar

from .errors import KeyNotFound, ScoutPersistError, StorageError, UnsafePathError

DEFAULT_URL = "~/.scout"
# Name prefix of a write in flight (local files and the temp-key fallback); listings hide it.
TEMP_PREFIX = ".tmp_mv."
# Object-store writes smaller than this are buffered and sent as one PUT; larger ones stream as a
# multipart upload that is completed only when the writer's block ends without error.
SINGLE_PUT_MAX = 8 << 20
# Store.put sends a value already in memory as one PUT up to this size (where s3fs would switch to multipart).
PUT_MULTIPART_MIN = 100 << 20
RETRIES = 4
RETRY_BASE_DELAY = 0.1

T = TypeVar("T")
_MEMORY_CREATE = threading.Lock()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """An incomplete multipart upload: its store ``key``, the backend's ``upload_id``, when it was begun
    (``initiated``) and when it last received a part (``last_active``, ``initiated`` when it has none); epoch
    seconds by the backend's clock, None when unknown."""

    key: str
    upload_id: str
    initiated: float | None
    last_active: float | None


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
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(
                f"cannot open store {self.url!r}: {exc}; install the fsspec backend for this protocol "
                "(e.g. pip install 'scout-persist[s3]' for s3://)"
            ) from exc
        self.root = root.rstrip("/")
        # Local writes must stay inside the real path of this folder (kept by child stores: their writes too).
        self._boundary = self.root
        self._real_boundary: str | None = None
        protocols = _protocols(self.fs)
        self.is_local = "file" in protocols
        self.kind = (
            "local" if self.is_local else "memory" if "memory" in protocols
            else "s3" if {"s3", "s3a"} & set(protocols) else "other"
        )

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

    def write_path(self, key: str, action: str = "writing") -> str:
        """The backend path of ``key`` for a write; on local disks UnsafePathError when its folder resolves
        (through symlinks below the root) outside the real path of the store root."""
        path = self.path(key)
        if self.is_local:
            self._check_inside(posixpath.dirname(path), key, action)
        return path

    def _check_inside(self, folder: str, key: str, action: str) -> None:
        boundary = self._boundary.rstrip("/")
        if folder != boundary and not folder.startswith(boundary + "/"):
            raise UnsafePathError(f"{action} {self.where(key)!r} refused: {folder!r} is not below the store root")
        current = boundary
        for part in filter(None, folder[len(boundary):].split("/")):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return  # the rest does not exist yet: the write creates real folders below here
            if stat.S_ISLNK(mode):
                break  # a link below the root: judge where the whole folder really is
        else:
            return
        real = os.path.realpath(folder)
        root = self._real_root()
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise UnsafePathError(
                f"{action} {self.where(key)!r} refused: its folder {folder!r} resolves through the symlink "
                f"{current!r} to {real!r}, outside the store root {root!r}; links below the store root may not lead "
                "out of it: link the root itself instead (or point SCOUT_PERSIST_URL at the real folder)"
            )

    def _real_root(self) -> str:
        real = self._real_boundary
        if real is None:
            real = os.path.realpath(self._boundary or "/")
            if os.path.isdir(real):  # cache once the root exists (a root created later may still become a link)
                self._real_boundary = real
        return real

    def where(self, key: str) -> str:
        """``key`` as a full URL, for messages."""
        return f"{self.url}/{check_key(key, self.url)}" if key else self.url

    # -- primitives ---------------------------------------------------------
    def get(self, key: str) -> bytes:
        """The whole value stored under ``key``; KeyNotFound when absent."""
        path = self.path(key)
        with self._translate(key, "reading"):
            if self.is_local:
                with open(path, "rb") as fh:
                    return fh.read()
            if self.kind == "s3":
                # One GET: s3fs would otherwise HEAD first to decide on a concurrent ranged download.
                return self._retry(lambda: self.fs.cat_file(path, max_concurrency=1))
            return self._retry(lambda: self.fs.cat_file(path))

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` atomically: readers see the old value or the whole new one."""
        path = self.path(key)
        if self.kind == "memory" or (self.kind == "s3" and len(data) < PUT_MULTIPART_MIN):
            with self._translate(key, "writing"):
                self._makedirs(posixpath.dirname(path))
                # memory: the value is assigned whole; S3: one PUT.
                self._retry(lambda: self.fs.pipe_file(path, bytes(data)))
                self._forget(path)
            return
        # Local files, and S3 values too large for one PUT: the writer's multipart upload is aborted on every
        # failure path (s3fs's own multipart pipe_file aborts on Exception only, not on KeyboardInterrupt/SystemExit).
        with self.writer(key) as fh:
            fh.write(data)

    def create(self, key: str, data: bytes) -> bool:
        """Exclusive create: store ``data`` only if ``key`` is absent; True when this call created it.

        Local: a complete temporary file hard-linked to the name (never a partial entry), O_EXCL where
        hard links are unsupported; memory: check-and-set under a lock; S3: a conditional PUT
        (``If-None-Match: *``). Not retried: a lost reply would make a retry report someone else's entry.
        """
        path = self.write_path(key, "creating")
        with self._translate(key, "creating"):
            self._makedirs(posixpath.dirname(path))
            if self.is_local:
                return _create_local(path, bytes(data))
            if self.kind == "memory":
                with _MEMORY_CREATE:
                    if self.fs.exists(path):
                        return False
                    self.fs.pipe_file(path, bytes(data))
                    return True
            try:
                if self.kind == "s3":
                    self.fs.pipe_file(path, bytes(data), mode="create")
                else:
                    with self.fs.open(path, "xb") as fh:
                        fh.write(data)
            except FileExistsError:
                return False
            except (NotImplementedError, ValueError) as exc:
                raise StorageError(
                    f"store {self.url!r} ({type(self.fs).__name__}) has no exclusive create for {key!r}; "
                    "locks and first-writer-wins need a local, memory:// or s3:// store"
                ) from exc
            finally:
                self._forget(path)
            return True

    def exists(self, key: str) -> bool:
        """Whether an entry or folder exists at ``key`` (never reads a payload)."""
        path = self.path(key)
        with self._translate(key, "checking"):
            if self.is_local:
                return os.path.exists(path)
            self._forget(path)
            return bool(self._retry(lambda: self.fs.exists(path)))

    def isdir(self, key: str) -> bool:
        path = self.path(key)
        with self._translate(key, "checking"):
            if self.is_local:
                return os.path.isdir(path)
            self._forget(path)
            return bool(self.fs.isdir(path))

    def delete(self, key: str, recursive: bool = False) -> None:
        """Remove ``key`` (a folder too when ``recursive``); absent keys are ignored."""
        if not check_key(key) and not recursive:
            raise UnsafePathError(f"deleting the root of store {self.url!r} needs recursive=True")
        path = self.write_path(key, "deleting") if check_key(key) else self.path(key)
        with self._translate(key, "deleting"):
            try:
                if self.is_local and os.path.islink(path):
                    os.unlink(path)  # the link itself, never what it points at
                    return
                if self.is_local and not recursive and os.path.isdir(path):
                    raise IsADirectoryError(errno.EISDIR, "is a folder", path)
                self.fs.rm(path, recursive=recursive)
            except FileNotFoundError:
                pass
            except IsADirectoryError as exc:
                raise StorageError(
                    f"{self.where(key)!r} is a folder; pass recursive=True to delete it with its content"
                ) from exc
            finally:
                self._forget(path)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every entry key below ``prefix`` (recursive, files only, writes in flight hidden), sorted."""
        path = self.path(prefix)
        with self._translate(prefix, "listing"):
            self._forget(path)
            try:
                found = self.fs.find(path, withdirs=False)
            except FileNotFoundError:
                return iter(())
        keys = (self.key_of(p) for p in found)
        return iter(sorted(k for k in keys if not posixpath.basename(k).startswith(TEMP_PREFIX)))

    def ls(self, prefix: str = "") -> list[str]:
        """Names directly below ``prefix`` (entries and folders), sorted."""
        path = self.path(prefix)
        with self._translate(prefix, "listing"):
            self._forget(path)
            try:
                names = self.fs.ls(path, detail=False)
            except (FileNotFoundError, NotADirectoryError):
                return []
        names = (posixpath.basename(n.rstrip("/")) for n in names)
        return sorted(n for n in names if not n.startswith(TEMP_PREFIX))

    def size(self, key: str) -> int:
        """Stored size of the entry in bytes; KeyNotFound when absent."""
        path = self.path(key)
        with self._translate(key, "sizing"):
            if self.is_local:
                return os.stat(path).st_size
            self._forget(path)
            return int(self._retry(lambda: self.fs.size(path)))

    def mtime(self, key: str) -> float | None:
        """Modification time as epoch seconds, or None when the backend does not say."""
        path = self.path(key)
        with self._translate(key, "reading the time of"):
            if self.is_local:
                return os.stat(path).st_mtime
            self._forget(path)
            info = self.fs.info(path)
        value = info.get("mtime") or info.get("LastModified") or info.get("created")
        if value is None:
            return None
        return value.timestamp() if hasattr(value, "timestamp") else float(value)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """A streaming reader for ``key``; KeyNotFound when absent."""
        if mode not in ("rb", "r"):
            raise ValueError(f"Store.open mode {mode!r}: only 'rb' reading; use Store.writer() to write atomically")
        path = self.path(key)
        with self._translate(key, "opening"):
            if self.is_local:
                if os.path.isdir(path):
                    raise IsADirectoryError(errno.EISDIR, "is a folder", path)
                return open(path, "rb")
            if self.kind == "memory":
                # memory:// hands every reader the same shared buffer; give each its own position.
                return io.BytesIO(self.fs.cat_file(path))
            self._forget(path)
            fh = self._retry(lambda: self.fs.open(path, "rb"))
            # s3fs opens a folder prefix as an empty file; its details (already fetched) tell.
            details = getattr(fh, "details", None)
            if isinstance(details, dict) and details.get("type") == "directory":
                fh.close()
                raise IsADirectoryError(errno.EISDIR, "is a folder", path)
            return fh

    def map(self, key: str):
        """A private, copy-on-write memory map of the entry on a local disk (its pages are read on first touch; writes
        to it never reach the file); None on other backends.  KeyNotFound when absent."""
        if not self.is_local:
            return None
        import mmap

        path = self.path(key)
        with self._translate(key, "mapping"):
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    return bytearray()
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        """A streaming writer: the content appears at ``key`` atomically when the block ends without error.

        If the block raises, nothing is published and the old value (if any) stays. Memory use is bounded
        on every backend except memory:// (which holds the value in memory anyway).
        """
        path = self.write_path(key)
        with self._translate(key, "writing"):
            self._makedirs(posixpath.dirname(path))
        if self.is_local:
            publish = _local_writer(path)
        elif self.kind == "memory":
            publish = _memory_writer(self.fs, path)
        elif self.kind == "s3":
            publish = _ObjectWriter(self, key, path).session()
        else:
            publish = _temp_key_writer(self.fs, path)
        in_block = False
        try:
            with publish as fh:
                in_block = True
                yield fh
                in_block = False
        except Exception as exc:
            # The caller's own exception passes unchanged; publishing failures are translated.
            translated = exc if in_block else self._translated(exc, key, "writing")
            if translated is exc:
                raise
            raise translated from exc
        finally:
            self._forget(path)

    # -- multipart uploads ----------------------------------------------------
    def incomplete_uploads(self, older_than: float = 0.0) -> list[Upload]:
        """Multipart uploads under this store's root, never completed nor aborted (e.g. their writer was killed
        with -9), idle for more than ``older_than`` seconds; least recently active first.

        Idle means since the upload's last part (else since it was begun), by the backend's clock compared with
        ours: a writer still sending parts is never idle, and a clock that is off shifts ages by its error, so keep
        ``older_than`` well above the longest pause of a live writer (hours). StorageError on stores without
        multipart uploads. (moto's server reports every upload as begun in 2010; part times still give real ages.)
        """
        bucket, prefix = self._multipart_scope("listing incomplete uploads of")
        now = time.time()
        found: list[Upload] = []
        markers: dict[str, str] = {}
        with self._translate("", "listing incomplete uploads of"):
            while True:
                page = self._retry(lambda: self.fs.call_s3(
                    "list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers))
                for u in page.get("Uploads") or []:
                    initiated = _epoch(u.get("Initiated"))
                    if older_than > 0 and initiated is not None and now - initiated < older_than:
                        continue  # begun too recently to be idle that long: no need to list its parts
                    last = self._last_part_time(bucket, u["Key"], u["UploadId"])
                    active = max(t for t in (initiated, last) if t is not None) if (initiated or last) else None
                    if older_than > 0 and (active is None or now - active < older_than):
                        continue
                    found.append(Upload(u["Key"][len(prefix):], u["UploadId"], initiated, active))
                if not page.get("IsTruncated"):
                    break
                markers = {"KeyMarker": page.get("NextKeyMarker", ""),
                           "UploadIdMarker": page.get("NextUploadIdMarker", "")}
        return sorted(found, key=lambda u: (u.last_active or 0.0, u.key))

    def _last_part_time(self, bucket: str, key: str, upload_id: str) -> float | None:
        newest: float | None = None
        marker = 0
        while True:
            try:
                page = self._retry(lambda: self.fs.call_s3(
                    "list_parts", Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker))
            except FileNotFoundError:  # completed or aborted since the listing
                return newest
            for part in page.get("Parts") or []:
                t = _epoch(part.get("LastModified"))
                if t is not None and (newest is None or t > newest):
                    newest = t
            if not page.get("IsTruncated"):
                return newest
            marker = int(page.get("NextPartNumberMarker") or 0)

    def abort_upload(self, upload: Upload) -> bool:
        """Abort an incomplete multipart upload (its parts are freed); False when it is already gone."""
        bucket, prefix = self._multipart_scope("aborting an upload in")
        key = check_key(upload.key, self.url)
        try:
            with self._translate(key, "aborting the multipart upload of"):
                self._retry(lambda: self.fs.call_s3(
                    "abort_multipart_upload", Bucket=bucket, Key=prefix + key, UploadId=upload.upload_id))
        except FileNotFoundError:  # NoSuchUpload: completed or aborted meanwhile
            return False
        return True

    def _multipart_scope(self, action: str) -> tuple[str, str]:
        """(bucket, key prefix of the root) of an S3 store; StorageError elsewhere."""
        if self.kind != "s3":
            raise StorageError(
                f"{action} store {self.url!r}: a {self.kind} store has no multipart uploads (only s3:// stores "
                "stream large writes as multipart uploads that a killed writer can leave behind); nothing to list "
                "or abort here"
            )
        bucket, key, _ = self.fs.split_path(self.root)
        return bucket, (key.rstrip("/") + "/" if key else "")

    # -- boundary helpers ---------------------------------------------------
    @contextmanager
    def _translate(self, key: str, action: str) -> Iterator[None]:
        """Turn backend exceptions into KeyNotFound / StorageError naming this store and key."""
        try:
            yield
        except Exception as exc:
            translated = self._translated(exc, key, action)
            if translated is exc:
                raise
            raise translated from exc

    def _translated(self, exc: BaseException, key: str, action: str) -> BaseException:
        if isinstance(exc, ScoutPersistError):
            return exc
        if isinstance(exc, (NotADirectoryError, FileExistsError)) and action in ("writing", "creating"):
            return StorageError(
                f"{action} {self.where(key)!r} failed: a parent of {key!r} is an entry, not a folder; "
                "choose a key that does not nest under an existing entry"
            )
        if isinstance(exc, FileNotFoundError) and action in ("writing", "creating"):
            return StorageError(f"{action} {self.where(key)!r} failed: its folder is missing on the backend ({exc})")
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            return KeyNotFound(f"no entry {key!r} in store {self.url!r} ({action} {self.where(key)!r})")
        if isinstance(exc, IsADirectoryError) and action in ("writing", "creating"):
            return StorageError(f"{action} {self.where(key)!r} failed: {key!r} is a folder; delete it first")
        if isinstance(exc, IsADirectoryError):
            return KeyNotFound(f"{key!r} in store {self.url!r} is a folder, not an entry; name a file below it")
        if _is_backend_error(exc):
            return StorageError(f"{action} {self.where(key)!r} failed: {type(exc).__name__}: {exc}")
        return exc

    def _retry(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; on a transient object-store error wait (exponential backoff) and try again."""
        if self.is_local:
            return operation()
        for attempt in range(RETRIES):
            try:
                return operation()
            except Exception as exc:
                if attempt == RETRIES - 1 or not _is_transient(exc):
                    raise
                time.sleep(RETRY_BASE_DELAY * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _forget(self, path: str) -> None:
        # Another process may have changed the store since fsspec cached a listing: ask the backend again.
        if not self.is_local:
            self.fs.invalidate_cache(path)

    def _makedirs(self, path: str) -> None:
        if self.is_local or self.kind == "memory":
            self.fs.makedirs(path, exist_ok=True)
        elif self.kind == "other":
            # Backends with real folders (sftp, hdfs, dir::) need them; object stores ignore the call.
            try:
                self.fs.makedirs(path, exist_ok=True)
            except NotImplementedError:
                pass


# -- writers, one per kind of backend ------------------------------------------------------
def _temp_name(path: str) -> str:
    folder, name = posixpath.split(path)
    # Keep the name under the 255-byte file-name limit of common file systems.
    tail = name.encode()[:200].decode(errors="ignore")
    return posixpath.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}.{tail}")


@contextmanager
def _local_writer(path: str) -> Iterator[IO[bytes]]:
    tmp = _temp_name(path)
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


@contextmanager
def _memory_writer(fs, path: str) -> Iterator[IO[bytes]]:
    buffer = io.BytesIO()
    yield buffer
    fs.pipe_file(path, buffer.getvalue())


@contextmanager
def _temp_key_writer(fs, path: str) -> Iterator[IO[bytes]]:
    """Any other backend: write a temporary key, move it over the target on success."""
    tmp = _temp_name(path)
    try:
        with fs.open(tmp, "wb") as fh:
            yield fh
        fs.mv(tmp, path)
    except BaseException:
        try:
            fs.rm(tmp)
        except Exception:  # best effort: the original error matters more
            pass
        raise


class _ObjectWriter(io.RawIOBase):
    """Buffers a small object for one PUT; past SINGLE_PUT_MAX streams a multipart upload that is
    completed on success and aborted on error, so a failed block publishes nothing."""

    def __init__(self, store: Store, key: str, path: str):
        self.store = store
        self.key = key
        self.path = path
        self.buffer = io.BytesIO()
        self.upload = None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.upload is not None:
            return self.upload.write(data)
        n = self.buffer.write(data)
        if self.buffer.tell() >= SINGLE_PUT_MAX:
            self.upload = self.store.fs.open(self.path, "wb", autocommit=False, block_size=SINGLE_PUT_MAX)
            self.upload.write(self.buffer.getbuffer())
            self.buffer = io.BytesIO()
        return n

    @contextmanager
    def session(self) -> Iterator[IO[bytes]]:
        try:
            yield self
        except BaseException:
            self._abort()
            raise
        if self.upload is None:
            data = self.buffer.getvalue()
            self.store._retry(lambda: self.store.fs.pipe_file(self.path, data))
        else:
            try:
                self.upload.close()  # uploads the last part, does not complete the upload
                self.upload.commit()
            except BaseException:
                self._abort()
                raise

    def _abort(self) -> None:
        """Abort the multipart upload (its parts never become an object). Called while another exception is on
        its way: a failing abort is logged, naming the upload and the command that cleans it, and does not
        replace that exception."""
        upload, self.upload = self.upload, None
        if upload is None:
            return
        mpu = getattr(upload, "mpu", None)
        upload_id = mpu.get("UploadId") if isinstance(mpu, dict) else None
        try:
            upload.discard()
        except BaseException as exc:  # noqa: BLE001 - also a second Ctrl-C: the first one is the one to report
            log.warning(
                "could not abort the multipart upload %s of %s (%s: %s); its parts stay billed until aborted: run "
                "'scout-persist gc --uploads %s --dry-run', then without --dry-run",
                upload_id or "(id unknown)", self.store.where(self.key), type(exc).__name__, exc, self.store.url,
            )
            if not isinstance(exc, Exception):
                raise
        finally:
            upload.closed = True  # nothing left to flush when the file object is collected


# -- helpers ---------------------------------------------------------------------------------
def _epoch(value) -> float | None:
    return value.timestamp() if isinstance(value, datetime.datetime) else None


def _create_local(path: str, data: bytes) -> bool:
    tmp = _temp_name(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        # No hard links here (some network/FUSE file systems): O_EXCL, then write.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True
    finally:
        os.unlink(tmp)


_BACKEND_MODULES = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "s3fs", "fsspec", "gcsfs", "adlfs")


def _is_backend_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _BACKEND_MODULES


_TRANSIENT_WORDS = (
    "500", "502", "503", "504", "InternalError", "Internal Server Error", "ServiceUnavailable",
    "Service Unavailable", "Bad Gateway", "Gateway Timeout", "SlowDown", "RequestTimeout",
    "Connection reset", "connection was closed", "Server disconnected", "timed out",
)
# s3fs maps S3's 500 InternalError to EREMOTEIO and 503 SlowDown/ServiceUnavailable to EBUSY.
_TRANSIENT_ERRNOS = {
    getattr(errno, "EREMOTEIO", errno.EIO), errno.EBUSY, errno.ECONNRESET, errno.ETIMEDOUT, errno.EPIPE,
}


def _is_transient(exc: BaseException) -> bool:
    """A 5xx reply, a dropped connection or a timeout: worth another try. Not-found/exists/denied are not."""
    if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    seen: BaseException | None = exc
    for _ in range(5):  # the error and the causes s3fs chains to it (botocore's ClientError)
        if seen is None:
            break
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500:
                return True
        if isinstance(seen, OSError) and seen.errno in _TRANSIENT_ERRNOS:
            return True
        text = f"{type(seen).__name__} {seen}"
        if any(word in text for word in _TRANSIENT_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _protocols(fs) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
