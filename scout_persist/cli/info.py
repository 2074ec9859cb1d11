"""``scout-persist info JOB``: Ruby's ``scout workflow info`` (key = fingerprint per .info key).

Options: -i, -ri, --json, --why.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable
from typing import Any

from ..info import NOINFO
from ..job_status import status_and_reason
from ..liveness import RUNNING_STATUSES
from . import SUMMARIES
from .fingerprint import color, fingerprint
from .jobs import info_problem, load_info, not_a_job, own_inputs, recursive_inputs, result_exists
from .output import emit, emit_json, use_color, warn
from .target import JobRef, resolve_job
from .why import explain


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("info", help=SUMMARIES["info"])
    p.add_argument("job", help="job path, fsspec URL, or key under $SCOUT_PERSIST_URL (W/task/name)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-i", "--inputs", action="store_true", help="print the task's own inputs, name = value")
    g.add_argument(
        "-ri",
        "--recursive_inputs",
        "--recursive-inputs",
        action="store_true",
        dest="recursive_inputs",
        help="print the inputs of the job and all its dependencies",
    )
    g.add_argument("--json", action="store_true", help="print the .info as JSON")
    g.add_argument(
        "--why",
        action="store_true",
        help="say whether a flow would reuse the job, and what changed if not (status, result, signature)",
    )
    p.add_argument(
        "-s",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --why: an input value to compare with the recorded one (repeatable)",
    )
    p.add_argument("--task-version", dest="task_version", help="with --why: the task version= to compare")
    p.add_argument("--root", help="store root for keys (default $SCOUT_PERSIST_URL or ~/.scout)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ref = resolve_job(args.job, args.root)
    info = load_info(ref)
    if info is None:
        raise not_a_job(ref)
    title = "magenta" if use_color(args) else None
    shown = _dead_writer(ref, info)
    if args.json:
        emit_json(info)
        return _damaged(ref, info)
    if args.why:
        reused, lines = explain(ref, info, args.set, args.task_version)
        for line in lines:
            emit(line)
        return 0 if reused else 1
    pairs: Iterable[tuple[str, Any]]
    if args.inputs:
        pairs = own_inputs(info).items()
    elif args.recursive_inputs:
        pairs = recursive_inputs(ref, info).items()
    else:
        pairs = ((k, shown if k == "status" and shown else v) for k, v in info.items() if k != "exception")
    for key, value in pairs:
        if value is None and not (args.inputs or args.recursive_inputs):
            continue
        emit(f"{color(title, str(key))} = {fingerprint(value)}")
    if not (args.inputs or args.recursive_inputs) and info.get("status") == "error":
        _report_exception(ref, info)
    return _damaged(ref, info)


def _damaged(ref: JobRef, info: dict[str, Any]) -> int:
    """Ruby shows an unreadable .info as status 'noinfo' and exits 0; we say why and how to fix it, and exit 2."""
    if info.get("status") != NOINFO or len(info) != 1:
        return 0
    problem = info_problem(ref)
    if problem is None:
        return 0
    warn(f"scout-persist info: {problem}")
    warn(
        f"hint: the job cannot be trusted without its .info; `scout-persist clean {_quoted(ref.display)}` "
        "removes it so that it is computed again"
    )
    return 2


def _dead_writer(ref: JobRef, info: dict[str, Any]) -> str | None:
    """``aborted`` (with a note on stderr) when the job's .info says it runs but its writer is gone, else None."""
    if str(info.get("status")) not in RUNNING_STATUSES:
        return None
    shown, gone = status_and_reason(ref.store, ref.key, info, result_exists(ref))
    if gone is None:
        return None
    warn(
        f"note: the .info of {ref.display!r} says status {info.get('status')!r}, but {gone}: the job "
        f"will never finish and is shown as {shown!r}; `scout-persist clean {_quoted(ref.display)}` removes it"
    )
    return shown


def _quoted(path: str) -> str:
    return shlex.quote(path)


def _report_exception(ref: JobRef, info: dict[str, Any]) -> None:
    """Ruby logs the backtrace and ``Class: message`` on stderr for an errored job; the exit code stays 0."""
    messages = info.get("messages") or []
    backtrace = info.get("backtrace") or []
    if backtrace:
        warn("BACKTRACE:")
        for line in reversed(backtrace):
            warn(str(line))
    if messages:
        warn(str(messages[-1]))
