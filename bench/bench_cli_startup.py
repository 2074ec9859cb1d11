"""CLI start-up: wall time of ``scout-persist info JOB`` (and --help, prov, ls) vs ``python -c pass``, side by side.

Each command runs REPEAT times in a fresh process on the Baking job of the Ruby fixtures; the median is reported.
Targets: ``info`` under 0.3 s (issue 6), ``--help`` too (issue 25). ``run() -> dict`` is what bench/run.py calls.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "tests" / "data" / "ruby-scout" / "scout-jobs"
JOB = JOBS / "var/jobs/Baking/bake_muffin_tray/Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"
TARGET_INFO = 0.3


def _exe() -> str:
    return os.path.join(os.path.dirname(sys.executable), "scout-persist")


def _median(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(repeat: int = 7) -> dict:
    exe = _exe()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": [exe, "--help"],
        "info": [exe, "info", "--nocolor", str(JOB)],
        "info -ri": [exe, "info", "--nocolor", "-ri", str(JOB)],
        "prov": [exe, "prov", "--nocolor", str(JOB)],
        "ls (fixture root, 184 jobs)": [exe, "ls", str(JOBS)],
    }
    _median(cases["info"], 1)  # warm the page cache and .pyc files
    seconds = {name: _median(argv, repeat) for name, argv in cases.items()}
    base = seconds["python -c pass"]
    return {
        "seconds": seconds,
        "ratio_to_python": {k: v / base for k, v in seconds.items()},
        "info_target_s": TARGET_INFO,
        "info_ok": seconds["info"] < TARGET_INFO,
        "help_ok": seconds["--help"] < TARGET_INFO,
    }


def main() -> None:
    res = run()
    print(f"{'command':<30} {'median s':>9} {'x python':>9}")
    for name, s in res["seconds"].items():
        print(f"{name:<30} {s:>9.3f} {res['ratio_to_python'][name]:>9.1f}")
    print(f"info target < {TARGET_INFO} s: {'OK' if res['info_ok'] else 'MISSED'}")
    print(f"--help target < {TARGET_INFO} s: {'OK' if res['help_ok'] else 'MISSED'}")


if __name__ == "__main__":
    main()
