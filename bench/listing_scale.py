"""What ``ls``, ``ls -l``, ``runs`` and ``gc`` cost on S3 as a store grows: requests counted, time measured.

A moto S3 server runs in this process behind the tests' counting proxy (tests/faulty_proxy.py).  Each size is
generated straight into moto's in-process backend (no HTTP: 100 000 jobs take seconds, not an hour) with the
layouts of bench/bench_ls.py (4 workflows x 25 tasks, a result and a ``.info`` per job, 5 % in error) and
bench/bench_runs.py (run records of 8 jobs), then each command runs in a fresh process against the proxy and every
request it makes is counted by kind (LIST pages, GETs, HEADs).  The request counts are what carries over to real
S3; the seconds are this machine's (moto's Python listing is much slower than S3's).

    python bench/listing_scale.py                    # 10 000 jobs and 10 000 runs
    python bench/listing_scale.py --sizes 10000 100000

``run() -> dict`` returns the rows.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
# the CLI in a child that reports its peak memory (its own and its forked scanner's) on stderr when it exits
LAUNCH = (
    "import atexit, resource, sys\n"
    "def peak():\n"
    "    own, kids = (resource.getrusage(w).ru_maxrss for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))\n"
    "    print(f'PEAK_KB {max(own, kids)}', file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from scout_persist.cli import main\n"
    "sys.argv = ['scout-persist', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)
COMMANDS = {
    "ls": ["ls", "{root}", "--no-progress"],
    "ls -l": ["ls", "-l", "{root}", "--no-progress"],
    "runs": ["runs", "--root", "{root}", "--no-progress"],
    "gc --dry-run": ["gc", "--max-size", "1000G", "--dry-run", "--no-progress", "{root}"],
}


def populate(bucket: str, prefix: str, jobs: int, runs: int) -> float:
    """Write ``jobs`` jobs and ``runs`` run records into moto's backend; seconds spent."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    import bench_ls
    import bench_runs

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    started = time.perf_counter()
    per_task = max(1, jobs // 100)
    i = 0
    for w in range(4):
        for t in range(25):
            for _ in range(per_task):
                failed = i % 20 == 0
                info = dict(bench_ls.INFO, workflow=f"W{w}", task_name=f"task{t}", status="error" if failed else "done")
                key = f"{prefix}/var/jobs/W{w}/task{t}/job{i}"
                backend.put_object(bucket, key + ".info", json.dumps(info, separators=(",", ":")).encode())
                if not failed:
                    backend.put_object(bucket, key, f"result {i}".encode())
                i += 1
    now = time.time()
    for r in range(runs):
        rec = bench_runs.record(r, now - (runs - r))
        backend.put_object(
            bucket, f"{prefix}/var/runs/{rec['workflow']}/{rec['run_id']}/run.json", json.dumps(rec).encode()
        )
    return time.perf_counter() - started


def kind(line: str) -> str:
    method, target = line.split(" ", 1)
    query = urlsplit(target).query
    if method == "GET" and ("list-type" in query or "prefix=" in query or "delimiter" in query):
        return "LIST"
    return method


def run(sizes: list[int] | None = None, commands: list[str] | None = None) -> dict:
    sys.path[:0] = [str(TESTS), str(HERE)]
    import logging

    from faulty_proxy import FaultyProxy
    from s3_server import S3Server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server().start()
    proxy = FaultyProxy(server.url).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FSSPEC_", "SCOUT_PERSIST_URL"))}
    env.update(server.env())
    env["FSSPEC_S3_ENDPOINT_URL"] = proxy.url
    rows = []
    try:
        for n in sizes or [10_000]:
            server.reset()
            bucket = server.create_bucket()
            generated = populate(bucket, "root", n, n)
            root = f"s3://{bucket}/root"
            for name, argv in COMMANDS.items():
                if commands and name not in commands:
                    continue
                start = len(proxy.log)
                began = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-c", LAUNCH, *(a.format(root=root) for a in argv)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                seconds = time.perf_counter() - began
                if done.returncode != 0:
                    raise RuntimeError(f"{name} failed: {done.stderr[-2000:]}")
                counts = collections.Counter(kind(line) for line in proxy.log[start:])
                peak = [int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KB ")]
                row = {
                    "size": n,
                    "command": name,
                    "seconds": seconds,
                    "requests": sum(counts.values()),
                    "by_kind": dict(counts),
                    "peak_mb": peak[-1] / 1024 if peak else None,
                    "generated_s": generated,
                }
                rows.append(row)
                print(_line(row), flush=True)
    finally:
        proxy.stop()
        server.stop()
    return {"rows": rows}


def _line(r: dict) -> str:
    k = r["by_kind"]
    return (
        f"{r['command']:<14} {r['size']:>8} {r['seconds']:>8.1f} {r['requests']:>9} {k.get('LIST', 0):>7} "
        f"{k.get('GET', 0):>8} {k.get('HEAD', 0):>7} {r['peak_mb'] or 0:>8.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000], help="jobs (and runs) per store")
    p.add_argument("--commands", nargs="+", choices=list(COMMANDS), help="only these (default: all)")
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args(argv)
    print(
        f"{'command':<14} {'size':>8} {'s':>8} {'requests':>9} {'LIST':>7} {'GET':>8} {'HEAD':>7} {'peak MB':>8}",
        flush=True,
    )
    out = run(args.sizes, args.commands)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
