"""Record the file-system operations the local store makes, for the crash-state test (ALICE-style tracing).

:func:`tracing` swaps the ``os``, ``open`` and ``shutil`` names of the modules that write a store's files
(:data:`TRACED_MODULES`) for recording shims: every call still happens for real, and each one that changes the tree
below ``root`` is appended to :attr:`Recorder.ops` as a logical operation on paths relative to the root:

- ``("mkdir", path)``, ``("rmdir", path)``
- ``("create", path, fid)``: a new empty file, ``fid`` names its inode from now on
- ``("write", fid, offset, bytes)`` (a file object's write or ``os.write``), ``("truncate", fid, size)``
- ``("fsync", fid)``, ``("fsync_dir", path)``
- ``("rename", src, dst)`` (a file or a folder, replacing ``dst``), ``("link", src, dst)``, ``("unlink", path)``

Reads, ``stat``, ``utime`` and listings are not recorded: they change nothing a crash could lose.  The test checks
the recording against the real tree the workload left (:func:`snapshot`), so a write the shims did not see fails it.
This is test machinery only: production code has no hook for it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil as _shutil
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

# Every module of the package that calls os-level file functions while a job, an entry, a run record or a registry
# version is written to a local store.
TRACED_MODULES = (
    "scout_persist.store.local",
    "scout_persist.file_outputs",
    "scout_persist.job",
    "scout_persist.usage",
    "scout_persist.registry",
)

_real_open = open


def snapshot(root: str) -> tuple[dict[str, bytes], set[str]]:
    """The files (relative path -> bytes) and folders below ``root``."""
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for d in dirnames:
            dirs.add(os.path.normpath(os.path.join(rel_dir, d)))
        for f in filenames:
            with _real_open(os.path.join(dirpath, f), "rb") as fh:
                files[os.path.normpath(os.path.join(rel_dir, f))] = fh.read()
    return files, dirs


class Recorder:
    """The operations made below ``root`` while tracing, and the file ids (inodes) they refer to."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.ops: list[tuple[Any, ...]] = []
        self.initial_files, self.initial_dirs = snapshot(self.root)
        self._ids: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) of a live file -> its fid
        self._next = 0
        self.initial_ids = {rel: self._id_of(os.path.join(self.root, rel)) for rel in self.initial_files}
        self.fds: dict[int, tuple[str, Any]] = {}  # open descriptor -> ("file", fid) | ("dir", rel)

    # -- addressing ---------------------------------------------------------------------------------------------
    def rel(self, path: Any) -> str | None:
        """``path`` relative to the root, or None when it is outside (not recorded)."""
        if isinstance(path, int):
            return None
        full = os.path.abspath(os.fsdecode(path))
        real = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
        if real != self.root and not real.startswith(self.root + os.sep):
            return None
        return os.path.relpath(real, self.root)

    def _id_of(self, full: str) -> int:
        st = os.lstat(full)
        key = (st.st_dev, st.st_ino)
        if key not in self._ids:
            self._ids[key] = self._next
            self._next += 1
        return self._ids[key]

    def forget(self, key: tuple[int, int] | None, nlink_before: int) -> None:
        if key is not None and nlink_before <= 1:
            self._ids.pop(key, None)  # its last name is gone: the inode number may be given to a new file

    def record(self, *op: Any) -> None:
        self.ops.append(op)

    # -- files --------------------------------------------------------------------------------------------------
    def opened(self, path: Any, existed: bool, truncated: bool, fd: int) -> int | None:
        rel = self.rel(path)
        if rel is None:
            return None
        full = os.path.join(self.root, rel)
        if not existed:
            fid = self._id_of(full)
            self.record("create", rel, fid)
        else:
            fid = self._id_of(full)
            if truncated:
                self.record("truncate", fid, 0)
        self.fds[fd] = ("file", fid)
        return fid

    def closed(self, fd: int) -> None:
        self.fds.pop(fd, None)

    def described(self, fd: int) -> tuple[str, Any] | None:
        """What a descriptor opened elsewhere (a plain ``open(path, "rb")``) refers to below the root, if anything."""
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            rel = self.rel(os.readlink(f"/proc/self/fd/{fd}"))
            return None if rel is None else ("dir", rel)
        fid = self._ids.get((st.st_dev, st.st_ino))
        return None if fid is None else ("file", fid)


