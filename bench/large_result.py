"""Large result: persist + load of one big array-like value, side by side.

The data (``--array``): ``codes`` (the default), a ``numpy.int64`` array of SIZE_MB MiB holding
``(i // 64) % 50_000`` plus random noise in 0..15, i.e. sorted-ish integer codes such as a genomic position
index or a count table: compressible (4 bits of entropy per 8-byte value), but not trivially; ``noise``, a
``float64`` array of standard normal random numbers: the hard case, nearly incompressible.

Every system runs in fresh child processes (one to persist, one to load, as a user's two runs would),
so that start-up state, page cache effects and peak memory are comparable:

- ``floor``:   ``pickle.dump(protocol=5)`` to a file, then ``pickle.load``; the fastest any
               pickle-based store can be on this disk.
- ``joblib``:  ``joblib.Memory(...).cache`` on a function returning the array (default options).
- ``prefect``: a Prefect task with ``persist_result=True`` and ``cache_policy=INPUTS + TASK_SOURCE``
               (the default policy never reuses across runs), default local storage and serializer.
- ``scout``:   the same task declared with ``prefect_scout.scout_task`` (our storage, serializer,
               cache policy).  ``scout[SPEC]`` runs it with ``SCOUT_PERSIST_COMPRESSION=SPEC``
               (``zstd:3``, ``auto``, ``none``).
- ``persist[SPEC]``: ``scout_persist.persist(name, "pickle", fn)``, no Prefect: the peer of
               ``joblib.Memory(...).cache`` (it also takes a lock and fsyncs, which joblib does not).

The array is built before timing and handed to the task body as an ignored argument (``bench/prepared.py``); the
load phase of every cached system asserts that the body did not run (a hit, not a recompute).
- ``orchestration``: the same flow with persistence off; its time is what Prefect costs with no
               persistence at all, subtracted to compare persistence layers with the floor.

Flow heartbeats are off in every Prefect child (as in the test suite): they add ~1 s per flow run.

CPU time (``*_cpu_s``: user + system seconds of the child, all threads, during the operation) is reported next to
wall time: on a shared machine it moves much less. Peak memory is the child's peak RSS growth during the operation
(``ru_maxrss`` after minus before), with the array already in memory before persisting.  numpy is imported before
timing in every child (``import joblib`` imports it anyway; the others would import it while unpickling, inside
the timing).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from child_env import child_env
from prepared import IGNORED, Prepared, assert_hit, handover, produce

SYSTEMS = ("floor", "joblib", "orchestration", "prefect", "scout")
SPECS = ("zstd:3", "auto", "none")  # the codecs compared side by side
ARRAYS = ("codes", "noise")


def make_data(size_mb: int, array: str = "codes"):
    import numpy as np

    n = size_mb * 1024 * 1024 // 8
    if array == "noise":
        return np.random.default_rng(1).standard_normal(n)
    if array != "codes":
        raise SystemExit(f"unknown array {array!r}; expected one of {ARRAYS}")
    data = np.arange(n, dtype=np.int64)
    data //= 64
    data %= 50_000
    data += np.random.default_rng(0).integers(0, 16, n, dtype=np.int64)
    return data


def split_system(system: str) -> tuple[str, str | None]:
    """``"scout[auto]"`` -> ``("scout", "auto")``; ``"joblib"`` -> ``("joblib", None)``."""
    base, _, spec = system.partition("[")
    return base, spec.rstrip("]") or None


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- child side -------------------------------------------------------------------------------
# The value every system persists is built before timing starts and handed to the task body as an argument each
# system ignores (bench/prepared.py); the body counts its calls, so the load phase asserts it was a hit.
_PREPARED = Prepared()
_HANDOVER = handover(_PREPARED)  # what the flows read (not opened by the run record's code identity)


def _prefect_flow(system: str):
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    if system == "scout":
        from prefect_scout import scout_task

        step = scout_task(workflow="Bench", name="large_result", ignore=[IGNORED])(produce)
    elif system == "orchestration":
        from prefect.cache_policies import NO_CACHE

        step = task(persist_result=False, cache_policy=NO_CACHE, name="large_result")(produce)
    else:
        step = task(persist_result=True, cache_policy=(INPUTS - IGNORED) + TASK_SOURCE, name="large_result")(produce)

    @flow(name="Bench", persist_result=False)
    def bench_flow(size: int):
        return float(step(size, _HANDOVER.prepared).sum())

    def warm():
        return 1

    flow(name="warm")(warm)()  # start the ephemeral API before timing
    return bench_flow


def child(system: str, phase: str, workdir: str, size_mb: int, array: str = "codes") -> dict:
    work = Path(workdir)
    system, _ = split_system(system)  # the codec spec reaches the child through its environment
    import numpy  # noqa: F401  the value's own library, loaded before timing in every system (joblib loads it anyway)

    if phase == "persist" or system == "orchestration":
        _PREPARED.value = make_data(size_mb, array)
    if system in ("orchestration", "prefect", "scout"):
        bench_flow = _prefect_flow(system)
        run = lambda: bench_flow(size_mb)  # noqa: E731
    elif system == "floor":
        import pickle

        def run():
            target = work / "floor.pkl"
            if phase == "persist":
                with open(target, "wb") as fh:
                    pickle.dump(_PREPARED.value, fh, protocol=5)
                return float(_PREPARED.value.sum())
            with open(target, "rb") as fh:
                return float(pickle.load(fh).sum())
    elif system == "joblib":
        import joblib

        cached = joblib.Memory(work / "joblib", verbose=0).cache(produce, ignore=[IGNORED])
        run = lambda: float(cached(size_mb, _PREPARED).sum())  # noqa: E731
    elif system == "persist":
        from scout_persist import persist

        def run():  # persist() keys an entry by its name (and other=), never by the function's code or arguments
            value = persist(
                "large_result", "pickle", lambda: produce(size_mb, _PREPARED), store=str(work / "scout"), other=size_mb
            )
            return float(value.sum())
    else:
        raise SystemExit(f"unknown system {system!r}; expected one of {SYSTEMS}, persist, scout[SPEC] or persist[SPEC]")
    with _heartbeats_off():
        before = _peak_mb()
        cpu = _cpu_s()
        t = time.perf_counter()
        checksum = run()
        seconds = time.perf_counter() - t
        cpu = _cpu_s() - cpu
    if phase == "load" and system != "orchestration":  # the flow without persistence recomputes by design
        assert_hit(_PREPARED, f"large result, {system}")
    return {"seconds": seconds, "cpu_s": cpu, "peak_mb": _peak_mb() - before, "checksum": checksum}


def _cpu_s() -> float:
    """CPU seconds of this process, all threads (user + system): steadier than wall time on a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _heartbeats_off():
    if "prefect" not in sys.modules:  # floor and joblib: nothing to switch off, and no prefect import
        import contextlib

        return contextlib.nullcontext()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


