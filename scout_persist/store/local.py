"""Local disks: plain ``os`` calls (no fsspec), atomic renames, Ruby lockfile's exclusive create, and no write
through a symlink that leads out of the store root.

The root itself is the user's choice and may be a symlink (resolved once); links *below* it are the hazard, e.g. a
``var/jobs/<Workflow>`` link that would send whole jobs elsewhere: the folder of every write, with its links
resolved, must stay inside the real path of the root.  Only the components below the root are looked at (one
``lstat`` each); the full ``realpath`` is taken only when one of them is a link.
"""

from __future__ import annotations

import errno
import mmap
import os
import random
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, TypeVar

from ..errors import UnsafePathError
from ..process import hostname, pid_alive
from .backend import TEMP_PREFIX, Backend, Capabilities, Sync, Versioned, temp_name

if TYPE_CHECKING:
    import mmap

T = TypeVar("T")


# Seconds between two sweeps of one folder's dead lock temporaries by a process (a listing per lock taken is what
# a small task would otherwise pay; a crash between writing one and unlinking it is rare, and its file is inert).
SWEEP_EVERY = 60.0
# Seconds a folder check_write found safe (there, no link out of the root on the way) is taken as still safe: the
# lstat of each folder below the root, and the isdir of prepare, are paid once per folder and second, not per write.
FOLDER_CHECK_TTL = 1.0


