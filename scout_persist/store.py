"""One store over any fsspec URL: a handful of primitives, keys relative to a root.

Keys are '/'-separated paths relative to the store root (``var/jobs/Baking/whisk_eggs/Default``).
A key may never escape the root: absolute keys, '..' segments and NUL bytes are refused.

Writes are atomic on every backend: a local file is written under a temporary name in the same folder and
renamed; an object appears on an object store only when its single put (or multipart upload) completes.
Backend errors are translated here: ``KeyNotFound`` for a missing entry, ``StorageError`` for anything
else, each naming the store URL and key, with the backend's exception chained.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import random
import re
import threading
import time
import uuid
from contextlib import contextmanager
from typing import IO, Callable, Iterator, TypeVar

from .errors import InvalidInputError, KeyNotFound, ScoutPersistError, StorageError, UnsafePathError

DEFAULT_URL = "~/.scout"
# Name prefix of a write in flight (local files and the temp-key fallback); listings hide it.
TEMP_PREFIX = ".tmp_mv."
# Object-store writes smaller than this are buffered and sent as one PUT; larger ones stream as a
# multipart upload that is completed only when the writer's block ends without error.
SINGLE_PUT_MAX = 8 << 20
RETRIES = 4
RETRY_BASE_DELAY = 0.1

T = TypeVar("T")
_MEMORY_CREATE = threading.Lock()


URL_VARIABLE = "SCOUT_PERSIST_URL"


def default_url() -> str:
    """The store root: ``SCOUT_PERSIST_URL`` or Scout's own user root ``~/.scout``."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


# Protocols whose URL must name a bucket/container: s3://<bucket>/<prefix>
_BUCKET_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "oci", "r2"})
# Common fsspec protocols, recognised without importing fsspec when a URL lacks its '//' ("s3:bucket")
_COMMON_PROTOCOLS = _BUCKET_PROTOCOLS | {"memory", "file", "local", "http", "https", "ftp", "sftp", "ssh", "hdfs",
                                        "webhdfs", "gdrive", "github", "zip", "tar", "dbfs", "dir", "simplecache"}
_UNEXPANDED = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.S)


def store_url(url: str | None = None) -> str:
    """The root URL a :class:`Store` opens for ``url`` (None: ``$SCOUT_PERSIST_URL``, else ``~/.scout``), checked.

    Refused, naming where the value came from and how to fix it: a ``$VAR`` left unexpanded, a URL without
    ``//`` (``s3:/scout``, ``memory:/x``: they would silently become local folders named ``s3:``), a protocol
    fsspec does not know, an object-store URL without a bucket (``s3://``), and a local root below a regular file.
    Local paths come back absolute.
    """
    value = default_url() if url is None else url
    env = os.environ.get(URL_VARIABLE)
    if url is None and not env:
        what = f"the default store root {value!r} ({URL_VARIABLE} is not set)"
        fix = f"set {URL_VARIABLE} to a folder or URL such as s3://my-bucket/scout"
    elif url is None or url == env:
        what = f"{URL_VARIABLE}={value!r}"
        fix = f"set {URL_VARIABLE} to a local folder or a URL such as s3://my-bucket/scout"
    else:
        what = f"store URL {value!r}"
        fix = "give a local folder or a URL such as s3://my-bucket/scout"
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} is empty; {fix}")
    m = _UNEXPANDED.search(value)
    if m:
        raise InvalidInputError(
            f"{what} contains {m.group(0)!r}, a shell variable that was never expanded (a literal '$'); "
            f"export that variable before starting, or write its value into the URL; {fix}"
        )
    if "://" in value:
        _check_protocols(value, what, fix)
        return value
    m = _SCHEME.fullmatch(value)
    if m and len(m.group(1)) > 1 and (m.group(2).startswith("/") or m.group(1).lower() in _COMMON_PROTOCOLS):
        proto, rest = m.group(1), m.group(2).lstrip("/")
        raise InvalidInputError(
            f"{what} is missing the '//' after '{proto}:', so it would be a local folder named '{proto}:' in "
            f"{os.getcwd()!r}; write {proto}://{rest}"
        )
    path = os.path.abspath(os.path.expanduser(value))
    probe = path
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise StorageError(
            f"{what}: {probe!r} is a file, not a folder, so no store can be created at {path!r}; {fix}"
        )
    return path


