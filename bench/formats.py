"""Typed formats side by side: a 200 MiB array (NPY vs pickle vs joblib.Memory) and a 1M-row DataFrame (Parquet vs
pickle vs Prefect's default persistence): persist time, load time, bytes on disk, peak memory.

Every system runs in fresh child processes, one to persist and one to load (as a user's two runs would):

array (``scout_persist.save`` / ``load``, the output API for code outside Prefect, against joblib.Memory):
- ``npy``:        ``save(arr, key)``: NPY, compressed by the default codec (``$SCOUT_PERSIST_COMPRESSION``)
- ``npy-plain``:  ``save(arr, key, compression="none")``: a plain .npy file, loaded as a private memory map
- ``pickle``:     ``save(arr, key, format="pickle")``: our pickle envelope (out-of-band buffers, same codec)
- ``joblib``:     ``joblib.Memory(...).cache`` of a function returning the array (default options)

frame (a Prefect flow with one task returning the DataFrame; the second run is a cache hit):
- ``parquet``:    ``@scout_task``: Parquet (zstd inside, index and dtypes kept)
- ``pickle``:     ``@scout_task(format="pickle")``
- ``prefect``:    ``@task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)``, default storage and serializer

Each is measured three times (``--repeats``) and the least disturbed run kept (per phase the minimum): the machine
this runs on is shared.  Load times include one pass over the data (``arr.sum()``, a column sum and a string
length), so a lazy load pays for its reads; the libraries each system needs are imported before timing.  Peak
memory is the child's peak RSS during the operation minus its RSS before it (the peak is reset first,
``/proc/self/clear_refs``; it counts the file pages a memory map touches too); ``anon MB`` is the anonymous
(private) memory held while the loaded array is alive (``RssAnon``): a memory-mapped array holds
page-cache pages instead, which the kernel can drop and share between processes.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from child_env import child_env
from prepared import IGNORED, Prepared, assert_hit, handover, produce

ARRAY_SYSTEMS = ("npy", "npy-plain", "pickle", "joblib")
REPEATS = 3
FRAME_SYSTEMS = ("parquet", "pickle", "prefect")


def make_array(size_mb: int):
    """int64 codes ``(i // 64) % 50_000`` plus noise in 0..15 (the data of bench/large_result.py), built in place."""
    import numpy as np

    n = size_mb * 1024 * 1024 // 8
    data = np.arange(n, dtype=np.int64)
    data //= 64
    data %= 50_000
    rng = np.random.default_rng(0)
    step = 1 << 20
    for start in range(0, n, step):
        data[start : start + step] += rng.integers(0, 16, min(step, n - start), dtype=np.int64)
    return data


def make_frame(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "value": rng.normal(size=rows),
            "count": rng.integers(0, 1000, rows, dtype=np.int32),
            "group": pd.Categorical.from_codes(rng.integers(0, 50, rows), [f"group_{i}" for i in range(50)]),
            "label": pd.array([f"sample_{i:07d}" for i in range(rows)], dtype="str"),
            "flag": rng.random(rows) < 0.5,
            "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 365, rows), unit="s"),
        },
        index=pd.Index(np.arange(rows, dtype=np.int64) * 2, name="row"),
    )


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> bool:
    """Reset the peak RSS (VmHWM) to the current RSS, so building the value does not hide the operation's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    if _status_mb("VmHWM"):
        return _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anon_mb() -> float:
    return _status_mb("RssAnon")


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


# -- child side ----------------------------------------------------------------------------------
# The value is built before timing and handed to the task body as an argument every system ignores (see
# bench/prepared.py: module data the body read would be part of the task's code identity, another value in each
# child); the body counts its calls, so the load phase asserts it was a hit.
_PREPARED = Prepared()
_HANDOVER = handover(_PREPARED)  # what the flows read (not opened by the run record's code identity)


def _touch_frame(df) -> int:
    return int(df["count"].sum()) + int(df["label"].str.len().sum()) + len(df)


def _array_child(system: str, phase: str, work: Path, size_mb: int):
    if phase == "persist":
        _PREPARED.value = make_array(size_mb)
    if system == "joblib":
        import joblib

        cached = joblib.Memory(work / "joblib", verbose=0).cache(produce, ignore=[IGNORED])
        return lambda: cached(size_mb, _PREPARED)
    import scout_persist
    import scout_persist.formats.npy  # imports before timing, as joblib's are
    import scout_persist.outputs

    scout_persist.exists("bench_array")  # the store (fsspec) is set up before timing
    options = {"npy": {}, "npy-plain": {"compression": "none"}, "pickle": {"format": "pickle"}}[system]
    if phase == "persist":
        return lambda: scout_persist.save(_PREPARED.value, "bench_array", **options)
    return lambda: scout_persist.load("bench_array")


def _frame_child(system: str, phase: str, work: Path, rows: int):
    import numpy as np  # noqa: F401 - loaded before timing in every child
    import pandas as pd  # noqa: F401
    import pyarrow.parquet  # noqa: F401 - pandas' str columns load pyarrow in every system

    if phase == "persist":
        _PREPARED.value = make_frame(rows)
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    if system == "prefect":
        step = task(persist_result=True, cache_policy=(INPUTS - IGNORED) + TASK_SOURCE, name="frame")(produce)
    else:
        from prefect_scout import scout_task

        step = scout_task(
            workflow="BenchFrame", name="frame", format="pickle" if system == "pickle" else None, ignore=[IGNORED]
        )(produce)

    @flow(name="BenchFrame", persist_result=False)
    def frame_flow(size: int):
        return _touch_frame(step(size, _HANDOVER.prepared))

    flow(name="warm")(lambda: 1)()  # the ephemeral API starts before timing
    return lambda: (None, frame_flow(rows))


def child(kind: str, system: str, phase: str, workdir: str, size: int) -> dict:
    work = Path(workdir)
    run = (_array_child if kind == "array" else _frame_child)(system, phase, work, size)
    from large_result import _heartbeats_off

    with _heartbeats_off():
        import gc

        gc.collect()
        before = _status_mb("VmRSS") if _reset_peak() else _peak_mb()
        anon_before = _anon_mb()
        t = time.perf_counter()
        if kind == "array":
            value = run()
            checksum = int(value.sum())  # one pass over the data: a lazy load pays for its reads here
        else:
            value, checksum = run()
        seconds = time.perf_counter() - t
        anon = _anon_mb() - anon_before  # while the loaded value is alive
        del value
    if phase == "load":  # a task body that ran in a load child was a miss (save/load systems have no body)
        assert_hit(_PREPARED, f"{kind} {system}")
    return {"seconds": seconds, "peak_mb": _peak_mb() - before, "anon_mb": anon, "checksum": checksum}


# -- parent side ---------------------------------------------------------------------------------
def _run_child(kind: str, system: str, phase: str, work: Path, size: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, system, phase, str(work), str(size)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {system} {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure(kind: str, systems, size: int, repeats: int = REPEATS) -> dict:
    """Each system persisted and loaded ``repeats`` times (fresh folders and processes each time); per phase the
    fastest time and the smallest memory are kept: on a busy machine the minimum is the least disturbed run."""
    import os

    results = {}
    for system in systems:
        runs = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix=f"bench-formats-{kind}-{system}-") as tmp:
                work = Path(tmp)
                env = child_env(work)
                env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
                persist = _run_child(kind, system, "persist", work, size, env)
                load = _run_child(kind, system, "load", work, size, env)
                if persist["checksum"] != load["checksum"]:
                    raise RuntimeError(f"{kind} {system}: loaded data differs from persisted data")
                stored = sum(_dir_bytes(work / d) for d in ("joblib", "prefect-storage", "scout/var"))
                runs.append(
                    {
                        "persist_s": persist["seconds"],
                        "load_s": load["seconds"],
                        "bytes": stored,
                        "peak_persist_mb": persist["peak_mb"],
                        "peak_load_mb": load["peak_mb"],
                        "anon_load_mb": load["anon_mb"],
                    }
                )
        results[system] = {k: min(r[k] for r in runs) for k in runs[0]}
    return results


def run(size_mb: int = 200, rows: int = 1_000_000, repeats: int = REPEATS) -> dict:
    return {
        "size_mb": size_mb,
        "rows": rows,
        "repeats": repeats,
        "array": _measure("array", ARRAY_SYSTEMS, size_mb, repeats),
        "frame": _measure("frame", FRAME_SYSTEMS, rows, repeats),
    }


def rows_of(raw: dict) -> list[tuple[str, str, float, float | None]]:
    """(measure, compared with, ours/theirs, target or None) lines for the bench table."""
    a, f = raw["array"], raw["frame"]

    def both(r):
        return r["persist_s"] + r["load_s"]

    mb = raw["size_mb"]
    rows = raw["rows"]
    return [
        (
            f"{mb} MiB array: NPY persist + load time",
            "pickle (ours, same codec)",
            both(a["npy"]) / both(a["pickle"]),
            1.0,
        ),
        (f"{mb} MiB array: NPY bytes on disk", "joblib.Memory", a["npy"]["bytes"] / a["joblib"]["bytes"], 0.5),
        (f"{mb} MiB array: NPY peak memory (persist)", "payload size", a["npy"]["peak_persist_mb"] / mb, 0.5),
        (
            f"{mb} MiB array: plain NPY persist + load time",
            "joblib.Memory",
            both(a["npy-plain"]) / both(a["joblib"]),
            1.5,
        ),
        (
            f"{mb} MiB array: plain NPY private memory after load",
            "joblib.Memory",
            a["npy-plain"]["anon_load_mb"] / max(a["joblib"]["anon_load_mb"], 1e-9),
            0.1,
        ),
        (f"{mb} MiB array: NPY persist + load time", "joblib.Memory", both(a["npy"]) / both(a["joblib"]), None),
        (
            f"{rows:,}-row DataFrame: Parquet persist + load time",
            "Prefect default",
            both(f["parquet"]) / both(f["prefect"]),
            1.0,
        ),
        (
            f"{rows:,}-row DataFrame: Parquet bytes on disk",
            "Prefect default",
            f["parquet"]["bytes"] / f["prefect"]["bytes"],
            0.5,
        ),
        (
            f"{rows:,}-row DataFrame: Parquet peak memory (load)",
            "Prefect default",
            f["parquet"]["peak_load_mb"] / max(f["prefect"]["peak_load_mb"], 1e-9),
            1.0,
        ),
        (
            f"{rows:,}-row DataFrame: Parquet persist + load time",
            "pickle (ours)",
            both(f["parquet"]) / both(f["pickle"]),
            None,
        ),
    ]


def print_tables(raw: dict) -> None:
    lines = [
        (m, v, f"{r:.2f}x", "-" if t is None else f"<= {t:.2f}x", "" if t is None else ("ok" if r <= t else "MISSED"))
        for m, v, r, t in rows_of(raw)
    ]
    head = ("measure", "compared with", "ours", "target", "")
    widths = [max(len(str(x[i])) for x in [head, *lines]) for i in range(5)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    print(fmt.format(*("-" * w for w in widths)))
    for line in lines:
        print(fmt.format(*line))
    print_absolute(raw)


def print_absolute(raw: dict) -> None:
    for kind, title in (("array", f"{raw['size_mb']} MiB int64 array"), ("frame", f"{raw['rows']:,}-row DataFrame")):
        print(f"\n{title}, absolute numbers:")
        print(
            f"  {'system':<10} {'persist s':>9} {'load s':>8} {'MB on disk':>10} {'peak MB persist':>15} "
            f"{'peak MB load':>12} {'anon MB load':>12}"
        )
        for name, r in raw[kind].items():
            print(
                f"  {name:<10} {r['persist_s']:>9.2f} {r['load_s']:>8.2f} {r['bytes'] / 1e6:>10.1f}"
                f" {r['peak_persist_mb']:>15.0f} {r['peak_load_mb']:>12.0f} {r['anon_load_mb']:>12.0f}"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))))
    else:
        import argparse

        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--size-mb", type=int, default=200)
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--repeats", type=int, default=REPEATS)
        parser.add_argument("--json", type=Path)
        args = parser.parse_args()
        raw = run(args.size_mb, args.rows, args.repeats)
        print_tables(raw)
        if args.json:
            args.json.write_text(json.dumps(raw, indent=2))