class LocalBackend(Backend):
    kind_name = "local"
    capabilities = Capabilities(local_paths=True, atomic_rename=True, folders=True, names=("file",))

    def __init__(self, url: str, root: str) -> None:
        super().__init__(url, root)
        self.boundary = self.root  # child backends keep the parent's boundary: their writes stay inside it too
        self._real_boundary: str | None = None
        # Folders this process made whose own name is not yet on the disk (see _sync_names); shared with children.
        self._unsynced_folders: set[str] = set()
        self._swept: dict[str, float] = {}  # lock folder -> when create() last swept dead temporaries from it
        # folder -> when check_write last found it a real folder inside the boundary (monotonic); shared with children
        self._checked_folders: dict[str, float] = {}

    # -- reading ----------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        return _read_whole(self.path(key))[0]

    def get_used(self, key: str, every: float) -> bytes:
        return _read_whole(self.path(key), use=every)[0]

    def get_versioned(self, key: str) -> Versioned:
        data, st = _read_whole(self.path(key))  # the version of the very file read (one open, no second lookup)
        return Versioned(data, f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}", None)  # age: ask age(), it writes

    def open(self, key: str) -> IO[bytes]:
        path = self.path(key)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        return open(path, "rb")

    def exists(self, key: str) -> bool:
        return os.path.exists(self.path(key))

    def isdir(self, key: str) -> bool:
        return os.path.isdir(self.path(key))

    def size(self, key: str) -> int:
        return os.stat(self.path(key)).st_size

    def mtime(self, key: str) -> float | None:
        return os.stat(self.path(key)).st_mtime

    def find(self, prefix: str) -> list[str]:
        """Files below ``prefix``; links to files count, links to folders are not followed (a listing stays below
        its prefix), a broken or looping link is an UnsafePathError naming it."""
        base = self.path(prefix)
        if os.path.isfile(base):
            return [prefix]
        out = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            for name in list(dirnames) + filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    try:
                        target = os.path.realpath(full, strict=True)
                    except OSError as exc:
                        raise UnsafePathError(
                            f"{full!r} is a broken or looping symlink ({exc.strerror or exc}); remove or fix the link"
                        ) from exc
                    if os.path.isdir(target):
                        continue
                elif name not in filenames:
                    continue
                out.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
        return out

    def list_dir(self, prefix: str) -> list[tuple[str, tuple[bool, int, float | None]]]:
        out: list[tuple[str, tuple[bool, int, float | None]]] = []
        try:
            with os.scandir(self.path(prefix)) as it:
                for d in it:
                    try:
                        st = d.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    is_dir = stat.S_ISDIR(st.st_mode)
                    out.append((d.name, (is_dir, 0 if is_dir else st.st_size, st.st_mtime)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return out

    def tree_size(self, prefix: str) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.path(prefix)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except FileNotFoundError:
                    pass
        return total

    def age(self, key: str) -> float | None:
        """By the file system's own clock: the mtime of a probe file written beside ``key`` now, minus its mtime
        (no host's wall clock is trusted)."""
        path = self.path(key)
        probe = os.path.join(os.path.dirname(path), f".clock.{os.getpid()}.{random.randrange(1 << 30)}")
        try:
            modified = os.stat(path).st_mtime
            with open(probe, "wb"):
                pass
            try:
                now = os.stat(probe).st_mtime
            finally:
                os.unlink(probe)
        except OSError:
            return None
        return now - modified

    # -- writing ----------------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, durable: bool | Sync = True) -> None:
        """As :meth:`writer` (a temporary name, then ``rename(2)``), in the fewest system calls: a buffered file
        object costs three more per write (fstat, ioctl, lseek), each a chance for another thread to take the GIL."""
        path = self.path(key)
        sync = Sync.of(durable)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        with self._replacing(path) as tmp:
            fd = self._in_folder(key, lambda: os.open(tmp, flags, 0o666))
            try:
                _write_all(fd, data)
                if sync is not Sync.NONE:
                    os.fsync(fd)
            finally:
                os.close(fd)
        if sync is Sync.ALL:
            self._sync_names(os.path.dirname(path))

    @contextmanager
    def writer(self, key: str, durable: bool | Sync = True) -> Iterator[IO[bytes]]:
        """A temporary name, then ``rename(2)``.  :class:`Sync` ``DATA``: the bytes are fsynced before the rename, so
        no name ever leads to unsynced bytes; ``ALL`` (True): and the folder after it, so the new name survives a
        power cut once this returns; ``NONE`` (False): neither, a crash may lose the write or leave its name on an
        empty or torn file.  docs/reliability.md ("Durability: what is fsynced and why") has the evidence for each
        kind of write (tests/reliability/test_crash_states.py)."""
        path = self.path(key)
        sync = Sync.of(durable)
        with self._replacing(path) as tmp:
            with self._in_folder(key, lambda: open(tmp, "wb")) as fh:
                yield fh
                if sync is not Sync.NONE:
                    fh.flush()
                    os.fsync(fh.fileno())
        if sync is Sync.ALL:
            self._sync_names(os.path.dirname(path))

    @staticmethod
    @contextmanager
    def _replacing(path: str) -> Iterator[str]:
        """A temporary name beside ``path``, renamed over it when the block ends; removed when the block fails."""
        tmp = temp_name(path)
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def create(self, key: str, data: bytes, durable: bool | Sync = True) -> bool:
        """Ruby lockfile's protocol, so Ruby and Python processes exclude each other: a complete temporary
        ``.<host>_<pid>_<program>_<sec>_<usec>_<rand>.lck`` beside the name, hard-linked to it (readers never see a
        partial entry); O_EXCL where hard links are unsupported."""
        path = self.path(key)
        folder = os.path.dirname(path)
        sync = Sync.of(durable)
        now = time.time()
        if now - self._swept.get(folder, 0.0) >= SWEEP_EVERY:
            self._sweep_temporaries(folder)
            self._swept[folder] = now
        program = os.path.basename(sys.argv[0] or "python") or "python"
        tmp = os.path.join(
            folder,
            f".{hostname()}_{os.getpid()}_{program}_{int(now)}_"
            f"{int(now * 1e6) % 1000000}_{random.randrange(1 << 30)}.lck",
        )
        fd = self._in_folder(key, lambda: os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            try:
                _write_all(fd, data)
                if sync is not Sync.NONE:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                    raise
                try:  # no hard links here (some network/FUSE file systems): O_EXCL, then write
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    if sync is not Sync.NONE:
                        fh.flush()
                        os.fsync(fh.fileno())
                if sync is Sync.ALL:
                    self._sync_names(folder)
                return True
            # link(2) returned: the name is ours (a lost reply shows as EEXIST above; the lock reads the entry back)
            if sync is Sync.ALL:
                self._sync_names(folder)
            return True
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _in_folder(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` a new file in the folder of ``key``; when that folder, taken as checked and present, is gone
        (removed by another process since), it is checked and made again and ``make()`` retried once."""
        try:
            return make()
        except FileNotFoundError:
            if self._checked_folders.pop(os.path.dirname(self.path(key)), None) is None:
                raise
        self.check_write(key, "writing")
        self.prepare(key)
        return make()

    @staticmethod
    def _sweep_temporaries(folder: str) -> None:
        """Delete ``.<host>_<pid>_*.lck`` temporaries left in ``folder`` by dead processes of this host."""
        prefix = f".{hostname()}_"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        for name in names:
            if not (name.startswith(prefix) and name.endswith(".lck")):
                continue
            pid = name[len(prefix) :].split("_", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                try:
                    os.unlink(os.path.join(folder, name))
                except FileNotFoundError:
                    pass

    def map(self, key: str) -> mmap.mmap | bytearray:

        with open(self.path(key), "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return bytearray()
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)

    def touch(self, key: str) -> bool:
        os.utime(self.path(key))
        return True

    def delete(self, key: str, recursive: bool = False) -> None:
        path = self.path(key)
        try:
            os.unlink(path)  # a file, or a link itself (never what it points at): one call for the usual case
            return
        except FileNotFoundError:
            return
        except (IsADirectoryError, PermissionError):  # a folder (Linux says EISDIR, BSDs EPERM) or a real refusal
            if os.path.islink(path) or not os.path.isdir(path):
                raise
        if not recursive:
            raise IsADirectoryError(errno.EISDIR, "is a folder", path)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass

    def prepare(self, key: str) -> None:
        folder = os.path.dirname(self.path(key))
        checked = self._checked_folders.get(folder)
        if checked is not None and time.monotonic() - checked < FOLDER_CHECK_TTL:
            return  # check_write just found it there (a write that finds it gone since makes it: _in_folder)
        if os.path.isdir(folder):
            return
        missing = []
        head = folder
        while head and head != os.path.dirname(head) and not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        os.makedirs(folder, exist_ok=True)
        self._unsynced_folders.update(missing)

    def _sync_names(self, folder: str) -> None:
        """Put the names in ``folder`` on the disk (fsync it), and the names of the folders leading to it that this
        process made and has not synced yet (each in its parent): a new name is durable only once its folder is."""
        chain = [folder]
        while chain[-1] in self._unsynced_folders:
            chain.append(os.path.dirname(chain[-1]))
        for path in chain:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._unsynced_folders.difference_update(chain)

    # -- safety -----------------------------------------------------------------------------------------------
    def check_write(self, key: str, action: str) -> None:
        folder = os.path.dirname(self.path(key))
        checked = self._checked_folders.get(folder)
        if checked is not None and time.monotonic() - checked < FOLDER_CHECK_TTL:
            return
        boundary = self.boundary.rstrip("/")
        if folder != boundary and not folder.startswith(boundary + "/"):
            raise UnsafePathError(f"{action} {self.url}/{key!r} refused: {folder!r} is not below the store root")
        current = boundary
        for part in filter(None, folder[len(boundary) :].split("/")):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return  # the rest does not exist yet: the write creates real folders below here
            if stat.S_ISLNK(mode):
                break  # a link below the root: judge where the whole folder really is
        else:
            if current != boundary:  # every folder below the root was there, none of them a link: remember it
                self._checked_folders[folder] = time.monotonic()
            return
        real = os.path.realpath(folder)
        root = self.real_root()
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise UnsafePathError(
                f"{action} {self.url}/{key!r} refused: its folder {folder!r} resolves through the symlink "
                f"{current!r} to {real!r}, outside the store root {root!r}; links below the store root may not lead "
                "out of it: link the root itself instead (or point SCOUT_PERSIST_URL at the real folder)"
            )

    def check_inside(self, key: str, writing: bool) -> str:
        """The OS path of ``key``, refused (UnsafePathError) when it resolves through links outside the root;
        ``writing``: a link at the name itself is judged by where it leads even when that does not exist yet."""
        full = self.path(key)
        root = self.real_root()
        try:
            real = os.path.realpath(full, strict=not writing and os.path.lexists(full))
        except OSError as exc:
            raise UnsafePathError(f"{full!r} is a looping symlink ({exc}); remove or fix the link") from exc
        if real != root and not real.startswith(root.rstrip("/") + "/"):
            raise UnsafePathError(
                f"{full!r} resolves to {real!r}, outside the store root {root!r}; entries of a store must stay "
                "inside its root: remove the link or name another file"
            )
        return full

    def real_root(self) -> str:
        real = self._real_boundary
        if real is None:
            real = os.path.realpath(self.boundary or "/")
            if os.path.isdir(real):  # cache once the root exists (a root created later may still become a link)
                self._real_boundary = real
        return real


def _read_whole(path: str, use: float | None = None) -> tuple[bytes, os.stat_result]:
    """The bytes of the file at ``path`` and its ``fstat``, in as few system calls as the kernel allows (open, fstat,
    read, close: a buffered ``open().read()`` makes nine, each one a chance for another thread to take the GIL).
    ``use``: record a use (the access time, on the open file) when the last use or write is older than that."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        size = st.st_size
        if not size:  # empty, or a file that does not tell its size
            data = _read_rest(fd)
        else:
            data = os.read(fd, size + 1)
            if len(data) != size:  # changed since the fstat: read to the end
                data += _read_rest(fd)
        if use is not None and time.time() - max(st.st_atime, st.st_mtime) >= use:
            try:
                os.utime(fd, ns=(time.time_ns(), st.st_mtime_ns))  # the modification time, which Ruby reads, kept
            except OSError:
                pass  # not ours to change (read-only store, another owner): the use goes unrecorded
        return data, st
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def _read_rest(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


__all__ = ["LocalBackend", "TEMP_PREFIX"]