class TracedFile:
    """A file object opened for writing below the root: records each write at its offset."""

    def __init__(self, real: Any, recorder: Recorder, fid: int) -> None:
        self._real, self._recorder, self._fid = real, recorder, fid
        self._fd = real.fileno()

    def write(self, data: Any) -> int:
        offset = self._real.tell()
        n = self._real.write(data)
        written = memoryview(data).cast("B")
        self._recorder.record("write", self._fid, offset, bytes(written if n is None else written[:n]))
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def truncate(self, size: int | None = None) -> int:
        size = self._real.tell() if size is None else size
        self._real.flush()
        out = self._real.truncate(size)
        self._recorder.record("truncate", self._fid, size)
        return out

    def close(self) -> None:
        if not self._real.closed:
            self._recorder.closed(self._fd)
            self._real.close()

    @property
    def closed(self) -> bool:
        return bool(self._real.closed)

    def fileno(self) -> int:
        return self._real.fileno()

    def flush(self) -> None:
        self._real.flush()

    def tell(self) -> int:
        return self._real.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._real.seek(offset, whence)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return self._real.readable()

    def read(self, size: int = -1) -> bytes:
        return self._real.read(size)

    def __enter__(self) -> TracedFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TracedOS:
    """The ``os`` module as the traced modules see it: writes below the root are recorded, the rest passes."""

    def __init__(self, recorder: Recorder) -> None:
        self._r = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    # -- namespace ----------------------------------------------------------------------------------------------
    def mkdir(self, path: Any, mode: int = 0o777, *args: Any, **kw: Any) -> None:
        os.mkdir(path, mode, *args, **kw)
        rel = self._r.rel(path)
        if rel is not None:
            self._r.record("mkdir", rel)

    def makedirs(self, name: Any, mode: int = 0o777, exist_ok: bool = False) -> None:
        head, tail = os.path.split(os.fsdecode(name))
        if not tail:
            head, tail = os.path.split(head)
        if head and tail and not os.path.exists(head):
            self.makedirs(head, mode, exist_ok=True)
        try:
            self.mkdir(name, mode)
        except OSError:
            if not exist_ok or not os.path.isdir(name):
                raise

    def rmdir(self, path: Any, *args: Any, **kw: Any) -> None:
        os.rmdir(path, *args, **kw)
        rel = self._r.rel(path)
        if rel is not None:
            self._r.record("rmdir", rel)

    def _moved(self, op: str, src: Any, dst: Any, call: Any) -> None:
        replaced = _key(dst)
        nlink = _nlink(dst)
        call(src, dst)
        rs, rd = self._r.rel(src), self._r.rel(dst)
        if rs is None and rd is None:
            return
        if rs is None or rd is None:
            raise AssertionError(f"{op} across the traced root is not modelled: {src!r} -> {dst!r}")
        if replaced is not None and replaced != _key(dst):
            self._r.forget(replaced, nlink)
        self._r.record(op, rs, rd)

    def rename(self, src: Any, dst: Any, *args: Any, **kw: Any) -> None:
        self._moved("rename", src, dst, lambda s, d: os.rename(s, d, *args, **kw))

    def replace(self, src: Any, dst: Any, *args: Any, **kw: Any) -> None:
        self._moved("rename", src, dst, lambda s, d: os.replace(s, d, *args, **kw))

    def link(self, src: Any, dst: Any, *args: Any, **kw: Any) -> None:
        os.link(src, dst, *args, **kw)
        rs, rd = self._r.rel(src), self._r.rel(dst)
        if rs is not None or rd is not None:
            self._r.record("link", rs, rd)

    def unlink(self, path: Any, *args: Any, **kw: Any) -> None:
        key, nlink = _key(path), _nlink(path)
        os.unlink(path, *args, **kw)
        rel = self._r.rel(path)
        if rel is not None:
            self._r.forget(key, nlink)
            self._r.record("unlink", rel)

    remove = unlink

    # -- descriptors --------------------------------------------------------------------------------------------
    def open(self, path: Any, flags: int, mode: int = 0o777, *args: Any, **kw: Any) -> int:
        existed = os.path.lexists(path)
        fd = os.open(path, flags, mode, *args, **kw)
        rel = self._r.rel(path)
        if rel is not None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self._r.fds[fd] = ("dir", rel)
            elif flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
                self._r.opened(path, existed, bool(flags & os.O_TRUNC) and existed, fd)
        return fd

    def close(self, fd: int) -> None:
        self._r.closed(fd)
        os.close(fd)

    def write(self, fd: int, data: Any) -> int:
        entry = self._r.fds.get(fd)
        offset = os.lseek(fd, 0, os.SEEK_CUR) if entry is not None else 0
        n = os.write(fd, data)
        if entry is not None and entry[0] == "file":
            self._r.record("write", entry[1], offset, bytes(memoryview(data).cast("B")[:n]))
        return n

    def fdopen(self, fd: int, mode: str = "r", *args: Any, **kw: Any) -> Any:
        real = os.fdopen(fd, mode, *args, **kw)
        entry = self._r.fds.get(fd)
        if entry is not None and entry[0] == "file" and _writes(mode):
            return TracedFile(real, self._r, entry[1])
        return real

    def fsync(self, fd: Any) -> None:
        fd = fd if isinstance(fd, int) else fd.fileno()
        os.fsync(fd)
        entry = self._r.fds.get(fd) or self._r.described(fd)
        if entry is not None:
            self._r.record("fsync" if entry[0] == "file" else "fsync_dir", entry[1])


