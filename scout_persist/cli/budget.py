"""``scout-persist gc``: ``--max-size`` keeps a store under a size budget: aborted jobs, then least recently used
first; ``--uploads`` aborts incomplete multipart uploads (:mod:`scout_persist.cli.uploads`).

The budget covers the selected jobs and, when no workflow/task/status filter narrows the selection, the persist
cache (``var/cache/persistence``: ``scout_persist.save()`` outputs with their sidecars, ``persist()`` entries,
Ruby's).  Entries go in order of their last use (:mod:`scout_persist.usage`: the later of the last load recorded on
local disks and the last write; failed jobs before finished ones of the same age) until the rest fits.  Never
removed: jobs pinned with ``--pin`` or published in the artifact registry (and everything they depend on), running
jobs, jobs or entries whose lock is held, and outputs saved with ``pin=True``.  Stages of file outputs left by killed
runs are removed too (:func:`scout_persist.file_outputs.clean_stages`).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, KeyNotFound
from ..file_outputs import clean_stages
from ..layout import PERSIST_DIR, lock_key_for
from ..locks import Lock, describe_holder
from ..sizes import human_size, parse_size
from ..store import Store
from ..usage import last_used
from . import SUMMARIES
from .clean import RUNNING, add_common_options, protected, remove
from .output import emit, warn
from .scan import JobEntry, list_dir
from .selection import add_selection_options, select
from .uploads import add_option as add_uploads_option, run_gc_uploads

SIDECAR = ".info"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("gc", help=SUMMARIES["gc"])
    add_selection_options(g)
    g.add_argument(
        "--max-size",
        dest="max_size",
        metavar="SIZE",
        help="keep the selected jobs under SIZE in total (e.g. 500M, 20G); required unless --uploads",
    )
    add_uploads_option(g)
    add_common_options(g)
    g.set_defaults(run=run_gc)


def run_gc(args: argparse.Namespace) -> int:
    if args.uploads:
        return run_gc_uploads(args)
    if not args.max_size:
        raise InvalidInputError(
            "gc needs --max-size SIZE (e.g. 20G) to remove jobs, or --uploads to abort incomplete multipart uploads"
        )
    return run_gc_budget(args)  # aborted jobs, then least recently used first: jobs and persist-cache entries


@dataclass
class CacheEntry:
    """One persist-cache entry: its payload key, bytes (payload and sidecar), last use, and whether it is pinned."""

    store: Store
    key: str
    size: int
    used: float
    pinned: bool


def _atime(store: Store, key: str) -> float | None:
    if not store.capabilities.local_paths:
        return None
    try:
        return os.stat(store.path(key)).st_atime
    except OSError:
        return None


def job_last_used(job: JobEntry) -> float:
    """The last use of a job: the later of its result's recorded use (local access time) and its last write."""
    atime = _atime(job.store, job.key) if job.result is not None and not stat.S_ISDIR(job.result.st_mode) else None
    return last_used(atime, job.mtime)


def cache_entries(store: Store) -> list[CacheEntry]:
    """Every entry of the persist cache of ``store`` (sidecars counted with their payload)."""
    files: dict[str, tuple[int, float | None]] = {}
    todo = [PERSIST_DIR]
    while todo:
        folder = todo.pop()
        for name, (is_dir, size, mtime) in list_dir(store, folder):
            key = f"{folder}/{name}"
            if is_dir:
                todo.append(key)
            else:
                files[key] = (size, mtime)
    out = []
    for key, (size, mtime) in files.items():
        if key.endswith(SIDECAR) and key[: -len(SIDECAR)] in files:
            continue
        pinned = False
        side = files.get(key + SIDECAR)
        if side is not None:
            size += side[0]
            try:
                pinned = bool(json.loads(store.get(key + SIDECAR)).get("pinned"))
            except (KeyNotFound, ValueError, AttributeError):
                pinned = False
        out.append(CacheEntry(store, key, size, last_used(_atime(store, key), mtime), pinned))
    return out


def remove_entry(entry: CacheEntry) -> bool:
    """Remove a cache entry unless a writer holds its persist lock; True when removed."""

    lock = Lock(entry.store, lock_key_for(entry.key))
    if not lock.acquire(timeout=0):
        warn(f"skipped {entry.key}: locked by {describe_holder(lock.last_holder)}")
        return False
    try:
        entry.store.delete(entry.key + SIDECAR)  # the sidecar first: readers see no entry, never half of one
        entry.store.delete(entry.key)
        return True
    finally:
        lock.release()


def run_gc_budget(args: argparse.Namespace) -> int:
    """``gc --max-size SIZE``: remove least recently used jobs and cache entries until the store fits."""

    limit = parse_size(args.max_size)
    store, jobs = select(args, "gc")
    keep = protected(args, store)
    whole = (
        args.workflow == "*" and args.task == "*" and not args.status and not args.older_than and not args.newer_than
    )
    entries = cache_entries(store) if whole else []
    total = sum(j.size for j in jobs) + sum(e.size for e in entries)
    # aborted jobs first (their writer is gone: they never finish), whatever the budget
    victims: list[Any] = [j for j in jobs if j.status == "aborted" and j.ref.display not in keep]
    total -= sum(j.size for j in victims)
    chosen = {id(j) for j in victims}
    order = sorted(
        [(job_last_used(j), j.status == "done", 0, i) for i, j in enumerate(jobs)]
        + [(e.used, True, 1, i) for i, e in enumerate(entries)]
    )
    for _used, _done, kind, i in order:
        if total <= limit:
            break
        if kind == 0:
            job = jobs[i]
            if id(job) in chosen or job.ref.display in keep or job.status in RUNNING:
                continue
            victims.append(job)
            total -= job.size
        else:
            entry = entries[i]
            if entry.pinned:
                continue
            victims.append(entry)
            total -= entry.size
    if total > limit:
        warn(f"gc: {human_size(total)} remain above the limit {human_size(limit)}: the rest is pinned or running")
    freed = count = 0
    for victim in victims:
        size = victim.size
        if isinstance(victim, CacheEntry):
            if not args.dry_run and not remove_entry(victim):
                continue
            label, status = victim.key, "cache"
        else:
            if not args.dry_run and not remove(victim):
                continue
            label, status = f"{victim.workflow}/{victim.task}/{victim.name}", victim.status
        freed += size
        count += 1
        emit(f"{'would remove' if args.dry_run else 'removed'}  {status:<8} {human_size(size):>7}  {label}")
    stages = [] if args.dry_run else clean_stages(store)
    warn(
        f"gc: {count} entries, {human_size(freed)}{' (dry run: nothing removed)' if args.dry_run else ''}"
        + (f"; {len(stages)} stale file stages removed" if stages else "")
    )
    return 0
