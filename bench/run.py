"""``make bench``: every benchmark in one run on this machine, printed as one table of ratios with targets.

Each line compares systems measured side by side in this run (never against numbers from elsewhere).
Options: ``--size-mb`` (large result, default 200), ``--tasks`` (cached run, default 500), ``--store-mb``
(streaming memory check, default 1024), ``--ls-jobs`` (ls vs find, default 100 000), ``--runs`` (runs vs
find -exec cat, default 10 000 records), ``--json FILE`` to keep the raw numbers and every table line under a
stable name, ``--only STEP|ROW`` (repeatable) to run some benchmarks only, or only what one row of the table needs
(its key: ``--only large_result.auto.layer_vs_joblib`` runs the three systems that row compares), ``--repeat N`` to
run the noisy measures (large results, cached tasks, hit cost) N times, interleaved, and report medians: on a shared
machine single runs swing by 2x or more.  The table ends with issue 24's target rows and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cli_startup
import bench_ls
import bench_runs
import bench_store_memory
import cached_tasks
import formats as formats_bench
import hit_cost
import large_result
import s3_requests

CODEC_SPECS = large_result.SPECS  # compared side by side: zstd:3, auto (the default), none
TARGET_SPEC = "auto"  # the codec the issue's large-array targets are set for


def plugin_default_spec() -> str:
    """The codec the plug-in uses when nothing is configured (its 'scout' row is that scout[SPEC] row): the core's."""
    from scout_persist import codec_spec

    return os.environ.get(codec_spec.ENV_VAR) or codec_spec.DEFAULT_SPEC


def large_systems(array: str) -> list[str]:
    base = ["floor", "joblib", "orchestration"] + (["prefect"] if array == "codes" else [])
    return base + [f"scout[{s}]" for s in CODEC_SPECS] + [f"persist[{s}]" for s in CODEC_SPECS]


def run_large(size_mb: int, array: str, repeat: int = 1, systems: list[str] | None = None) -> dict:
    results = large_result.run(size_mb, systems=systems or large_systems(array), array=array, repeat=repeat)
    default = f"scout[{plugin_default_spec()}]"
    if array == "codes" and default in results:
        results["scout"] = dict(results[default], same_run_as=default)
    return results


def _layer(r: dict, base: dict) -> float:
    """Persist + load time of the persistence layer alone: the flow's time minus the same flow without it."""
    return max(r["persist_s"] - base["persist_s"], 0) + max(r["load_s"] - base["load_s"], 0)


def codec_rows(raw: dict) -> list[dict]:
    """One line per array x codec: absolute numbers and ratios against joblib.Memory and Prefect's default."""
    out = []
    for key, array in (("large_result", "codes"), ("large_result_noise", "noise")):
        big = raw.get(key)
        if not big:
            continue
        joblib, base, prefect = big.get("joblib"), big.get("orchestration"), big.get("prefect")
        if not joblib or not base:
            continue
        jl = joblib["persist_s"] + joblib["load_s"]
        for spec in CODEC_SPECS:
            plug, core = big.get(f"scout[{spec}]"), big.get(f"persist[{spec}]")
            if not plug or not core:
                continue
            out.append(
                {
                    "array": array,
                    "codec": spec,
                    "plugin_persist_s": plug["persist_s"],
                    "plugin_load_s": plug["load_s"],
                    "persist_fn_persist_s": core["persist_s"],
                    "persist_fn_load_s": core["load_s"],
                    "bytes": plug["bytes"],
                    "plugin_layer_vs_joblib": _layer(plug, base) / jl,
                    "persist_fn_vs_joblib": (core["persist_s"] + core["load_s"]) / jl,
                    "bytes_vs_joblib": plug["bytes"] / joblib["bytes"],
                    "hit_vs_prefect": plug["load_s"] / prefect["load_s"] if prefect else None,
                }
            )
    return out


def rows(raw: dict) -> list[tuple[str, str, float | None, str, str]]:
    """(measure, compared with, ratio or value, target, verdict) per line of the table."""
    return [r[1:] for r in named_rows(raw)]


