"""``scout-persist runs`` over 10 000 generated run records, side by side with ``find ... -exec cat`` in the same run.

Generates ``<dir>/var/runs/W{0..3}/<uuid>/run.json``: 10 000 records of 8 jobs each (2 % running with a lapsed
lease: shown crashed, read twice; 5 % failed), like the records the Prefect plug-in writes.  Then times, in fresh
processes and interleaved round by round: ``find var/runs -name run.json -exec cat {} +`` (the yardstick: every
record read once, no parsing), ``runs`` (every record read and parsed, newest first), ``runs --status failed`` and
``runs --json``, each with the progress bar on.  The median of ``--repeat`` rounds is reported with its ratio to the
yardstick and the target (``runs`` <= 3x, as ``ls -s error``: it parses what precedes each record's jobs and judges
leases, ``find | cat`` only copies bytes).
The tree is kept between runs (``--dir``; default under the system temp dir) unless ``--fresh``.
``run() -> dict`` is what bench/run.py calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_ls import print_table, time_command

TARGETS = {"runs": 3.0}  # as `ls -s error`, which also reads every entry
JOBS_PER_RUN = 8
LAYOUT = "counts-then-jobs"  # what the kept tree was generated as (a new layout regenerates it)


def record(i: int, start: float) -> dict:
    run_id = str(uuid.UUID(int=i + 1))
    status = "failed" if i % 20 == 0 else "running" if i % 50 == 1 else "completed"
    iso = dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat()
    jobs = [
        {
            "key": f"var/jobs/W{i % 4}/task{k}/job{i}_{k}",
            "workflow": f"W{i % 4}",
            "task": f"task{k}",
            "status": "error" if status == "failed" and k == JOBS_PER_RUN - 1 else "done",
            "reused": k % 2 == 0,
            "task_run_id": str(uuid.UUID(int=(i << 8) + k)),
            "dependencies": [f"var/jobs/W{i % 4}/task{k - 1}/job{i}"] if k else [],
            "started": iso,
            "ended": iso,
            "seconds": 0.01 * k,
        }
        for k in range(JOBS_PER_RUN)
    ]
    return {
        "format": "scout-persist-run/1",
        "run_id": run_id,
        "flow_run_name": f"bench-{i}",
        "workflow": f"W{i % 4}",
        "flow": f"W{i % 4}",
        "entrypoint": "flows/bench.py:bench",
        "source_file": "/src/flows/bench.py",
        "cwd": "/src",
        "code": {"hash": "0" * 32, "flow": "1" * 32, "tasks": {}, "ran": {}},
        "parameters": {"n": i, "label": "bench"},
        "parameter_digests": {},
        "resumable": True,
        "not_resumable": None,
        "host": "bench-host",
        "pid_hostname": "bench-host",
        "pid": 1000 + i,
        "identity": {},
        "start": iso,
        "end": None if status == "running" else iso,
        "status": status,
        "lease": {"seconds": 60.0, "refresh": 20.0, "seq": 3},
        "task_runner": "ThreadPoolTaskRunner",
        "parent_task_run_id": None,
        "resumed_from": None,
        "reused": [],
        "artifacts": {"logged": [], "used": []},
        "error": "Flow run encountered an exception" if status == "failed" else None,
        "counts": {s: sum(j["status"] == s for j in jobs) for s in sorted({j["status"] for j in jobs})},
        "jobs": jobs,  # last, as the plug-in writes it
    }


def generate(root: Path, n_runs: int = 10_000) -> float:
    t = time.perf_counter()
    now = time.time()
    old = now - 3600
    for i in range(n_runs):
        rec = record(i, now - n_runs + i)
        folder = root / "var/runs" / rec["workflow"] / rec["run_id"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "run.json"
        path.write_text(json.dumps(rec, separators=(",", ":")))
        if rec["status"] == "running":
            os.utime(path, (old, old))  # its lease lapsed an hour ago: crashed
    (root / ".bench_runs_complete").write_text(f"{n_runs} {LAYOUT}")
    return time.perf_counter() - t


def run(n_runs: int = 10_000, directory: str | None = None, fresh: bool = False, repeat: int = 5) -> dict:
    root = Path(directory or os.path.join(tempfile.gettempdir(), f"scout_persist_bench_runs_{n_runs}"))
    marker = root / ".bench_runs_complete"
    generated = None
    if fresh or not marker.exists() or marker.read_text() != f"{n_runs} {LAYOUT}":
        shutil.rmtree(root, ignore_errors=True)
        generated = generate(root, n_runs)
    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")
    cli = (
        [exe]
        if os.path.exists(exe)
        else [sys.executable, "-c", "import sys; from scout_persist.cli import main; sys.exit(main())"]
    )
    cases = {
        "find -exec cat": (["find", "var/runs", "-name", "run.json", "-exec", "cat", "{}", "+"], str(root)),
        "runs": (cli + ["runs", "--root", str(root), "--progress"], None),
        "runs --status failed": (cli + ["runs", "--root", str(root), "--progress", "--status", "failed"], None),
        "runs --json": (cli + ["runs", "--root", str(root), "--progress", "--json"], None),
    }
    for argv, cwd in cases.values():  # warm the page cache and the .pyc files
        time_command(argv, cwd)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    summary: dict[str, str] = {}
    bar_drawn = False
    for _ in range(repeat):
        for name, (argv, cwd) in cases.items():
            s, err = time_command(argv, cwd)
            samples[name].append(s)
            if name != "find -exec cat":
                summary[name] = err.strip().rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
                bar_drawn = bar_drawn or ("\r" in err and "] " in err)
    seconds = {name: statistics.median(v) for name, v in samples.items()}
    base = seconds["find -exec cat"]
    ratios = {name: seconds[name] / base for name in cases if name != "find -exec cat"}
    return {
        "runs": n_runs,
        "root": str(root),
        "generate_s": generated,
        "repeat": repeat,
        "seconds": seconds,
        "samples": samples,
        "ratio_to_find": ratios,
        "targets": dict(TARGETS),
        "summary": summary,
        "progress_bar_drawn": bar_drawn,
        "runs_per_s": {k: n_runs / v for k, v in seconds.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--dir")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print_table(run(args.runs, args.dir, args.fresh, args.repeat), counted="runs")


if __name__ == "__main__":
    main()
