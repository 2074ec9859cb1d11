"""``memory://``: fsspec's in-process memory file system; values are assigned whole, so every write is atomic, and
conditional writes are a check-and-set under one lock (the versions mimic S3's ETags)."""

from __future__ import annotations

import io
import posixpath
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .backend import ABSENT, Capabilities, Conflict, Sync, Versioned, content_version
from .generic import FsspecBackend

_GUARD = threading.Lock()  # memory:// is shared by every store of the process


class MemoryBackend(FsspecBackend):
    kind_name = "memory"

    def __init__(self, url: str, root: str, fs: Any) -> None:
        super().__init__(url, root, fs)
        self.capabilities = Capabilities(conditional_writes=True, atomic_rename=True, folders=True, names=("memory",))

    def open(self, key: str) -> IO[bytes]:
        # memory:// hands every reader the same shared buffer; give each its own position.
        return io.BytesIO(self.fs.cat_file(self.path(key)))

    def put(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        self.fs.pipe_file(self.path(key), bytes(data))

    @contextmanager
    def writer(self, key: str, durable: bool | Sync = True) -> Iterator[IO[bytes]]:
        buffer = io.BytesIO()
        yield buffer
        self.fs.pipe_file(self.path(key), buffer.getvalue())

    def put_if(self, key: str, data: bytes, expect: str | None) -> str:
        path = self.path(key)
        with _GUARD:
            current = self.fs.cat_file(path) if self.fs.exists(path) else None
            if (current is None) != (expect is ABSENT) or (current is not None and content_version(current) != expect):
                wanted = "absent" if expect is ABSENT else f"at version {expect}"
                found = None if current is None else Versioned(current, content_version(current), None)
                message = f"{self.url}/{key!r} is no longer {wanted}: another writer changed it first"
                raise Conflict(message, current=found, read=True)
            self.prepare(key)
            self.fs.pipe_file(path, bytes(data))
            return content_version(bytes(data))

    def delete_if(self, key: str, version: str) -> bool:
        path = self.path(key)
        with _GUARD:
            if not self.fs.exists(path) or content_version(self.fs.cat_file(path)) != version:
                return False
            self.fs.rm(path)
            return True

    def prepare(self, key: str) -> None:

        self.fs.makedirs(posixpath.dirname(self.path(key)), exist_ok=True)

    def forget(self, key: str) -> None:
        pass  # nothing is cached: the memory is the store


__all__ = ["MemoryBackend"]
