"""Options shared by ls, clean, gc and verify: which jobs (workflow/task globs, status, age) and how to show ages."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

from ..errors import InvalidInputError, JobNotFound
from ..layout import JOBS_DIR
from ..store import Store
from .progress import Progress
from .scan import JobEntry, no_cyclic_gc, scan
from .target import resolve_root


def parse_days(text: str) -> float:
    """A number of days (``7``, ``0.5``) or ``<n>h`` / ``<n>m`` / ``<n>s`` -> days."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*", str(text).lower())
    if not m:
        raise InvalidInputError(f"age {text!r} is not a duration; write days (7, 0.5) or 12h, 30m, 45s")
    value = float(m.group(1))
    return value / {"": 1, "d": 1, "h": 24, "m": 1440, "s": 86400}[m.group(2)]


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds >= 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{max(seconds, 0):.0f}s"


def add_selection_options(
    p: argparse.ArgumentParser, default_status: str | None = None, root_help: str | None = None
) -> None:
    p.add_argument(
        "root", nargs="?", help=root_help or "Scout root (path or fsspec URL); default $SCOUT_PERSIST_URL or ~/.scout"
    )
    p.add_argument("-w", "--workflow", default="*", help="workflow name or glob")
    p.add_argument("-t", "--task", default="*", help="task name or glob")
    p.add_argument(
        "-s",
        "--status",
        default=default_status,
        help="comma-separated statuses (done, error, aborted, start, missing, unsync, ...)",
    )
    p.add_argument("--older-than", dest="older_than", metavar="DAYS", help="only jobs last modified more than DAYS ago")
    p.add_argument("--newer-than", dest="newer_than", metavar="DAYS", help="only jobs modified within DAYS")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr even when not a terminal")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="never show a progress bar")


def selected_root(args: argparse.Namespace) -> Store:
    """The store of the ROOT argument, which must hold a ``var/jobs`` folder."""
    store = resolve_root(args.root)
    if not store.isdir(JOBS_DIR):
        raise JobNotFound(
            f"no Scout jobs folder {JOBS_DIR!r} under {store.url!r}; give a Scout root such as ~/.scout or "
            "s3://bucket/scout (the folder that holds var/jobs), or set SCOUT_PERSIST_URL"
        )
    return store


def progress_bar(args: argparse.Namespace, label: str) -> Progress:
    show = (args.progress or sys.stderr.isatty()) and not args.no_progress
    return Progress(0, label, enabled=show)


def age_test(args: argparse.Namespace) -> Callable[[float | None], bool] | None:
    """A test of a job's mtime for --older-than/--newer-than, or None when neither is given."""
    older = parse_days(args.older_than) * 86400 if args.older_than else None
    newer = parse_days(args.newer_than) * 86400 if args.newer_than else None
    if older is None and newer is None:
        return None
    now = time.time()

    def test(mtime: float | None) -> bool:
        if mtime is None:
            return False
        age = now - mtime
        return (older is None or age > older) and (newer is None or age <= newer)

    return test


def select(args: argparse.Namespace, label: str) -> tuple[Store, list[JobEntry]]:
    """(store, matching jobs) for the selection options of ``args``; reads .info only for a status filter."""
    store = selected_root(args)
    statuses = frozenset(s for s in (args.status or "").split(",") if s)
    by_age = age_test(args)
    keep = None if by_age is None else (lambda job: by_age(job.mtime))
    bar = progress_bar(args, label)
    try:
        with no_cyclic_gc():
            jobs = list(scan(store, args.workflow, args.task, progress=bar, keep=keep, statuses=statuses or None))
    finally:
        bar.close()
    return store, jobs