def _key(path: Any) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _nlink(path: Any) -> int:
    try:
        return os.lstat(path).st_nlink
    except OSError:
        return 0


def _writes(mode: str) -> bool:
    return any(c in mode for c in "wax+")


class TracedTempfile:
    """``tempfile`` whose ``mkdtemp`` records the folder it makes."""

    def __init__(self, recorder: Recorder) -> None:
        self._r = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(tempfile, name)

    def mkdtemp(self, *args: Any, **kw: Any) -> str:
        path = tempfile.mkdtemp(*args, **kw)
        rel = self._r.rel(path)
        if rel is not None:
            self._r.record("mkdir", rel)
        return path


class TracedShutil:
    """``shutil`` with a recording ``rmtree`` (files unlinked, then their folders removed, deepest first)."""

    def __init__(self, traced_os: TracedOS) -> None:
        self._os = traced_os

    def __getattr__(self, name: str) -> Any:
        return getattr(_shutil, name)

    def rmtree(self, path: Any, ignore_errors: bool = False, **kw: Any) -> None:
        try:
            for dirpath, dirnames, filenames in os.walk(path, topdown=False):
                for f in filenames:
                    self._os.unlink(os.path.join(dirpath, f))
                for d in dirnames:
                    full = os.path.join(dirpath, d)
                    if os.path.islink(full):
                        self._os.unlink(full)
                    else:
                        self._os.rmdir(full)
            self._os.rmdir(path)
        except OSError:
            if not ignore_errors:
                raise


def traced_open(recorder: Recorder) -> Any:
    def _open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if isinstance(file, int) or not _writes(mode) or recorder.rel(file) is None:
            return _real_open(file, mode, *args, **kw)
        existed = os.path.lexists(file)
        real = _real_open(file, mode, *args, **kw)
        fid = recorder.opened(file, existed, "w" in mode and existed, real.fileno())
        if "b" not in mode or fid is None:
            raise AssertionError(f"text-mode write of {file!r} is not modelled by the crash-state tracer")
        return TracedFile(real, recorder, fid)

    return _open


@contextlib.contextmanager
def tracing(root: str) -> Iterator[Recorder]:
    """Record the file-system operations below ``root`` made by :data:`TRACED_MODULES` inside the block."""
    recorder = Recorder(root)
    traced_os = TracedOS(recorder)
    shims = {
        "os": traced_os,
        "open": traced_open(recorder),
        "shutil": TracedShutil(traced_os),
        "tempfile": TracedTempfile(recorder),
    }
    saved: list[tuple[Any, str, Any]] = []
    for name in TRACED_MODULES:
        module = importlib.import_module(name)
        for attr, shim in shims.items():
            saved.append((module, attr, module.__dict__.get(attr, _ABSENT)))
            setattr(module, attr, shim)
    try:
        yield recorder
    finally:
        for module, attr, old in reversed(saved):
            if old is _ABSENT:
                delattr(module, attr)
            else:
                setattr(module, attr, old)


_ABSENT = object()
