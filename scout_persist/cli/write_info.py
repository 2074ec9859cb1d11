"""``scout-persist write_info JOB KEY VALUE``: Ruby's ``scout workflow write_info`` (SCOUT_FORMAT §11.4).

The value is stored as the command-line string; ``DELETE`` or ``nil`` stores null and implies ``-f``. A key is
written only when absent, or with ``-f``: a new key is appended, an existing scalar replaced and moved to the end,
an existing list gets the value appended. Unlike Ruby, an existing key without ``-f`` is reported and exits 1.
``-r`` does the same on every recursive dependency written on the same host (``-p``: and by the same pid, compared
as numbers). Each ``.info`` is rewritten atomically.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import JobNotFound
from ..info import InfoFile, merge_value
from ..lease import rewrite_info
from . import SUMMARIES
from .jobs import load_info, recursive_dependencies
from .output import warn
from .target import JobRef, resolve_job

DELETE_WORDS = ("DELETE", "nil")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("write_info", aliases=["write-info"], help=SUMMARIES["write_info"])
    p.add_argument("job", help="job path, fsspec URL, or key under $SCOUT_PERSIST_URL")
    p.add_argument("key")
    p.add_argument("value", help="stored as a string; DELETE or nil stores null (and implies -f)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite a key that is already present")
    p.add_argument(
        "-r", "--recursive", action="store_true", help="also write every recursive dependency created on the same host"
    )
    p.add_argument(
        "-p",
        "--check_pid",
        "--check-pid",
        dest="check_pid",
        action="store_true",
        help="with -r: only dependencies written by the same pid",
    )
    p.add_argument("--root", help="store root for keys (default $SCOUT_PERSIST_URL or ~/.scout)")
    p.set_defaults(run=run)


def write(ref: JobRef, key: str, value: Any, force: bool) -> bool:
    """Apply Ruby's rule to one job, never over a concurrent writer (the job's lock, or a conditional write);
    True when its .info changed."""

    def change(info: InfoFile) -> bool:
        if not force and key in info.data:
            return False
        merge_value(info.data, key, value, move_to_end=True)
        return True

    return rewrite_info(ref.store, ref.key, change)


def run(args: argparse.Namespace) -> int:
    ref = resolve_job(args.job, args.root)
    if not ref.store.exists(ref.info_key):
        raise JobNotFound(
            f"no .info for job {ref.display!r}; write_info only edits existing jobs "
            "(give the job result path, without .info)"
        )
    value = args.value
    force = args.force
    if value in DELETE_WORDS:
        value, force = None, True
    written = write(ref, args.key, value, force)
    if not written:
        current = (load_info(ref) or {}).get(args.key)
        warn(
            f"write_info: {args.key!r} is already set in the .info of {ref.display!r} (to {current!r}); "
            f"nothing written: a key is only added unless forced; pass -f to replace it"
        )
    if not args.recursive:
        return 0 if written else 1
    own = load_info(ref) or {}
    kept: list[str] = []
    for dep in recursive_dependencies(ref):
        dep_info = load_info(dep)
        if dep_info is None:
            continue
        if dep_info.get("pid_hostname") != own.get("pid_hostname"):
            continue
        if args.check_pid and str(dep_info.get("pid")) != str(own.get("pid")):
            continue
        try:
            if not write(dep, args.key, value, force):
                kept.append(dep.display)
        except Exception as exc:  # noqa: BLE001 - Ruby warns and goes on with the other dependencies
            warn(f"could not set info {args.key!r} for {dep.display}: {exc}")
    if kept:
        warn(
            f"write_info: {args.key!r} is already set in {len(kept)} dependencies, left as they are "
            f"(pass -f to replace it): {', '.join(kept)}"
        )
    return 0 if written else 1