def _check_protocols(value: str, what: str, fix: str) -> None:
    from fsspec.registry import known_implementations, registry

    for part in value.split("::"):
        proto, sep, rest = part.partition("://")
        proto = proto if sep else part
        if proto not in known_implementations and proto not in registry:
            raise StorageError(
                f"{what} uses protocol {proto!r}, which fsspec does not know; use a local folder or a known "
                f"protocol (s3://, gs://, az://, memory://, file://, ...); {fix}"
            )
        if sep and proto in _BUCKET_PROTOCOLS and not rest.split("/", 1)[0]:
            raise InvalidInputError(
                f"{what} names no bucket; {proto} URLs are {proto}://<bucket>[/<prefix>], "
                f"e.g. {proto}://my-bucket/scout; {fix}"
            )


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
        given, url = url, store_url(url)
        self.url = url.rstrip("/") or "/"
        self.storage_options = storage_options
        # Where the root came from, for messages: the environment variable when its value is this URL.
        env = os.environ.get(URL_VARIABLE)
        self.origin = URL_VARIABLE if env and (given is None or given == env) else ""
        if "://" not in url:  # a local folder: fsspec (~50 ms to import) only when a call needs it
            self._fs = None
            self.root = self.url.rstrip("/")
            self.is_local, self.kind = True, "local"
            return
        import fsspec.core

        try:
            self._fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(
                f"cannot open store {self.url!r}: {exc}; install the fsspec backend for this protocol "
                "(e.g. pip install 'scout-persist[s3]' for s3://)"
            ) from exc
        self.root = root.rstrip("/")
        protocols = _protocols(self._fs)
        self.is_local = "file" in protocols
        self.kind = (
            "local" if self.is_local else "memory" if "memory" in protocols
            else "s3" if {"s3", "s3a"} & set(protocols) else "other"
        )

    @property
    def fs(self):
        """The fsspec file system (created on first use for local folders)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem("file", **self.storage_options)
        return self._fs

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
        if self.kind in ("memory", "s3"):
            with self._translate(key, "writing"):
                self._makedirs(posixpath.dirname(path))
                # memory: the value is assigned whole; S3: one PUT (or a multipart upload, complete or nothing).
                self._retry(lambda: self.fs.pipe_file(path, bytes(data)))
                self._forget(path)
            return
        with self.writer(key) as fh:
            fh.write(data)

    def create(self, key: str, data: bytes) -> bool:
        """Exclusive create: store ``data`` only if ``key`` is absent; True when this call created it.

        Local: a complete temporary file hard-linked to the name (never a partial entry), O_EXCL where
        hard links are unsupported; memory: check-and-set under a lock; S3: a conditional PUT
        (``If-None-Match: *``). Not retried: a lost reply would make a retry report someone else's entry.
        """
        path = self.path(key)
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
        path = self.path(key)
        if not check_key(key) and not recursive:
            raise UnsafePathError(f"deleting the root of store {self.url!r} needs recursive=True")
        with self._translate(key, "deleting"):
            try:
                if self.is_local and not recursive and os.path.isdir(path) and not os.path.islink(path):
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

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        """A streaming writer: the content appears at ``key`` atomically when the block ends without error.

        If the block raises, nothing is published and the old value (if any) stays. Memory use is bounded
        on every backend except memory:// (which holds the value in memory anyway).
        """
        path = self.path(key)
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
        if isinstance(exc, OSError) and exc.errno in _DENIED and action in ("writing", "creating", "deleting"):
            origin = f" (from ${self.origin})" if self.origin else ""
            fix = f"set {self.origin} to" if self.origin else "open the store on"
            return StorageError(
                f"{action} {self.where(key)!r} failed: {exc.strerror or exc}: the store root {self.url!r}{origin} "
                f"is not writable here (or a folder in it is not); {fix} a folder this user may write, or fix "
                "the permissions"
            )
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
        upload, self.upload = self.upload, None
        if upload is not None:
            try:
                upload.discard()  # abort the multipart upload: its parts never become an object
            finally:
                upload.closed = True  # nothing left to flush when the file object is collected


# -- helpers ---------------------------------------------------------------------------------
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


_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
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
