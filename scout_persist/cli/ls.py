"""``scout-persist ls [ROOT]``: the jobs of a store by workflow/task/status/age, with sizes; ``--json``."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..sizes import human_size
from . import SUMMARIES
from .output import emit, emit_json, warn
from .scan import in_two_processes, no_cyclic_gc, rows_in, task_dirs
from .selection import add_selection_options, age_test, human_age, progress_bar, select, selected_root

if TYPE_CHECKING:
    from .progress import Progress

_FLUSH_LINES = 4096  # lines per write of the long listings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help=SUMMARIES["ls"])
    add_selection_options(p)
    p.add_argument("-l", "--long", action="store_true", help="also show each job's status (reads every .info)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with_status = args.long or bool(args.status)
    if not with_status and not args.json:
        return _plain(args)
    store, jobs = select(args, "ls")
    now = time.time()
    if args.json:
        rows = []
        for j in jobs:
            row = {
                "workflow": j.workflow,
                "task": j.task,
                "name": j.name,
                "path": j.ref.display,
                "size": j.size,
                "mtime": j.mtime,
                "has_result": j.result is not None,
                "has_info": j.info_entry is not None,
                "has_files": j.files is not None,
            }
            if with_status:
                row["status"] = j.status
            rows.append(row)
        emit_json(rows)
        return 0
    statuses = [j.status for j in jobs]
    width = max(map(len, statuses), default=0)  # forced statuses may be long words
    lines: list[str] = []
    total = 0
    for status, j in zip(statuses, jobs):
        size, m = j.size, j.mtime
        total += size
        lines.append(
            f"{status:<{width}}  {human_size(size):>7}  {'?' if m is None else human_age(now - m):>4}  "
            f"{j.workflow}/{j.task}/{j.name}"
        )
        if len(lines) >= _FLUSH_LINES:
            emit("\n".join(lines))
            lines.clear()
    if lines:
        emit("\n".join(lines))
    warn(f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}, {human_size(total)} in {store.url}")
    return 0


def _plain(args: argparse.Namespace) -> int:
    """Size, age and name of every job from the listing alone: the hot path of `ls` (no .info read)."""

    store = selected_root(args)
    by_age = age_test(args)
    now = time.time()

    def render(part: list[tuple[str, str]], bar: Progress | None) -> tuple[str, int, int]:
        lines: list[str] = []
        append = lines.append
        count = total = 0
        for part_w, part_t in part:
            for w, t, name, size, m in rows_in(store, part_w, part_t):
                if by_age is not None and not by_age(m):
                    continue
                count += 1
                total += size
                append(f"{human_size(size):>7}  {'?' if m is None else human_age(now - m):>4}  {w}/{t}/{name}")
            if bar is not None:
                bar.note(f"{count} jobs")
                bar.advance()
        return "\n".join(lines), count, total

    dirs = task_dirs(store, args.workflow, args.task)
    bar = progress_bar(args, "ls")
    bar.total = len(dirs)
    count = total = 0
    try:
        with no_cyclic_gc():
            for part, (text, n, size) in in_two_processes(store, dirs, render, bar):
                if text:
                    emit(text)
                count += n
                total += size
                if bar.done < len(dirs) and part is not dirs and part[-1] == dirs[-1]:
                    bar.advance(len(dirs) - bar.done)
    finally:
        bar.close()
    warn(f"{count} job{'' if count == 1 else 's'}, {human_size(total)} in {store.url}")
    return 0
