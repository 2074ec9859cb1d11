"""``scout-persist ls [ROOT]``: the jobs of a store by workflow/task/status/age, with sizes; ``--json``."""

from __future__ import annotations

import argparse
import time

from .output import emit, emit_json, warn
from .selection import add_selection_options, human_age, human_size, select


def add_parser(sub) -> None:
    p = sub.add_parser("ls", help="list the jobs of a store (reads .info only when a status is asked for)")
    add_selection_options(p)
    p.add_argument("-l", "--long", action="store_true", help="also show each job's status (reads every .info)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store, jobs = select(args, "ls")
    with_status = args.long or bool(args.status)
    now = time.time()
    if args.json:
        rows = []
        for j in jobs:
            row = {"workflow": j.workflow, "task": j.task, "name": j.name, "path": j.ref.display,
                   "size": j.size, "mtime": j.mtime, "has_result": j.result is not None,
                   "has_info": j.info_entry is not None, "has_files": j.files is not None}
            if with_status:
                row["status"] = j.status
            rows.append(row)
        emit_json(rows)
        return 0
    total = 0
    for j in jobs:
        total += j.size
        age = None if j.mtime is None else now - j.mtime
        cols = [f"{j.status:<8}"] if with_status else []
        cols += [f"{human_size(j.size):>7}", f"{human_age(age):>4}", f"{j.workflow}/{j.task}/{j.name}"]
        emit("  ".join(cols))
    warn(f"{len(jobs)} jobs, {human_size(total)} in {store.url}")
    return 0
