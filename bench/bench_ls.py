"""``scout-persist ls`` on a generated store of 100 000 jobs (result + .info each), with the progress bar on.

Generates ``<dir>/var/jobs/W{0..3}/task{0..24}/job{i}`` (4 x 25 x 1 000 jobs by default; 5 % in error, without a
result), then times, in fresh processes: ``ls`` (directory listings only), ``ls -s error`` (reads every .info) and
``ls --json``. The tree is kept between runs (``--dir``; default under the system temp dir) unless ``--fresh``.
``run() -> dict`` is what bench/run.py calls.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INFO = {
    "status": "done", "issued": "2026-11-22 14:53:38 +0000", "pid": 6686, "pid_hostname": "vm",
    "task_name": "t", "workflow": "W", "provided_inputs": {}, "non_default_inputs": [], "inputs": [],
    "input_names": [], "type": "string", "dependencies": [], "start": "2026-11-22 14:53:38 +0000",
    "time_elapsed": 0.005214, "total_time_elapsed": 0.031594, "end": "2026-11-22 14:53:38 +0000",
}


def generate(root: Path, n_jobs: int = 100_000, workflows: int = 4, tasks: int = 25) -> float:
    """Write the tree; returns seconds spent."""
    t = time.perf_counter()
    per_task = n_jobs // (workflows * tasks)
    i = 0
    for w in range(workflows):
        for k in range(tasks):
            d = root / "var/jobs" / f"W{w}" / f"task{k}"
            d.mkdir(parents=True, exist_ok=True)
            for _ in range(per_task):
                failed = i % 20 == 0
                info = dict(INFO, workflow=f"W{w}", task_name=f"task{k}", status="error" if failed else "done")
                (d / f"job{i}.info").write_text(json.dumps(info, separators=(",", ":")))
                if not failed:
                    (d / f"job{i}").write_text(f"result {i}")
                i += 1
    (root / ".bench_ls_complete").write_text(str(i))
    return time.perf_counter() - t


def _time(argv: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - t, proc.stderr.decode("utf-8", "replace")  # bytes: keep the bar's '\r'



def run(n_jobs: int = 100_000, directory: str | None = None, fresh: bool = False) -> dict:
    root = Path(directory or os.path.join(tempfile.gettempdir(), f"scout_persist_bench_ls_{n_jobs}"))
    marker = root / ".bench_ls_complete"
    generated = None
    if fresh or not marker.exists() or marker.read_text() != str(n_jobs):
        shutil.rmtree(root, ignore_errors=True)
        generated = generate(root, n_jobs)
    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")
    seconds, summaries, progress_drawn = {}, {}, True
    for name, extra in (("ls", []), ("ls -s error (reads every .info)", ["-s", "error"]), ("ls --json", ["--json"])):
        s, err = _time([exe, "ls", str(root), "--progress", *extra])
        seconds[name] = s
        summaries[name] = err.rsplit("\r", 1)[-1].strip().splitlines()[-1].replace("\x1b[K", "") if err.strip() else ""
        progress_drawn = progress_drawn and "\r" in err and "] " in err
    return {"jobs": n_jobs, "root": str(root), "generate_s": generated, "seconds": seconds,
            "jobs_per_s": {k: n_jobs / v for k, v in seconds.items()}, "summary": summaries,
            "progress_bar_drawn": progress_drawn}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--dir")
    ap.add_argument("--fresh", action="store_true")
    a = ap.parse_args()
    res = run(a.jobs, a.dir, a.fresh)
    if res["generate_s"] is not None:
        print(f"generated {res['jobs']} jobs in {res['generate_s']:.1f} s under {res['root']}")
    print(f"{'command':<34} {'seconds':>8} {'jobs/s':>10}")
    for name, s in res["seconds"].items():
        print(f"{name:<34} {s:>8.2f} {res['jobs_per_s'][name]:>10.0f}   {res['summary'][name]}")
    print(f"progress bar drawn: {res['progress_bar_drawn']}")


if __name__ == "__main__":
    main()