def named_rows(raw: dict) -> list[tuple[str, str, str, str, str, str]]:
    """(stable name, measure, compared with, ratio or value, target, verdict) per line of the table; the
    benchmarks not in ``raw`` (``--only``) are left out."""
    out = []

    def add(name, versus, value, limit, fmt="{:.2f}x", key=None):
        key = key or name
        if limit is None:  # shown for comparison; the issue sets no target
            out.append((key, name, versus, fmt.format(value), "-", ""))
            return
        out.append(
            (key, name, versus, fmt.format(value), f"<= {fmt.format(limit)}", "ok" if value <= limit else "MISSED")
        )

    if "large_result" in raw:
        _large_rows(raw, add)
    if "cached_tasks" in raw:
        many = raw["cached_tasks"]
        add(
            f"{raw['tasks']} small tasks: first run wall time",
            "Prefect default",
            many["scout"]["fill_s"] / many["prefect"]["fill_s"],
            1.2,
            key="cached_tasks.first_run_vs_prefect",
        )
        add(
            f"{raw['tasks']} cached tasks: cached run wall time",
            "Prefect default",
            many["scout"]["cached_s"] / many["prefect"]["cached_s"],
            1.0,
            key="cached_tasks.cached_vs_prefect",
        )
    if "hit_cost" in raw:
        add(
            "our layer alone: time per cache hit",
            "ms (metadata + payload read)",
            raw["hit_cost"]["ms_per_hit"],
            None,
            "{:.3f}",
            key="hit_cost.ms_per_hit",
        )
    if "s3_requests" in raw:
        s3 = raw["s3_requests"]
        add("S3 requests per cache hit", "count", s3["hit"]["requests"], 2, "{:.0f}", key="s3.requests_per_hit")
        add("S3 requests per save", "count", s3["save"]["requests"], 3, "{:.0f}", key="s3.requests_per_save")
        if "hit_new_process" in s3:
            add(
                "S3 requests per hit, process new to the store",
                "count (a refused create first)",
                s3["hit_new_process"]["requests"],
                None,
                "{:.0f}",
                key="s3.requests_per_hit_new_process",
            )
        jobs = s3.get("jobs_per_task")
        if jobs:
            add(
                f"S3 requests per task, {jobs['tasks']} new jobs",
                "count",
                jobs["new_jobs"],
                3,
                "{:.2f}",
                key="s3.requests_per_task_new_jobs",
            )
            add(
                f"S3 requests per task, {jobs['tasks']} hits, process new to the store",
                "count",
                jobs["cached_new_process"],
                None,
                "{:.2f}",
                key="s3.requests_per_task_cached_new_process",
            )
        per_task = s3.get("run_record")
        if per_task:
            n = per_task["tasks"]
            add(
                f"S3 requests per task, run record ({n} tasks, batched)",
                "count",
                per_task["per_task_batched"],
                1,
                "{:.2f}",
                key="s3.run_record_per_task_batched",
            )
            add(
                f"S3 requests per task, run record ({n} tasks, unbatched)",
                "count",
                per_task["per_task_unbatched"],
                1 + 2 / n,
                "{:.2f}",
                key="s3.run_record_per_task_unbatched",
            )
    if "ls" in raw:
        ls = raw["ls"]
        find_s = ls["seconds"]["find"]
        add(
            f"ls over {ls['jobs']} jobs",
            f"find -printf: {find_s:.2f}s",
            ls["ratio_to_find"]["ls"],
            ls["targets"]["ls"],
            key="ls.vs_find",
        )
        add(
            f"ls -s error over {ls['jobs']} jobs (reads every .info)",
            f"find -printf: {find_s:.2f}s",
            ls["ratio_to_find"]["ls -s error"],
            ls["targets"]["ls -s error"],
            key="ls.status_vs_find",
        )
        add(
            "  the same two on one core: ls",
            "find -printf",
            ls["ratio_to_find"]["ls, 1 process"],
            None,
            key="ls.one_process_vs_find",
        )
        add(
            "  the same two on one core: ls -s error",
            "find -printf",
            ls["ratio_to_find"]["ls -s error, 1 process"],
            None,
            key="ls.status_one_process_vs_find",
        )
    if "runs" in raw:
        rn = raw["runs"]
        yard = rn["seconds"]["find -exec cat"]
        add(
            f"runs over {rn['runs']} run records",
            f"find -exec cat: {yard:.2f}s",
            rn["ratio_to_find"]["runs"],
            rn["targets"]["runs"],
            key="runs.vs_find",
        )
        add(
            f"  runs --json over {rn['runs']} run records",
            f"find -exec cat: {yard:.2f}s",
            rn["ratio_to_find"]["runs --json"],
            None,
            key="runs.json_vs_find",
        )
    if "formats" in raw:  # typed formats (#15): NPY vs pickle vs joblib.Memory, Parquet vs pickle vs Prefect default
        for name, versus, value, limit in formats_bench.rows_of(raw["formats"]):
            add(name, versus, value, limit, key="formats." + name.replace(" ", "_").replace(",", ""))
    if "cli" in raw:
        cli = raw["cli"]["seconds"]
        add(
            "scout-persist info start-up",
            f"python -c pass: {cli['python -c pass']:.3f}s",
            cli["info"],
            0.3,
            "{:.3f}s",
            key="cli.info_startup_s",
        )
    if "store" in raw:
        add(
            f"store: peak extra memory, {raw['store']['size_mb']} MiB streamed",
            "payload size",
            raw["store"]["ratio"],
            0.5,
            key="store.peak_memory_ratio",
        )
    return out


