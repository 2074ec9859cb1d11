"""Any other fsspec file system (sftp, hdfs, gcs, az, ...): fsspec's own calls, writes through a temporary key
moved over the entry, exclusive create with mode ``xb``.  The base of the memory and S3 backends."""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ..errors import StorageError
from .backend import Backend, Capabilities, Sync, temp_name


def protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


class FsspecBackend(Backend):
    capabilities = Capabilities(remote=True)

    def __init__(self, url: str, root: str, fs: Any) -> None:
        super().__init__(url, root)
        self.fs = fs
        self.capabilities = Capabilities(remote=True, names=protocols(fs))

    def key_of(self, path: str) -> str | None:
        return super().key_of(self.fs._strip_protocol(path))

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(key))
        return data

    def open(self, key: str) -> IO[bytes]:
        path = self.path(key)
        self.forget(key)
        fh: IO[bytes] = self.fs.open(path, "rb")
        # object stores open a folder prefix as an empty file; its details (already fetched) tell.
        details = getattr(fh, "details", None)
        if isinstance(details, dict) and details.get("type") == "directory":
            fh.close()
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        return fh

    def exists(self, key: str) -> bool:
        self.forget(key)
        return bool(self.fs.exists(self.path(key)))

    def isdir(self, key: str) -> bool:
        self.forget(key)
        return bool(self.fs.isdir(self.path(key)))

    def size(self, key: str) -> int:
        self.forget(key)
        return int(self.fs.size(self.path(key)))

    def mtime(self, key: str) -> float | None:
        self.forget(key)
        return _epoch(self.fs.info(self.path(key)))

    def find(self, prefix: str) -> list[str]:
        self.forget(prefix)
        try:
            found = self.fs.find(self.path(prefix), withdirs=False)
        except FileNotFoundError:
            return []
        keys = (self.key_of(p) for p in found)
        return [k for k in keys if k is not None]

    def list_dir(self, prefix: str) -> list[tuple[str, tuple[bool, int, float | None]]]:
        here = self.path(prefix).rstrip("/")
        self.forget(prefix)
        try:
            listing = self.fs.ls(here, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for item in listing:
            full = self.fs._strip_protocol(item["name"]).rstrip("/")
            name = posixpath.basename(full)
            if not name or full == here:
                continue
            is_dir = item.get("type") == "directory"
            out.append((name, (is_dir, 0 if is_dir else int(item.get("size") or 0), _epoch(item))))
        return out

    def tree_size(self, prefix: str) -> int:
        try:
            return int(sum(self.fs.du(self.path(prefix), total=False).values()))
        except FileNotFoundError:
            return 0

    # -- writing ----------------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        with self.writer(key) as fh:
            fh.write(data)

    @contextmanager
    def writer(self, key: str, durable: bool | Sync = True) -> Iterator[IO[bytes]]:
        """Write a temporary key, move it over the entry on success."""
        path = self.path(key)
        tmp = temp_name(path)
        try:
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            self.fs.mv(tmp, path)
        except BaseException:
            try:
                self.fs.rm(tmp)
            except Exception:  # noqa: BLE001 - best effort: the original error matters more
                pass
            raise
        finally:
            self.forget(key)

    def create(self, key: str, data: bytes, durable: bool | Sync = True) -> bool:
        path = self.path(key)
        try:
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
            self.forget(key)
        return True

    def delete(self, key: str, recursive: bool = False) -> None:
        path = self.path(key)
        try:
            self.fs.rm(path, recursive=recursive)
        except FileNotFoundError:
            pass
        finally:
            self.forget(key)

    def prepare(self, key: str) -> None:
        # Backends with real folders (sftp, hdfs, dir::) need them; object stores ignore the call.
        try:
            self.fs.makedirs(posixpath.dirname(self.path(key)), exist_ok=True)
        except NotImplementedError:
            pass

    def forget(self, key: str) -> None:
        # Another process may have changed the store since fsspec cached a listing: ask the backend again.
        self.fs.invalidate_cache(self.path(key))


def _epoch(info: dict[str, Any]) -> float | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if value is None:
        return None
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


__all__ = ["FsspecBackend", "protocols"]
