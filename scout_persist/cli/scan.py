"""Find the jobs of a store by listing directories only: ``var/jobs/<Workflow>/<task>/<name>[.info|.files]``.

A job is a name with a result, a ``.info`` or a ``.files`` folder. ``.info`` files are read only when asked
(``JobEntry.info``), so listing 100 000 jobs costs a few directory listings. Local stores use ``os.scandir``;
other fsspec stores one ``ls(detail=True)`` per folder.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..layout import JOBS_DIR
from ..store import Store
from .target import JobRef


@dataclass
class Entry:
    """One directory entry: name, is it a folder, size in bytes, mtime (epoch seconds, None if unknown)."""

    name: str
    is_dir: bool
    size: int
    mtime: float | None


@dataclass
class JobEntry:
    """A job found by a scan; ``info`` is read on first use."""

    store: Store
    key: str
    workflow: str
    task: str
    name: str
    result: Entry | None = None
    info_entry: Entry | None = None
    files: Entry | None = None
    _info: dict | None = field(default=None, repr=False)
    _size: int | None = field(default=None, repr=False)
    mtime: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # the latest of result and .info: a job is as old as its last write
        r = self.result.mtime if self.result is not None else None
        i = self.info_entry.mtime if self.info_entry is not None else None
        self.mtime = i if r is None else (r if i is None else max(r, i))

    @property
    def ref(self) -> JobRef:
        return JobRef(self.store, self.key)

    @property
    def info(self) -> dict:
        if self._info is None:
            from .jobs import load_info

            self._info = (load_info(self.ref) or {}) if self.info_entry else {}
        return self._info

    @property
    def status(self) -> str:
        from .jobs import derived_status

        return derived_status(self.info if self.info_entry else None, self.result is not None)

    @property
    def size(self) -> int:
        """Bytes of the result, the .info and everything under .files (or a folder result)."""
        if self._size is None:
            total = 0
            for e, key in ((self.result, self.key), (self.info_entry, self.key + ".info"),
                           (self.files, self.key + ".files")):
                if e is None:
                    continue
                total += tree_size(self.store, key) if e.is_dir else e.size
            self._size = total
        return self._size


def list_dir(store: Store, key: str) -> list[Entry]:
    """Entries directly under ``key`` (empty when it does not exist)."""
    if store.is_local:
        try:
            with os.scandir(store.path(key)) as it:
                out = []
                for d in it:
                    try:
                        st = d.stat(follow_symlinks=False)
                        is_dir = d.is_dir(follow_symlinks=False)
                    except FileNotFoundError:  # removed while we list
                        continue
                    out.append(Entry(d.name, is_dir, 0 if is_dir else st.st_size, st.st_mtime))
                return out
        except (FileNotFoundError, NotADirectoryError):
            return []
    try:
        listing = store.fs.ls(store.path(key), detail=True)
    except FileNotFoundError:
        return []
    out = []
    for item in listing:
        name = posixpath.basename(item["name"].rstrip("/"))
        if not name or item["name"].rstrip("/") == store.path(key).rstrip("/"):
            continue
        mt = item.get("mtime") or item.get("LastModified") or item.get("created")
        if mt is not None and hasattr(mt, "timestamp"):
            mt = mt.timestamp()
        is_dir = item.get("type") == "directory"
        out.append(Entry(name, is_dir, 0 if is_dir else int(item.get("size") or 0), float(mt) if mt else None))
    return out


def tree_size(store: Store, key: str) -> int:
    """Total bytes of the files below ``key``."""
    if store.is_local:
        total = 0
        for dirpath, _dirs, files in os.walk(store.path(key)):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except FileNotFoundError:
                    pass
        return total
    try:
        return int(sum(store.fs.du(store.path(key), total=False).values()))
    except FileNotFoundError:
        return 0


def task_dirs(store: Store, workflow: str = "*", task: str = "*") -> list[tuple[str, str]]:
    """(workflow, task) folders under ``var/jobs`` matching the glob patterns, sorted."""
    out = []
    for w in sorted(list_dir(store, JOBS_DIR), key=lambda e: e.name):
        if not w.is_dir or not fnmatch.fnmatchcase(w.name, workflow):
            continue
        for t in sorted(list_dir(store, f"{JOBS_DIR}/{w.name}"), key=lambda e: e.name):
            if t.is_dir and fnmatch.fnmatchcase(t.name, task):
                out.append((w.name, t.name))
    return out


def jobs_in(store: Store, workflow: str, task: str, prefix: str = "",
            on_entries: Callable[[int], None] | None = None) -> Iterator[JobEntry]:
    """The jobs of one task folder; names with '/' (sub-folders that are not jobs) are followed."""
    base = f"{JOBS_DIR}/{workflow}/{task}" + (f"/{prefix}" if prefix else "")
    entries = list_dir(store, base)
    if on_entries:
        on_entries(len(entries))
    by_name: dict[str, dict[str, Entry]] = {}
    for e in entries:
        if e.name.startswith(".tmp_mv."):  # an atomic write in flight
            continue
        if e.name.endswith(".info") and not e.is_dir:
            by_name.setdefault(e.name[:-5], {})["info"] = e
        elif e.name.endswith(".files") and e.is_dir:
            by_name.setdefault(e.name[:-6], {})["files"] = e
        else:
            by_name.setdefault(e.name, {})["result"] = e
    for name in sorted(by_name):
        parts = by_name[name]
        result = parts.get("result")
        if result is not None and result.is_dir and "info" not in parts and "files" not in parts:
            yield from jobs_in(store, workflow, task, f"{prefix}/{name}".lstrip("/"), on_entries)
            continue
        full = f"{prefix}/{name}".lstrip("/")
        yield JobEntry(store, f"{base}/{name}", workflow, task, full, result, parts.get("info"), parts.get("files"))


def scan(store: Store, workflow: str = "*", task: str = "*", progress=None) -> Iterator[JobEntry]:
    """Every job of ``store`` in workflow/task folders matching the globs; ``progress`` advances per task folder."""
    dirs = task_dirs(store, workflow, task)
    if progress is not None:
        progress.total = len(dirs)
    found = 0
    for w, t in dirs:
        for job in jobs_in(store, w, t):
            found += 1
            if progress is not None and found % 1000 == 0:
                progress.note(f"{found} jobs")
            yield job
        if progress is not None:
            progress.note(f"{found} jobs")
            progress.advance()