# -- parent side ------------------------------------------------------------------------------
def _run_child(system: str, phase: str, workdir: Path, size_mb: int, env: dict, array: str = "codes") -> dict:
    cmd = [sys.executable, __file__, "--child", system, phase, str(workdir), str(size_mb), array]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{system} {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


FIELDS = ("persist_s", "load_s", "persist_cpu_s", "load_cpu_s", "bytes", "peak_persist_mb", "peak_load_mb")


def _once(system: str, size_mb: int, array: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        work = Path(tmp)
        env = child_env(work)
        spec = split_system(system)[1]
        if spec:
            env["SCOUT_PERSIST_COMPRESSION"] = spec
        persist = _run_child(system, "persist", work, size_mb, env, array)
        load = _run_child(system, "load", work, size_mb, env, array)
        if persist["checksum"] != load["checksum"]:
            raise RuntimeError(f"{system}: loaded data differs from persisted data")
        stored = [
            p for p in (work / "floor.pkl", work / "joblib", work / "prefect-storage", work / "scout") if p.exists()
        ]
        return {
            "persist_s": persist["seconds"],
            "load_s": load["seconds"],
            "persist_cpu_s": persist["cpu_s"],
            "load_cpu_s": load["cpu_s"],
            "bytes": sum(p.stat().st_size if p.is_file() else _dir_bytes(p) for p in stored),
            "peak_persist_mb": persist["peak_mb"],
            "peak_load_mb": load["peak_mb"],
        }


def run(size_mb: int = 200, systems=SYSTEMS, array: str = "codes", repeat: int = 1) -> dict:
    """Persist and load ``array`` with every system, ``repeat`` times (systems interleaved, so that a busy spell
    on a shared machine hits all of them); returns {system: {persist_s, load_s, bytes, peak_*: median,
    persist_s_min, load_s_min: the least (the cost with the least interference), samples: [each run]}}.

    A system ``scout[SPEC]`` or ``persist[SPEC]`` runs with ``SCOUT_PERSIST_COMPRESSION=SPEC``."""
    samples: dict[str, list] = {system: [] for system in systems}
    for _ in range(repeat):
        for system in systems:
            samples[system].append(_once(system, size_mb, array))
    return {
        system: {
            **{f: statistics.median(r[f] for r in runs) for f in FIELDS},
            **{f"{f}_min": min(r[f] for r in runs) for f in ("persist_s", "load_s")},
            "samples": runs,
        }
        for system, runs in samples.items()
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])))
    else:
        import argparse

        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("size_mb", type=int, nargs="?", default=200)
        parser.add_argument("systems", nargs="*", help=f"default: {' '.join(SYSTEMS)}; e.g. 'scout[auto]'")
        parser.add_argument("--array", choices=ARRAYS, default="codes")
        parser.add_argument("--repeat", type=int, default=1, help="runs per system; medians are reported")
        args = parser.parse_args()
        print(json.dumps(run(args.size_mb, args.systems or SYSTEMS, args.array, args.repeat), indent=2))