def _large_rows(raw: dict, add) -> None:
    """The large-result lines whose systems ran (``--only ROW`` runs only the systems of that row)."""
    big = raw["large_result"]
    ours, prefect, floor, joblib = (big.get(k) for k in ("scout", "prefect", "floor", "joblib"))
    base = big.get("orchestration")  # the same flow without persistence: Prefect's own cost

    def layer(r):  # persist + load time of the persistence layer alone
        return _layer(r, base)

    def both(r):
        return r["persist_s"] + r["load_s"]

    if ours and prefect:
        add(
            "large result: persist time",
            "Prefect default",
            ours["persist_s"] / prefect["persist_s"],
            0.4,
            key="large_result.persist_vs_prefect",
        )
        add(
            "large result: cache-hit load time",
            "Prefect default",
            ours["load_s"] / prefect["load_s"],
            0.2,
            key="large_result.hit_vs_prefect",
        )
        add(
            "large result: bytes on disk",
            "Prefect default",
            ours["bytes"] / prefect["bytes"],
            0.1,
            key="large_result.bytes_vs_prefect",
        )
        add(
            "large result: peak memory (persist)",
            "Prefect default",
            ours["peak_persist_mb"] / max(prefect["peak_persist_mb"], 1e-9),
            0.5,
            key="large_result.peak_persist_vs_prefect",
        )
        add(
            "large result: peak memory (load)",
            "Prefect default",
            ours["peak_load_mb"] / max(prefect["peak_load_mb"], 1e-9),
            0.5,
            key="large_result.peak_load_vs_prefect",
        )
    if ours and base and floor:
        add(
            "large result: persist + load, layer only*",
            "floor (pickle to file)",
            layer(ours) / both(floor),
            1.5,
            key="large_result.layer_vs_floor",
        )
    if ours and base and prefect:
        add(
            "large result: persist + load, layer only*",
            "Prefect default",
            layer(ours) / layer(prefect),
            None,
            key="large_result.layer_vs_prefect_layer",
        )
    if ours and joblib:
        add(
            "large result: persist + load time",
            "joblib.Memory",
            both(ours) / both(joblib),
            None,
            key="large_result.flow_vs_joblib",
        )
        add(
            "large result: bytes on disk",
            "joblib.Memory",
            ours["bytes"] / joblib["bytes"],
            None,
            key="large_result.bytes_vs_joblib",
        )
    # The issue's large-array targets, for the codec they are set for (codes array; noise rows below the table)
    k = f"large_result.{TARGET_SPEC}"
    plug, core = big.get(f"scout[{TARGET_SPEC}]"), big.get(f"persist[{TARGET_SPEC}]")
    if plug and base and joblib:
        add(
            f"large result, {TARGET_SPEC}: persist + load, layer only*",
            "joblib.Memory",
            layer(plug) / both(joblib),
            1.0,
            key=f"{k}.layer_vs_joblib",
        )
    if core and joblib:
        add(
            f"large result, {TARGET_SPEC}: persist() persist + load",
            "joblib.Memory",
            both(core) / both(joblib),
            1.0,
            key=f"{k}.persist_fn_vs_joblib",
        )
    if plug and joblib:
        add(
            f"large result, {TARGET_SPEC}: bytes on disk",
            "joblib.Memory",
            plug["bytes"] / joblib["bytes"],
            0.1,
            key=f"{k}.bytes_vs_joblib",
        )
    if plug and prefect:
        add(
            f"large result, {TARGET_SPEC}: cache-hit load time",
            "Prefect default",
            plug["load_s"] / prefect["load_s"],
            0.15,
            key=f"{k}.hit_vs_prefect",
        )
    if plug and base and floor:
        add(
            f"large result, {TARGET_SPEC}: persist + load, layer only*",
            "floor (pickle to file)",
            layer(plug) / both(floor),
            1.5,
            key=f"{k}.layer_vs_floor",
        )


