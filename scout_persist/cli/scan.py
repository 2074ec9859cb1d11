"""Find the jobs of a store by listing directories only: ``var/jobs/<Workflow>/<task>/<name>[.info|.files]``.

A job is a name with a result, a ``.info`` or a ``.files`` folder. A local task folder costs one ``scandir`` and one
``lstat`` per entry (relative to the folder's descriptor, as ``find`` does); other fsspec stores one
``ls(detail=True)`` per folder. Each job is one slotted :class:`JobEntry` holding the ``os.stat_result`` of its
result, ``.info`` and ``.files`` (made up from the listing on other stores); nothing else is built per file, and the
cyclic garbage collector is paused while the scan allocates. ``.info`` files are read only when a status is asked
for, and a status filter parses a ``.info`` only when its head says the job may match (:func:`status_may_match`).
"""

from __future__ import annotations

import fnmatch
import gc
import marshal
import os
import re
import signal
import stat as _stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import settings
from ..info import info_bytes, loads_info, read_info
from ..job_status import derived_status, job_status
from ..layout import JOBS_DIR
from ..liveness import RUNNING_STATUSES
from ..store import TEMP_PREFIX, Store
from .progress import Progress
from .target import JobRef

# Statuses a quick look at the head of a .info cannot confirm: they depend on the whole file being readable.
_NEEDS_PARSE = frozenset({"noinfo", "notfound"})
# `{"status":"done",` as every Scout writer starts a .info (SCOUT_FORMAT §6.4); write_info -f moves it to the end.
_HEAD_STATUS = re.compile(rb'\{"status":"([^"\\]*)"')
_READ_CHUNK = 1 << 16
_S_ISDIR = _stat.S_ISDIR
_Stats = dict[str, os.stat_result]  # name -> lstat (or its shape, on other stores)
# (base, file_name, job_name, result, info, files, dir_fd): see _folder
_FolderItem = tuple[str, str, str, os.stat_result | None, os.stat_result | None, os.stat_result | None, int | None]


def _fake_stat(is_dir: bool, size: int, mtime: float | None) -> os.stat_result:
    """What a listing of another store says about an entry, in the shape of a local ``lstat``."""
    fields = (0o040755 if is_dir else 0o100644, 0, 0, 0, 0, 0, 0 if is_dir else size, 0, mtime, 0)
    return os.stat_result(fields)  # type: ignore[arg-type]  # an unknown mtime stays None; typeshed wants numbers


