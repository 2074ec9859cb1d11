"""``scout-persist runs``: the flow runs recorded in a store (``var/runs``), newest first; ``runs show RUN``;
``runs prune``.

Reads the store alone (no Prefect database).  ``runs`` reads every record once (the ``running`` ones twice, for
the age of their lease) and draws a progress bar on a terminal when that takes more than half a second.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from ..runs import (
    CRASHED,
    RESUMED_BY,
    REUSED_BY,
    RUNNING,
    STATUSES,
    delete_run,
    list_runs,
    load_run,
    markers,
    plan_prune,
    writer_gone_here,
)
from . import SUMMARIES
from .clean import remove
from .output import emit, emit_json, warn
from .plot import plot
from .progress import Progress
from .provenance import Node, build
from .scan import job_entry
from .target import JobRef, resolve_root

if TYPE_CHECKING:
    from ..runs import Run
    from ..store import Store

SLOW = 0.5  # seconds before the progress bar appears
SUPPRESS = argparse.SUPPRESS


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help=SUMMARIES["runs"])
    _common(p)
    p.add_argument("-w", "--workflow", help="only the runs of this workflow (the flow's name)")
    p.add_argument(
        "-s",
        "--status",
        help="only runs in these statuses (comma-separated): running, completed, failed, cancelled, crashed",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list (each run with its jobs)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr even when not a terminal")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="never show a progress bar")
    p.set_defaults(run=run_runs)
    verbs = p.add_subparsers(dest="verb", metavar="[show|prune]")

    s = verbs.add_parser("show", help="one run: parameters, timings, each job with status, duration and path")
    s.add_argument("run_ref", metavar="RUN", help="a run id (or a unique start of one)")
    _common(s, SUPPRESS)
    s.add_argument("-w", "--workflow", default=SUPPRESS, help="the run's workflow, when its id is ambiguous")
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", default=SUPPRESS, help="print the record as JSON, with the lineage")
    out.add_argument(
        "-p",
        "--plot",
        metavar="FILE",
        help="draw the run's jobs and their dependencies to FILE (.png, .svg or .pdf), as prov --plot does",
    )
    s.set_defaults(verb="show")

    r = verbs.add_parser("prune", help="delete old run records and the jobs only they reach (try --dry-run first)")
    _common(r, SUPPRESS)
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--keep-last", dest="keep_last", type=int, metavar="N", help="keep the N newest runs of each workflow"
    )
    which.add_argument(
        "--older-than",
        dest="older_than",
        type=float,
        metavar="DAYS",
        help="delete runs started more than DAYS days ago",
    )
    r.add_argument("-w", "--workflow", default=SUPPRESS, help="only prune the runs of this workflow")
    r.add_argument("-n", "--dry-run", dest="dry_run", action="store_true", help="print what would go, delete nothing")
    r.add_argument(
        "--json", action="store_true", default=SUPPRESS, help="print what is (or would be) deleted and kept as JSON"
    )
    r.set_defaults(verb="prune")


def _common(p: argparse.ArgumentParser, default: str | None = None) -> None:
    # a verb's options default to SUPPRESS: the same option given before the verb (runs --root R show X) stays
    p.add_argument("--root", default=default, help="store root (path or fsspec URL); default $SCOUT_PERSIST_URL")


class _SlowProgress(Progress):
    """A progress bar that appears only once the work has taken more than :data:`SLOW` seconds."""

    def _maybe_draw(self, force: bool = False) -> None:
        if time.monotonic() - self.started < SLOW and not (force and self.redraws):
            return
        super()._maybe_draw(force)

    def close(self) -> None:
        if self.enabled and self.redraws:
            super().close()


def _bar(args: argparse.Namespace) -> _SlowProgress:

    show = (getattr(args, "progress", False) or sys.stderr.isatty()) and not getattr(args, "no_progress", False)
    return _SlowProgress(0, "runs", enabled=show)


def _store(args: argparse.Namespace) -> Store:

    return resolve_root(args.root)


def when(t: float | None) -> str:
    if t is None:
        return "?"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _statuses(text: str | None) -> set[str] | None:

    if not text:
        return None
    wanted = {s.strip() for s in text.split(",") if s.strip()}
    bad = sorted(wanted - set(STATUSES))
    if bad:
        raise InvalidInputError(f"--status {', '.join(bad)}: a run's status is one of {', '.join(STATUSES)}")
    return wanted


def _needs_parts(run: Run) -> bool:

    return run.status in (RUNNING, CRASHED) or run.record.get("task_runner") not in (None, "ThreadPoolTaskRunner")


def _jobs_column(run: Run) -> str:
    counts = run.job_counts()
    total = sum(counts.values())
    if not total:
        return "no jobs"
    rest = [f"{n} {s}" for s, n in sorted(counts.items()) if s != "done"]
    return f"{counts.get('done', 0)}/{total} done" + (f" ({', '.join(rest)})" if rest else "")


def run_runs(args: argparse.Namespace) -> int:
    verb = getattr(args, "verb", None)
    if verb == "show":
        return run_show(args)
    if verb == "prune":
        return run_prune(args)
    return run_list(args)


def run_list(args: argparse.Namespace) -> int:

    store = _store(args)
    wanted = _statuses(args.status)
    problems: list[str] = []
    bar = _bar(args)
    try:
        runs = list_runs(
            store, args.workflow, progress=bar, problems=problems, with_parts=_needs_parts if args.json else None
        )
    finally:
        bar.close()
    if wanted is not None:
        runs = [r for r in runs if r.status in wanted]
    for p in problems:
        warn(f"skipped: {p}")
    if args.json:
        emit_json([r.summary() for r in runs])
        return 0
    if not runs:
        warn(f"no runs{' in status ' + args.status if args.status else ''} in {store.where('var/runs')}")
        return 0
    lines = [f"{'RUN':<36}  {'STATUS':<9}  {'STARTED (UTC)':<19}  {'TIME':>6}  {'FLOW':<16}  JOBS"]
    for r in runs:
        lines.append(
            f"{r.run_id:<36}  {r.status:<9}  {when(r.started):<19}  {duration(r.seconds):>6}  "
            f"{r.flow:<16}  {_jobs_column(r)}"
        )
    emit("\n".join(lines))
    warn(f"{len(runs)} runs in {store.where('var/runs')}")
    return 0


# ---------------------------------------------------------------------------------------------------- show
def _lineage(store: Store, run: Run) -> dict[str, Any]:

    return {
        "resumed_by": markers(store, run.workflow, run.run_id, RESUMED_BY),
        "reused_by": markers(store, run.workflow, run.run_id, REUSED_BY),
    }


def run_show(args: argparse.Namespace) -> int:

    store = _store(args)
    run = load_run(store, args.run_ref, args.workflow)
    lineage = _lineage(store, run)
    if args.plot:
        return _plot(store, run, args.plot)
    if args.json:
        emit_json({**run.summary(), **lineage})
        return 0
    rec = run.record
    emit(
        f"run {run.run_id}  (flow {run.flow}"
        + (f", flow run {rec['flow_run_name']!r}" if rec.get("flow_run_name") else "")
        + ")"
    )
    status = run.status + (f": {run.reason}" if run.reason else "")
    if run.status == "running" and writer_gone_here(rec):
        status += "; its process is gone from this machine: it counts as crashed once its lease lapses"
    emit(f"  status      {status}")
    if rec.get("error"):
        emit(f"  error       {rec['error']}")
    emit(
        f"  started     {when(run.started)} UTC"
        + (f"   ended {when(run.ended)} UTC ({duration(run.seconds)})" if run.ended else "")
    )
    emit(f"  host        {rec.get('host', '?')} pid {rec.get('pid', '?')}   cwd {rec.get('cwd', '?')}")
    emit(f"  entrypoint  {rec.get('entrypoint') or '-'}")
    code = got if isinstance(got := rec.get("code"), dict) else {}
    emit(
        f"  code        {code.get('hash', '?')} (flow {str(code.get('flow', '?'))[:12]}"
        + "".join(f", {n} {str(c)[:12]}" for n, c in sorted((code.get("ran") or code.get("tasks") or {}).items()))
        + ")"
    )
    params = rec.get("parameters") or {}
    digests = rec.get("parameter_digests") or {}
    shown = [f"{k}={v!r}" for k, v in params.items()] + [
        f"{k}=<{v.split(':', 1)[0]} {v.split(':')[-1][:12]}>" for k, v in digests.items()
    ]
    emit(f"  parameters  {' '.join(shown) or '(none)'}")
    emit(f"  resumable   {'yes' if rec.get('resumable') else 'no: ' + str(rec.get('not_resumable'))}")
    src = rec.get("resumed_from")
    if isinstance(src, dict):
        emit(
            f"  resumed     from run {src.get('run_id')}"
            + (f" (--from {src['from_task']})" if src.get("from_task") else "")
        )
    for m in lineage["resumed_by"]:
        emit(f"  resumed by  run {m['run_id']}" + (f" at {m['at']}" if m.get("at") else ""))
    for u in run.reused():
        emit(f"  reused      {u.get('task')} of run {u.get('run_id')}: {store.where(str(u.get('job')))}")
    for m in lineage["reused_by"]:
        emit(f"  reused by   run {m['run_id']} ({m.get('task')})")
    arts = run.artifacts()
    for a in arts["logged"]:
        emit(f"  logged      artifact {a.get('ref')}")
    for a in arts["used"]:
        emit(f"  used        artifact {a.get('ref')}")
    jobs = run.jobs()
    emit(f"  jobs        {_jobs_column(run)}")
    for j in jobs:
        how = "reused" if j.get("reused") else "ran" if j.get("status") == "done" else ""
        path = store.where(str(j.get("key"))) if not j.get("store") else f"{j['store']}/{j.get('key')}"
        emit(f"    {j.get('status')!s:<7} {how:<6} {duration(j.get('seconds')):>7}  {j.get('task')!s:<20} {path}")
        if j.get("error"):
            emit(f"      {j['error']}")
        checked = j.get("audit")
        if isinstance(checked, dict):
            mismatch = checked.get("mismatch")
            verdict = (
                "ok"
                if mismatch is None
                else f"MISMATCH: {mismatch}" + (" (replaced)" if checked.get("replaced") else "")
            )
            emit(f"      audit {verdict}")
    mismatches = [j for j in jobs if isinstance(j.get("audit"), dict) and j["audit"].get("mismatch") is not None]
    if mismatches:
        emit(f"  audit       {len(mismatches)} mismatch(es): a stored value differs from what the code computes now")
    return 0


def _plot(store: Store, run: Run, filename: str) -> int:

    jobs = [j for j in run.jobs() if isinstance(j.get("key"), str)]
    if not jobs:
        raise InvalidInputError(f"run {run.run_id} has no jobs to plot")
    needed = {d for j in jobs for d in j.get("dependencies") or []}
    sinks = [j for j in jobs if j["key"] not in needed] or jobs

    class RunNode(Node):
        @property
        def workflow(self) -> str:
            return run.flow

        @property
        def task(self) -> str:
            return "run"

        @property
        def name(self) -> str:
            return run.run_id

        @property
        def shown_status(self) -> str:
            return run.status

    root = RunNode(JobRef(store, run.dir), None, run.status, True, None)
    root.dependencies = [build(JobRef(store, j["key"])) for j in sinks]
    emit(plot(root, filename))
    return 0


# --------------------------------------------------------------------------------------------------- prune
def run_prune(args: argparse.Namespace) -> int:

    store = _store(args)
    bar = _bar(args)
    try:
        plan = plan_prune(
            store, keep_last=args.keep_last, older_than_days=args.older_than, workflow=args.workflow, progress=bar
        )
    finally:
        bar.close()
    verb = "would delete" if args.dry_run else "deleted"
    done = "would be deleted" if args.dry_run else "deleted"
    deleted_jobs: list[str] = []
    skipped: list[str] = []
    for key in plan.remove_jobs:
        if args.dry_run:
            deleted_jobs.append(key)
            continue
        entry = job_entry(store, key)
        if entry is None:
            continue
        if remove(entry):
            deleted_jobs.append(key)
        else:
            skipped.append(key)
    removed_runs = []
    for run in plan.remove_runs:
        if not args.dry_run:
            delete_run(store, run)
        removed_runs.append(run)
    if args.json:
        emit_json(
            {
                "dry_run": bool(args.dry_run),
                "runs_deleted": [r.run_id for r in removed_runs],
                "runs_kept": [r.run_id for r in plan.keep_runs],
                "jobs_deleted": deleted_jobs,
                "jobs_kept": plan.kept_jobs,
                "jobs_skipped": skipped,
            }
        )
        return 1 if skipped else 0
    for r in removed_runs:
        emit(f"{verb} run  {r.run_id}  {r.status:<9} {when(r.started)}  {r.flow}")
    for key in deleted_jobs:
        emit(f"{verb} job  {key}")
    for key, why in sorted(plan.kept_jobs.items()):
        emit(f"kept job     {key}: {why}")
    warn(
        f"runs prune: {len(removed_runs)} runs and {len(deleted_jobs)} jobs {done}, {len(plan.keep_runs)} runs kept"
        + (" (dry run: nothing deleted)" if args.dry_run else "")
        + (f"; {len(skipped)} jobs skipped (locked or running)" if skipped else "")
    )
    return 1 if skipped else 0