def print_table(raw: dict) -> None:
    lines = rows(raw) or [("(no measure with a target in this run)", "", "", "", "")]
    widths = [max(len(str(r[i])) for r in lines) for i in range(5)]
    head = ("measure", "compared with", "ours", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    print(fmt.format(*("-" * w for w in widths)))
    for r in lines:
        print(fmt.format(*r))
    if "large_result" in raw:
        print("* layer only: flow wall time minus the same flow without persistence ('orchestration' below)")
        print_codecs(raw)
    for key, what in (("large_result", "int64 codes + noise"), ("large_result_noise", "float64 random noise")):
        if key not in raw:
            continue
        print(f"\nlarge result ({raw['size_mb']} MiB {what}), absolute numbers (median of {raw.get('repeat', 1)}):")
        print(
            f"  {'system':<16} {'persist s':>9} {'load s':>8} {'MB on disk':>10} {'peak MB persist':>15}"
            f" {'peak MB load':>12} {'least persist/load s':>20}"
        )
        for name, r in raw[key].items():
            least = f"{r['persist_s_min']:.2f} / {r['load_s_min']:.2f}" if "persist_s_min" in r else "-"
            print(
                f"  {name:<16} {r['persist_s']:>9.2f} {r['load_s']:>8.2f} {r['bytes'] / 1e6:>10.1f}"
                f" {r['peak_persist_mb']:>15.0f} {r['peak_load_mb']:>12.0f} {least:>20}"
                + (f"  (= {r['same_run_as']})" if r.get("same_run_as") else "")
            )
    if "formats" in raw:
        formats_bench.print_absolute(raw["formats"])
    if "cached_tasks" in raw:
        many = raw["cached_tasks"]
        print(
            f"\n{raw['tasks']} cached tasks: "
            + ", ".join(
                f"{k} fill {v['fill_s']:.2f}s cached {v['cached_s']:.2f}s "
                f"({v['cached_s'] / raw['tasks'] * 1e3:.1f} ms/task,"
                f" {v['bodies_in_cached_run']} bodies ran)"
                for k, v in many.items()
            )
        )


def print_codecs(raw: dict) -> None:
    """The codecs side by side on both arrays (targets apply to 'auto' on the codes array)."""
    lines = codec_rows(raw)
    if not lines:
        return
    print(
        f"\ncodecs side by side ({raw['size_mb']} MiB, medians of {raw.get('repeat', 1)}; plug-in = @scout_task in a "
        "Prefect flow, persist() = the core decorator, no Prefect)"
    )
    print(
        f"  {'array':<6} {'codec':<7} {'plug-in persist s':>17} {'load s':>7} {'persist() s':>11} {'load s':>7}"
        f" {'MB':>7} {'layer*/joblib':>13} {'persist()/joblib':>16} {'bytes/joblib':>12} {'hit/Prefect':>11}"
    )
    for r in lines:
        hit = f"{r['hit_vs_prefect']:.2f}x" if r["hit_vs_prefect"] is not None else "-"
        print(
            f"  {r['array']:<6} {r['codec']:<7} {r['plugin_persist_s']:>17.2f} {r['plugin_load_s']:>7.2f}"
            f" {r['persist_fn_persist_s']:>11.2f} {r['persist_fn_load_s']:>7.2f} {r['bytes'] / 1e6:>7.1f}"
            f" {r['plugin_layer_vs_joblib']:>12.2f}x {r['persist_fn_vs_joblib']:>15.2f}x"
            f" {r['bytes_vs_joblib']:>11.3f}x {hit:>11}"
        )
    print(
        "  targets (issue 16, codec 'auto' on the codes array): layer*/joblib and persist()/joblib <= 1.00x,"
        " bytes/joblib <= 0.10x, hit/Prefect <= 0.15x"
    )


STEPS = (
    "large_result",
    "large_result_noise",
    "formats",
    "cached_tasks",
    "hit_cost",
    "s3_requests",
    "ls",
    "cli",
    "runs",
    "store",
)

# The target rows of issue 24, in its table's order: (row key, the issue's words). ``--only ROW`` runs what that row
# needs; for a large-result row only the systems it compares (LARGE_ROW_SYSTEMS), so a developer can iterate on one.
ISSUE_ROWS = (
    (f"large_result.{TARGET_SPEC}.layer_vs_joblib", "200 MiB array persist + load, plug-in layer only, vs joblib"),
    (f"large_result.{TARGET_SPEC}.persist_fn_vs_joblib", "same through persist() (no Prefect), vs joblib"),
    (f"large_result.{TARGET_SPEC}.bytes_vs_joblib", "bytes on disk vs joblib.Memory (plug-in)"),
    (f"large_result.{TARGET_SPEC}.layer_vs_floor", "layer only vs the floor (pickle to a file)"),
    (f"large_result.{TARGET_SPEC}.hit_vs_prefect", "cache-hit load vs Prefect default"),
    ("cached_tasks.first_run_vs_prefect", "500 small tasks, first run vs Prefect default"),
    ("cached_tasks.cached_vs_prefect", "500 small tasks, cached run vs Prefect default"),
    ("s3.requests_per_save", "S3 requests per save of a new job"),
)
_PLUGIN, _CORE = f"scout[{TARGET_SPEC}]", f"persist[{TARGET_SPEC}]"
LARGE_ROW_SYSTEMS = {
    f"large_result.{TARGET_SPEC}.layer_vs_joblib": (_PLUGIN, "orchestration", "joblib"),
    f"large_result.{TARGET_SPEC}.persist_fn_vs_joblib": (_CORE, "joblib"),
    f"large_result.{TARGET_SPEC}.bytes_vs_joblib": (_PLUGIN, "joblib"),
    f"large_result.{TARGET_SPEC}.layer_vs_floor": (_PLUGIN, "orchestration", "floor"),
    f"large_result.{TARGET_SPEC}.hit_vs_prefect": (_PLUGIN, "prefect"),
}
# Every other row key belongs to one step, named by the key's first part; that whole step runs for it.
_STEP_OF_PREFIX = {
    "large_result": "large_result",
    "formats": "formats",
    "cached_tasks": "cached_tasks",
    "hit_cost": "hit_cost",
    "s3": "s3_requests",
    "ls": "ls",
    "cli": "cli",
    "runs": "runs",
    "store": "store",
}


def selection(only: list[str] | None) -> tuple[set[str], list[str] | None]:
    """The steps ``--only`` asks for, and the large-result systems (None: all of them).  Each value is a step name or
    a row key of the table (``--json`` lists them; the issue's rows are ISSUE_ROWS)."""
    if not only:
        return set(STEPS), None
    steps: set[str] = set()
    systems: set[str] = set()
    whole_large = False
    for item in only:
        if item in STEPS:
            steps.add(item)
            whole_large = whole_large or item == "large_result"
        elif item in LARGE_ROW_SYSTEMS:
            steps.add("large_result")
            systems.update(LARGE_ROW_SYSTEMS[item])
        elif item.partition(".")[0] in _STEP_OF_PREFIX and "." in item:
            steps.add(_STEP_OF_PREFIX[item.partition(".")[0]])
            whole_large = whole_large or item.startswith("large_result.")
        else:
            raise SystemExit(
                f"--only {item!r} is neither a step ({', '.join(STEPS)}) nor a row key of the table "
                f"(e.g. {', '.join(k for k, _ in ISSUE_ROWS[:3])}, ...; `--json FILE` lists every key)"
            )
    return steps, None if whole_large or not systems else sorted(systems)


def print_issue_rows(raw: dict) -> None:
    """Issue 24's target rows as measured in this run (those that ran)."""
    measured = {r[0]: r for r in named_rows(raw)}
    sizes = {"200 MiB": f"{raw['size_mb']} MiB", "500 small": f"{raw['tasks']} small"}  # this run's sizes
    lines = []
    for key, words in ISSUE_ROWS:
        if key in measured:
            for said, now in sizes.items():
                words = words.replace(said, now)
            lines.append((words, measured[key][4], measured[key][3], measured[key][5]))
    if not lines:
        return
    width = max(len(w) for w, *_ in lines)
    print(f"\nissue 24 rows (median of {raw.get('repeat', 1)} where noisy):")
    for words, target, value, verdict in lines:
        print(f"  {words:<{width}}  {target:>9}  {value:>7}  {verdict}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--store-mb", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the DataFrame of the formats bench")
    parser.add_argument("--ls-jobs", dest="ls_jobs", type=int, default=100_000, help="jobs in the ls benchmark store")
    parser.add_argument("--runs", type=int, default=10_000, help="run records in the runs benchmark store")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--only",
        action="append",
        metavar="STEP|ROW",
        help=f"run this step ({', '.join(STEPS)}) or what this table row needs (its key, e.g. "
        f"{ISSUE_ROWS[0][0]}) only; repeatable",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="the noisy rows (large results, cached tasks, hit cost): runs per system, interleaved; medians shown",
    )
    args = parser.parse_args(argv)
    steps_wanted, large_systems_wanted = selection(args.only)
    started = time.perf_counter()
    raw: dict = {"size_mb": args.size_mb, "tasks": args.tasks, "repeat": args.repeat}
    steps = [
        ("large_result", lambda: run_large(args.size_mb, "codes", args.repeat, large_systems_wanted)),
        ("large_result_noise", lambda: run_large(args.size_mb, "noise", args.repeat)),
        ("formats", lambda: formats_bench.run(args.size_mb, args.rows)),
        ("cached_tasks", lambda: cached_tasks.run(args.tasks, repeat=args.repeat)),
        ("hit_cost", lambda: hit_cost.run(args.tasks, repeat=args.repeat)),
        ("s3_requests", s3_requests.run),
        ("ls", lambda: bench_ls.run(args.ls_jobs)),
        ("cli", bench_cli_startup.run),
        ("runs", lambda: bench_runs.run(args.runs)),
        ("store", lambda: bench_store_memory.run(args.store_mb)),
    ]
    for name, step in steps:
        if name not in steps_wanted:
            continue
        t = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        raw[name] = step()
        print(f"[bench] {name} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print_table(raw)
    print_issue_rows(raw)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s, load average {_load()}")
    if args.json:
        raw["table"] = [
            dict(zip(("name", "measure", "compared_with", "value", "target", "verdict"), r)) for r in named_rows(raw)
        ]
        raw["codecs"] = codec_rows(raw)
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 0


def _load() -> str:
    """The 1, 5 and 15 minute load averages: how busy the (shared) machine was while this ran."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