class JobEntry:
    """A job found by a scan; ``info`` is read on first use."""

    __slots__ = (
        "store",
        "key",
        "workflow",
        "task",
        "name",
        "result",
        "info_entry",
        "files",
        "mtime",
        "_raw",
        "_info",
        "_size",
        "_status",
    )

    def __init__(
        self,
        store: Store,
        key: str,
        workflow: str,
        task: str,
        name: str,
        result: os.stat_result | None = None,
        info_entry: os.stat_result | None = None,
        files: os.stat_result | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.workflow = workflow
        self.task = task
        self.name = name
        self.result = result
        self.info_entry = info_entry
        self.files = files
        # the latest of result and .info: a job is as old as its last write
        r = result.st_mtime if result is not None else None
        i = info_entry.st_mtime if info_entry is not None else None
        self.mtime = i if r is None else (r if i is None or r > i else i)
        self._raw = raw
        self._info: dict[str, Any] | None = None
        self._size: int | None = None
        self._status: str | None = None

    def __repr__(self) -> str:
        return f"JobEntry({self.store.url!r}, {self.key!r})"

    @property
    def ref(self) -> JobRef:
        return JobRef(self.store, self.key)

    @property
    def result_is_dir(self) -> bool:
        return self.result is not None and _S_ISDIR(self.result.st_mode)

    @property
    def info(self) -> dict[str, Any]:
        if self._info is None:
            if self.info_entry is None:
                self._info = {}
            elif self._raw is not None:
                self._info = loads_info(self._raw, self.store.path(self.key + ".info"))
                self._raw = None
            else:
                self._info = read_info(self.store, self.key + ".info")
        return self._info

    @property
    def status(self) -> str:
        """The status ``ls``, ``info`` and ``prov`` show (derived statuses and dead jobs as ``aborted``)."""
        if self._status is None:
            self._status = job_status(
                self.store, self.key, self.info if self.info_entry else None, self.result is not None
            )
        return self._status

    @property
    def size(self) -> int:
        """Bytes of the result, the .info and everything under .files (or a folder result)."""
        if self._size is None:
            total = 0
            for e, key in (
                (self.result, self.key),
                (self.info_entry, self.key + ".info"),
                (self.files, self.key + ".files"),
            ):
                if e is None:
                    continue
                total += tree_size(self.store, key) if _S_ISDIR(e.st_mode) else e.st_size
            self._size = total
        return self._size


def job_entry(store: Store, key: str) -> JobEntry | None:
    """The :class:`JobEntry` of one job key ``var/jobs/<W>/<task>/<name>``; None when nothing of it exists."""
    parts = key.split("/", 4)
    if len(parts) < 5 or parts[0] != "var" or parts[1] != "jobs":
        return None
    if store.capabilities.local_paths:

        def st(k: str) -> os.stat_result | None:
            try:
                return os.lstat(store.path(k))
            except (FileNotFoundError, NotADirectoryError):
                return None

        result, info, files = st(key), st(key + ".info"), st(key + ".files")
    else:
        parent, name = key.rsplit("/", 1)
        found = dict(list_dir(store, parent))
        result, info, files = (
            None if found.get(n) is None else _fake_stat(*found[n]) for n in (name, name + ".info", name + ".files")
        )
    if result is None and info is None and files is None:
        return None
    return JobEntry(store, key, parts[2], parts[3], parts[4], result, info, files)


def quick_status(raw: bytes) -> str | None:
    """The status of a ``.info`` read from its first key, or None when that is not certain (then parse it).

    Certain means: the file starts ``{"status":"<word>"`` and names no other ``"status":`` key (JSON keeps the last
    duplicate). Whether the rest of the file parses is not checked: see :func:`status_may_match`.
    """
    m = _HEAD_STATUS.match(raw)
    if m is None or raw.count(b'"status":') != 1:
        return None
    try:
        return m.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def status_may_match(raw: bytes, has_result: bool, wanted: frozenset[str]) -> bool:
    """False only when the job's status is certainly not in ``wanted``: the exact status then need not be computed.

    The head gives the recorded status ``s``; the truth is ``s`` (derived: ``unsync`` for a ``done`` job without
    result), ``noinfo`` if the rest of the file is damaged, or ``aborted`` if ``s`` is a running status and the
    writer is gone. So a job is skipped unread only when none of those can be wanted.
    """
    s = quick_status(raw)
    if s is None or wanted & _NEEDS_PARSE:
        return True
    if s in RUNNING_STATUSES:
        return True
    if s == "done" and not has_result:
        s = "unsync"
    return s in wanted


def _read_all(fd: int) -> bytes:
    chunks = [os.read(fd, _READ_CHUNK)]
    while len(chunks[-1]) == _READ_CHUNK:
        chunks.append(os.read(fd, _READ_CHUNK))
    return b"".join(chunks)


def _local_groups(dir_fd: int) -> tuple[_Stats, _Stats, _Stats]:
    """name -> ``lstat`` of the results, ``.info`` files and ``.files`` folders of the folder open as ``dir_fd``.

    The hot loop of ``ls``: one lstat per entry and nothing else; kinds are checked afterwards, per job.
    """
    results: dict[str, os.stat_result] = {}
    infos: dict[str, os.stat_result] = {}
    files: dict[str, os.stat_result] = {}
    with os.scandir(dir_fd) as it:
        for d in it:
            name = d.name
            try:
                if name.endswith(".info"):
                    infos[name[:-5]] = d.stat(follow_symlinks=False)
                elif name.endswith(".files"):
                    files[name[:-6]] = d.stat(follow_symlinks=False)
                elif not name.startswith(TEMP_PREFIX):  # an atomic write in flight
                    results[name] = d.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while we list
                continue
    return results, infos, files


def _kinds_fixed(results: _Stats, infos: _Stats, files: _Stats) -> None:
    """A folder named ``x.info`` or a file named ``x.files`` is the result of job ``x.info`` / ``x.files``."""
    for suffix, group, want_dir in ((".info", infos, False), (".files", files, True)):
        for name in [n for n, st in group.items() if _S_ISDIR(st.st_mode) != want_dir]:
            results[name + suffix] = group.pop(name)


def _read_at(dir_fd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    try:
        return _read_all(fd)
    finally:
        os.close(fd)


def _remote_groups(store: Store, key: str) -> tuple[_Stats, _Stats, _Stats]:
    results: dict[str, os.stat_result] = {}
    infos: dict[str, os.stat_result] = {}
    files: dict[str, os.stat_result] = {}
    for name, e in list_dir(store, key):
        if name.startswith(TEMP_PREFIX):
            continue
        st = _fake_stat(*e)
        if name.endswith(".info"):
            infos[name[:-5]] = st
        elif name.endswith(".files"):
            files[name[:-6]] = st
        else:
            results[name] = st
    return results, infos, files


def list_dir(store: Store, key: str) -> list[tuple[str, tuple[bool, int, float | None]]]:
    """(name, (is_dir, size, mtime)) of everything directly under ``key`` (empty when it does not exist)."""
    return store.list_dir(key)


def tree_size(store: Store, key: str) -> int:
    """Total bytes of the files below ``key``."""
    return store.tree_size(key)


def task_dirs(store: Store, workflow: str = "*", task: str = "*") -> list[tuple[str, str]]:
    """(workflow, task) folders under ``var/jobs`` matching the glob patterns, sorted."""
    out = []
    for w, we in sorted(list_dir(store, JOBS_DIR)):
        if not we[0] or not fnmatch.fnmatchcase(w, workflow):
            continue
        for t, te in sorted(list_dir(store, f"{JOBS_DIR}/{w}")):
            if te[0] and fnmatch.fnmatchcase(t, task):
                out.append((w, t))
    return out


def _folder(store: Store, workflow: str, task: str, prefix: str = "") -> Iterator[_FolderItem]:
    """``(base, file_name, job_name, result, info, files, dir_fd)`` per job of one task folder, sorted by name.

    ``result``/``info``/``files`` are ``lstat`` results or None; names with '/' (sub-folders that are neither a
    job's result nor its ``.files``) are followed. ``dir_fd`` (local stores; else None) is open until the next item.
    """
    base = f"{JOBS_DIR}/{workflow}/{task}" + (f"/{prefix}" if prefix else "")
    dir_fd = None
    if store.capabilities.local_paths:
        try:
            dir_fd = os.open(store.path(base), os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return
    try:
        results, infos, files = _local_groups(dir_fd) if dir_fd is not None else _remote_groups(store, base)
        _kinds_fixed(results, infos, files)
        names = set(results)
        names.update(infos)
        names.update(files)
        lead = f"{prefix}/" if prefix else ""
        get_result, get_info, get_files = results.get, infos.get, files.get
        for name in sorted(names):
            result, info, folder = get_result(name), get_info(name), get_files(name)
            if info is None and folder is None and result is not None and _S_ISDIR(result.st_mode):
                yield from _folder(store, workflow, task, lead + name)
                continue
            yield base, name, lead + name, result, info, folder, dir_fd
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def jobs_in(
    store: Store,
    workflow: str,
    task: str,
    keep: Callable[[JobEntry], bool] | None = None,
    statuses: frozenset[str] | None = None,
) -> list[JobEntry]:
    """The jobs of one task folder, sorted by name.

    ``keep``: a cheap test on the listing (e.g. the age); ``statuses``: only jobs whose status is one of them
    (each .info kept by ``keep`` is read while its folder is open).
    """
    if statuses and keep is None and store.capabilities.local_paths:
        return _local_jobs_by_status(store, workflow, task, statuses)
    out: list[JobEntry] = []
    append = out.append
    for base, file_name, name, result, info, folder, dir_fd in _folder(store, workflow, task):
        if statuses and info is None and derived_status(None, result is not None) not in statuses:
            continue
        job = JobEntry(store, f"{base}/{file_name}", workflow, task, name, result, info, folder)
        if keep is not None and not keep(job):
            continue
        if statuses:
            if info is not None:
                if dir_fd is not None:
                    raw = _read_at(dir_fd, file_name + ".info")
                else:  # a remote store: one GET per .info
                    raw = info_bytes(store, job.key + ".info")
                if raw is None:  # removed since the listing
                    job.info_entry = None
                elif not status_may_match(raw, result is not None, statuses):
                    continue
                job._raw = raw
            if job.status not in statuses:
                continue
        append(job)
    return out


def _local_jobs_by_status(
    store: Store, workflow: str, task: str, statuses: frozenset[str], prefix: str = ""
) -> list[JobEntry]:
    """:func:`jobs_in` with a status filter on a local folder: the listing gives names and kinds only (no stat),
    every ``.info`` is read, and only the jobs that may match are stat'ed and looked at closely."""
    base = f"{JOBS_DIR}/{workflow}/{task}" + (f"/{prefix}" if prefix else "")
    try:
        dir_fd = os.open(store.path(base), os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return []
    try:
        results: dict[str, bool] = {}  # name -> is a folder
        infos: set[str] = set()
        files: set[str] = set()
        with os.scandir(dir_fd) as it:
            for d in it:
                name = d.name
                if name.endswith(".info") and not d.is_dir(follow_symlinks=False):
                    infos.add(name[:-5])
                elif name.endswith(".files") and d.is_dir(follow_symlinks=False):
                    files.add(name[:-6])
                elif not name.startswith(TEMP_PREFIX):
                    results[name] = d.is_dir(follow_symlinks=False)
        names = set(results)
        names.update(infos)
        names.update(files)
        lead = f"{prefix}/" if prefix else ""
        out: list[JobEntry] = []
        for name in sorted(names):
            is_dir = results.get(name)  # None: no result
            has_info, has_files = name in infos, name in files
            if is_dir and not has_info and not has_files:
                out.extend(_local_jobs_by_status(store, workflow, task, statuses, lead + name))
                continue
            raw = None
            if has_info:
                raw = _read_at(dir_fd, name + ".info")
                if raw is not None and not status_may_match(raw, is_dir is not None, statuses):
                    continue
            elif derived_status(None, is_dir is not None) not in statuses:
                continue
            job = JobEntry(
                store,
                f"{base}/{name}",
                workflow,
                task,
                lead + name,
                _lstat_at(dir_fd, name) if is_dir is not None else None,
                _lstat_at(dir_fd, name + ".info") if raw is not None else None,
                _lstat_at(dir_fd, name + ".files") if has_files else None,
            )
            job._raw = raw if job.info_entry is not None else None
            if job.status in statuses:
                out.append(job)
        return out
    finally:
        os.close(dir_fd)


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def scan(
    store: Store,
    workflow: str = "*",
    task: str = "*",
    progress: Progress | None = None,
    keep: Callable[[JobEntry], bool] | None = None,
    statuses: frozenset[str] | None = None,
) -> Iterator[JobEntry]:
    """Every job of ``store`` in workflow/task folders matching the globs, passing ``keep`` and (``statuses``)
    in one of them; ``progress`` advances per task folder. A status filter on a big local listing is split with
    :func:`in_two_processes` (few jobs match, so little comes back)."""
    dirs = task_dirs(store, workflow, task)
    if progress is not None:
        progress.total = len(dirs)

    def work(part: list[tuple[str, str]], bar: Progress | None) -> list[JobEntry]:
        found: list[JobEntry] = []
        for w, t in part:
            found.extend(jobs_in(store, w, t, keep=keep, statuses=statuses))
            if bar is not None:
                bar.note(f"{len(found)} jobs")
                bar.advance()
        return found

    if not statuses:
        yield from work(dirs, progress)
        return
    done = 0
    for part, jobs in in_two_processes(
        store,
        dirs,
        work,
        progress,
        encode=lambda jobs: [_pack(j) for j in jobs],
        decode=lambda packed: [_unpack(store, t) for t in packed],
    ):
        done += len(part)
        yield from jobs
        if progress is not None and progress.done < done:
            progress.advance(done - progress.done)


def _pack(job: JobEntry) -> tuple[Any, ...]:
    """A matched job as plain values for :mod:`marshal` (its status already computed)."""

    def st(e: os.stat_result | None) -> tuple[int, int, float] | None:
        return None if e is None else (e.st_mode, e.st_size, e.st_mtime)

    return (
        job.key,
        job.workflow,
        job.task,
        job.name,
        st(job.result),
        st(job.info_entry),
        st(job.files),
        job._raw,
        job.status,
    )


def _unpack(store: Store, packed: tuple[Any, ...]) -> JobEntry:
    key, w, t, name, r, i, f, raw, status = packed

    def st(e: tuple[int, int, float] | None) -> os.stat_result | None:
        return None if e is None else os.stat_result((e[0], 0, 0, 0, 0, 0, e[1], 0, e[2], 0))

    job = JobEntry(store, key, w, t, name, st(r), st(i), st(f), raw)
    job._status = status
    return job


FORK_ENV = settings.SCAN_FORK.name  # "0": never split a scan; "1": split whenever possible; unset: big listings
_FORK_MIN_DIR_BYTES = 256 << 10  # task folders whose directory files total this much hold a few thousand entries


def in_two_processes(
    store: Store,
    dirs: list[tuple[str, str]],
    work: Callable[..., Any],
    progress: Progress | None = None,
    encode: Callable[..., Any] | None = None,
    decode: Callable[..., Any] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """``(part, work(part, progress))`` for the two halves of ``dirs``, in order; the second half runs in a forked
    child while this process does the first, and comes back through a pipe as :mod:`marshal` data (``encode`` turns
    the child's result into such values, ``decode`` turns them back). A scan is mostly Python work around one
    ``lstat`` per entry, so a second core halves it.

    Split only on a local store, on Linux with two CPUs for this process, no other thread (fork copies one), and
    (unless ``SCOUT_PERSIST_SCAN_FORK=1``) a big listing on a machine that is not saturated (1-minute load average
    below the CPU count plus one). If the child fails, its half is done here.
    """
    half = len(dirs) // 2
    if not _may_fork(store, dirs):
        yield dirs, work(dirs, progress)
        return

    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        yield dirs, work(dirs, progress)
        return
    if pid == 0:  # the child: its half, marshalled into the pipe, then out without running any exit handler
        code = 1
        try:
            os.close(read_fd)
            result = work(dirs[half:], None)
            data = marshal.dumps(encode(result) if encode else result)
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    reaped = False
    try:
        yield dirs[:half], work(dirs[:half], progress)
        with os.fdopen(read_fd, "rb") as fh:
            read_fd = -1
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        reaped = True
        result = None
        if status == 0:
            try:
                result = marshal.loads(data)  # noqa: S302 - written by our own forked child (above)
                result = decode(result) if decode else result
            except (EOFError, ValueError, TypeError):
                result = None
        yield dirs[half:], (result if result is not None else work(dirs[half:], progress))
    finally:
        if read_fd >= 0:
            os.close(read_fd)
        if not reaped:  # abandoned (an error, `ls | head`): the child's half is not wanted
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _may_fork(store: Store, dirs: list[tuple[str, str]]) -> bool:
    setting = settings.scan_fork()
    if setting is False or len(dirs) < 2 or not store.capabilities.local_paths or not hasattr(os, "fork"):
        return False
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return False

    if cpus < 2 or threading.active_count() != 1:
        return False
    if setting:
        return True
    if os.getloadavg()[0] >= cpus + 1:
        return False  # saturated: a second process only queues behind the others (measured slower at load 3-6 on 2)
    total = 0
    for w, t in dirs:
        try:
            total += os.lstat(store.path(f"{JOBS_DIR}/{w}/{t}")).st_size
        except OSError:
            pass
        if total >= _FORK_MIN_DIR_BYTES:
            return True
    return False


def rows(
    store: Store, workflow: str = "*", task: str = "*", progress: Progress | None = None
) -> Iterator[list[tuple[Any, ...]]]:
    """Per task folder, ``(workflow, task, name, size, mtime)`` of each of its jobs, as plain ``ls`` prints them: no
    .info read, no per-job object but the tuple. ``size`` and ``mtime`` are :attr:`JobEntry.size` and ``.mtime``."""
    dirs = task_dirs(store, workflow, task)
    if progress is not None:
        progress.total = len(dirs)
    found = 0
    for w, t in dirs:
        batch = rows_in(store, w, t)
        found += len(batch)
        yield batch
        if progress is not None:
            progress.note(f"{found} jobs")
            progress.advance()


def rows_in(store: Store, w: str, t: str) -> list[tuple[Any, ...]]:
    """:func:`rows` of one task folder."""
    if store.capabilities.local_paths:
        return _rows_in(store, w, t)
    return [
        (w, t, name, *_size_mtime(store, f"{base}/{file_name}", result, info, folder))
        for base, file_name, name, result, info, folder, _fd in _folder(store, w, t)
    ]


def _size_mtime(
    store: Store, key: str, result: os.stat_result | None, info: os.stat_result | None, folder: os.stat_result | None
) -> tuple[int, float | None]:
    mtime: float | None
    if result is None:
        size, mtime = 0, None
    elif _S_ISDIR(result.st_mode):
        size, mtime = tree_size(store, key), result.st_mtime
    else:
        size, mtime = result.st_size, result.st_mtime
    if info is not None:
        size += info.st_size
        if mtime is None or info.st_mtime > mtime:
            mtime = info.st_mtime
    if folder is not None:
        size += tree_size(store, key + ".files")
    return size, mtime


def _rows_in(store: Store, w: str, t: str, prefix: str = "") -> list[tuple[Any, ...]]:
    """:func:`rows` of one local folder: the same walk as :func:`_folder`, flattened for speed."""
    base = f"{JOBS_DIR}/{w}/{t}" + (f"/{prefix}" if prefix else "")
    try:
        dir_fd = os.open(store.path(base), os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return []
    try:
        results, infos, files = _local_groups(dir_fd)
    finally:
        os.close(dir_fd)
    _kinds_fixed(results, infos, files)
    lead = f"{prefix}/" if prefix else ""
    out: list[tuple[Any, ...]] = []
    append = out.append
    names = set(results)
    names.update(infos)
    names.update(files)
    get_result, get_info, get_files = results.get, infos.get, files.get
    for name in sorted(names):
        result, info, folder = get_result(name), get_info(name), get_files(name)
        if result is not None and _S_ISDIR(result.st_mode):
            if info is None and folder is None:
                out.extend(_rows_in(store, w, t, lead + name))
                continue
            append((w, t, lead + name, *_size_mtime(store, f"{base}/{name}", result, info, folder)))
            continue
        if folder is not None:
            append((w, t, lead + name, *_size_mtime(store, f"{base}/{name}", result, info, folder)))
            continue
        if result is None:
            assert info is not None  # the name came from one of the three groups
            append((w, t, lead + name, info.st_size, info.st_mtime))
        elif info is None:
            append((w, t, lead + name, result.st_size, result.st_mtime))
        else:
            rm, im = result.st_mtime, info.st_mtime
            append((w, t, lead + name, result.st_size + info.st_size, rm if rm > im else im))
    return out


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector: a scan allocates ~2 objects per file and no cycle, and each generation-2
    pass over the growing list of jobs would cost more than the scan itself (about 1/3 of ls on 100 000 jobs)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
