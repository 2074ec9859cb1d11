"""``scout-persist ls`` on a generated store of 100 000 jobs, side by side with ``find`` in the same run.

Generates ``<dir>/var/jobs/W{0..3}/task{0..24}/job{i}`` (4 x 25 x 1 000 jobs by default; 5 % in error, without a
result), then times, in fresh processes and interleaved round by round (so load on the machine hits both sides
alike): ``find . -type f -printf "%s %p\\n"`` (the yardstick of issue 16), ``ls`` (directory listings only),
``ls -s error`` (reads every .info) and ``ls --json``, each with the progress bar on, and the first two again with
``SCOUT_PERSIST_SCAN_FORK=0`` (one process: what a single core gives). The median of ``--repeat`` rounds is
reported with its ratio to ``find`` and the target (``ls`` <= 2x, ``ls -s error`` <= 3x).
The tree is kept between runs (``--dir``; default under the system temp dir) unless ``--fresh``.
``run() -> dict`` is what bench/run.py calls.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INFO = {
    "status": "done",
    "issued": "2026-11-22 14:53:38 +0000",
    "pid": 6686,
    "pid_hostname": "vm",
    "task_name": "t",
    "workflow": "W",
    "provided_inputs": {},
    "non_default_inputs": [],
    "inputs": [],
    "input_names": [],
    "type": "string",
    "dependencies": [],
    "start": "2026-11-22 14:53:38 +0000",
    "time_elapsed": 0.005214,
    "total_time_elapsed": 0.031594,
    "end": "2026-11-22 14:53:38 +0000",
}
FIND = "find"
# issue 16 item 3: ratio of our wall time to find's, measured in the same run
TARGETS = {"ls": 2.0, "ls -s error": 3.0}


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


def time_command(argv: list[str], cwd: str | None = None, env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, cwd=cwd, env=env)
    return time.perf_counter() - t, proc.stderr.decode("utf-8", "replace")  # bytes: keep the bar's '\r'


def _summary(err: str) -> str:
    if not err.strip():
        return ""
    return err.rsplit("\r", 1)[-1].strip().splitlines()[-1].replace("\x1b[K", "")


def run(n_jobs: int = 100_000, directory: str | None = None, fresh: bool = False, repeat: int = 5) -> dict:
    root = Path(directory or os.path.join(tempfile.gettempdir(), f"scout_persist_bench_ls_{n_jobs}"))
    marker = root / ".bench_ls_complete"
    generated = None
    if fresh or not marker.exists() or marker.read_text() != str(n_jobs):
        shutil.rmtree(root, ignore_errors=True)
        generated = generate(root, n_jobs)
    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")
    one = {**os.environ, "SCOUT_PERSIST_SCAN_FORK": "0"}
    cases = {
        "find": ([FIND, ".", "-type", "f", "-printf", "%s %p\n"], str(root), None),
        "ls": ([exe, "ls", str(root), "--progress"], None, None),
        "ls -s error": ([exe, "ls", str(root), "--progress", "-s", "error"], None, None),
        # shown for honesty: the same on one core (no second process for the scan)
        "ls, 1 process": ([exe, "ls", str(root), "--progress"], None, one),
        "ls -s error, 1 process": ([exe, "ls", str(root), "--progress", "-s", "error"], None, one),
        "ls --json": ([exe, "ls", str(root), "--progress", "--json"], None, None),
    }
    for argv, cwd, env in cases.values():  # warm the page cache, the dentry cache and the .pyc files
        time_command(argv, cwd, env)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    summaries: dict[str, str] = {}
    progress_drawn = True
    for _ in range(repeat):
        for name, (argv, cwd, env) in cases.items():
            s, err = time_command(argv, cwd, env)
            samples[name].append(s)
            if name != "find":
                summaries[name] = _summary(err)
                progress_drawn = progress_drawn and "\r" in err and "] " in err
    seconds = {name: statistics.median(v) for name, v in samples.items()}
    ratios = {name: seconds[name] / seconds["find"] for name in cases if name != "find"}
    return {
        "jobs": n_jobs,
        "root": str(root),
        "generate_s": generated,
        "repeat": repeat,
        "seconds": seconds,
        "samples": samples,
        "ratio_to_find": ratios,
        "targets": dict(TARGETS),
        "jobs_per_s": {k: n_jobs / v for k, v in seconds.items()},
        "summary": summaries,
        "progress_bar_drawn": progress_drawn,
    }


def print_table(res: dict, counted: str = "jobs") -> None:
    """The medians against ``find``, with targets; ``counted`` names what ``res[counted]`` counts."""
    print(f"{'command':<22} {'median s':>9} {'x find':>7} {'target':>8}  {'':<6} summary")
    for name, s in res["seconds"].items():
        ratio = res["ratio_to_find"].get(name)
        target = res["targets"].get(name)
        verdict = "" if target is None else ("ok" if ratio <= target else "MISSED")
        print(
            f"{name:<22} {s:>9.3f} {'' if ratio is None else f'{ratio:.2f}x':>7} "
            f"{'' if target is None else f'<= {target:.1f}x':>8}  {verdict:<6} {res['summary'].get(name, '')}"
        )
    print(
        f"({res[counted]} {counted}, median of {res['repeat']} interleaved rounds; progress bar drawn: "
        f"{res['progress_bar_drawn']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--dir")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    res = run(a.jobs, a.dir, a.fresh, a.repeat)
    if res["generate_s"] is not None:
        print(f"generated {res['jobs']} jobs in {res['generate_s']:.1f} s under {res['root']}")
    print_table(res)


if __name__ == "__main__":
    main()
