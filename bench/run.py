"""``make bench``: every benchmark in one run on this machine, printed as one table of ratios with targets.

Each line compares systems measured side by side in this run (never against numbers from elsewhere).
Options: ``--size-mb`` (large result, default 200), ``--tasks`` (cached run, default 500), ``--store-mb``
(streaming memory check, default 1024), ``--ls-jobs`` (ls vs find, default 100 000), ``--runs`` (runs vs
find -exec cat, default 10 000 records), ``--json FILE`` to keep the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cli_startup  # noqa: E402
import bench_ls  # noqa: E402
import bench_runs  # noqa: E402
import bench_store_memory  # noqa: E402
import cached_tasks  # noqa: E402
import hit_cost  # noqa: E402
import large_result  # noqa: E402
import s3_requests  # noqa: E402


def rows(raw: dict) -> list[tuple[str, str, float | None, str, str]]:
    """(measure, compared with, ratio or value, target, verdict) per line of the table."""
    out = []

    def add(name, versus, value, limit, fmt="{:.2f}x"):
        if limit is None:  # shown for comparison; the issue sets no target
            out.append((name, versus, fmt.format(value), "-", ""))
            return
        out.append((name, versus, fmt.format(value), f"<= {fmt.format(limit)}", "ok" if value <= limit else "MISSED"))

    big = raw["large_result"]
    ours, prefect, floor, joblib = big["scout"], big["prefect"], big["floor"], big["joblib"]
    base = big["orchestration"]  # the same flow without persistence: Prefect's own cost

    def layer(r):  # persist + load time of the persistence layer alone
        return max(r["persist_s"] - base["persist_s"], 0) + max(r["load_s"] - base["load_s"], 0)

    add("large result: persist time", "Prefect default", ours["persist_s"] / prefect["persist_s"], 0.4)
    add("large result: cache-hit load time", "Prefect default", ours["load_s"] / prefect["load_s"], 0.2)
    add("large result: bytes on disk", "Prefect default", ours["bytes"] / prefect["bytes"], 0.1)
    add("large result: peak memory (persist)", "Prefect default",
        ours["peak_persist_mb"] / max(prefect["peak_persist_mb"], 1e-9), 0.5)
    add("large result: peak memory (load)", "Prefect default",
        ours["peak_load_mb"] / max(prefect["peak_load_mb"], 1e-9), 0.5)
    add("large result: persist + load, layer only*", "floor (pickle to file)",
        layer(ours) / (floor["persist_s"] + floor["load_s"]), 1.5)
    add("large result: persist + load, layer only*", "Prefect default", layer(ours) / layer(prefect), None)
    add("large result: persist + load time", "joblib.Memory",
        (ours["persist_s"] + ours["load_s"]) / (joblib["persist_s"] + joblib["load_s"]), None)
    add("large result: bytes on disk", "joblib.Memory", ours["bytes"] / joblib["bytes"], None)
    many = raw["cached_tasks"]
    add(f"{raw['tasks']} cached tasks: cached run wall time", "Prefect default",
        many["scout"]["cached_s"] / many["prefect"]["cached_s"], 1.0)
    add("our layer alone: time per cache hit", "ms (metadata + payload read)", raw["hit_cost"]["ms_per_hit"], None,
        "{:.3f}")
    s3 = raw["s3_requests"]
    add("S3 requests per cache hit", "count", s3["hit"]["requests"], 2, "{:.0f}")
    add("S3 requests per save", "count", s3["save"]["requests"], 3, "{:.0f}")
    ls = raw["ls"]
    find_s = ls["seconds"]["find"]
    add(f"ls over {ls['jobs']} jobs", f"find -printf: {find_s:.2f}s", ls["ratio_to_find"]["ls"], ls["targets"]["ls"])
    add(f"ls -s error over {ls['jobs']} jobs (reads every .info)", f"find -printf: {find_s:.2f}s",
        ls["ratio_to_find"]["ls -s error"], ls["targets"]["ls -s error"])
    add("  the same two on one core: ls", "find -printf", ls["ratio_to_find"]["ls, 1 process"], None)
    add("  the same two on one core: ls -s error", "find -printf", ls["ratio_to_find"]["ls -s error, 1 process"], None)
    rn = raw["runs"]
    yard = rn["seconds"]["find -exec cat"]
    add(f"runs over {rn['runs']} run records", f"find -exec cat: {yard:.2f}s", rn["ratio_to_find"]["runs"],
        rn["targets"]["runs"])
    add(f"  runs --json over {rn['runs']} run records", f"find -exec cat: {yard:.2f}s",
        rn["ratio_to_find"]["runs --json"], None)
    per_task = s3.get("run_record")
    if per_task:
        add(f"S3 requests per task, run record ({per_task['tasks']} tasks, batched)", "count",
            per_task["per_task_batched"], 1, "{:.2f}")
        add(f"S3 requests per task, run record ({per_task['tasks']} tasks, unbatched)", "count",
            per_task["per_task_unbatched"], 1 + 2 / per_task["tasks"], "{:.2f}")
    cli = raw["cli"]["seconds"]
    add("scout-persist info start-up", f"python -c pass: {cli['python -c pass']:.3f}s", cli["info"], 0.3, "{:.3f}s")
    add(f"store: peak extra memory, {raw['store']['size_mb']} MiB streamed", "payload size", raw["store"]["ratio"], 0.5)
    return out


def print_table(raw: dict) -> None:
    lines = rows(raw)
    widths = [max(len(str(r[i])) for r in lines) for i in range(5)]
    head = ("measure", "compared with", "ours", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    print(fmt.format(*("-" * w for w in widths)))
    for r in lines:
        print(fmt.format(*r))
    big = raw["large_result"]
    print("* layer only: flow wall time minus the same flow without persistence ('orchestration' below)")
    print(f"\nlarge result ({raw['size_mb']} MiB int64 codes + noise), absolute numbers:")
    print(f"  {'system':<8} {'persist s':>9} {'load s':>8} {'MB on disk':>10} {'peak MB persist':>15} {'peak MB load':>12}")
    for name, r in big.items():
        print(f"  {name:<8} {r['persist_s']:>9.2f} {r['load_s']:>8.2f} {r['bytes'] / 1e6:>10.1f}"
              f" {r['peak_persist_mb']:>15.0f} {r['peak_load_mb']:>12.0f}")
    many = raw["cached_tasks"]
    print(f"\n{raw['tasks']} cached tasks: " + ", ".join(
        f"{k} fill {v['fill_s']:.2f}s cached {v['cached_s']:.2f}s ({v['cached_s'] / raw['tasks'] * 1e3:.1f} ms/task,"
        f" {v['bodies_in_cached_run']} bodies ran)" for k, v in many.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--store-mb", type=int, default=1024)
    parser.add_argument("--ls-jobs", dest="ls_jobs", type=int, default=100_000, help="jobs in the ls benchmark store")
    parser.add_argument("--runs", type=int, default=10_000, help="run records in the runs benchmark store")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    raw: dict = {"size_mb": args.size_mb, "tasks": args.tasks}
    steps = [
        ("large_result", lambda: large_result.run(args.size_mb)),
        ("cached_tasks", lambda: cached_tasks.run(args.tasks)),
        ("hit_cost", lambda: hit_cost.run(args.tasks)),
        ("s3_requests", s3_requests.run),
        ("cli", bench_cli_startup.run),
        ("ls", lambda: bench_ls.run(args.ls_jobs)),
        ("runs", lambda: bench_runs.run(args.runs)),
        ("store", lambda: bench_store_memory.run(args.store_mb)),
    ]
    for name, step in steps:
        t = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        raw[name] = step()
        print(f"[bench] {name} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print_table(raw)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
