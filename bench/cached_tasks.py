"""Many cached tasks: a flow of N small tasks, run once to fill the cache, then timed fully cached.

- ``prefect``: ``@task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)`` with Prefect's default
  local storage and serializer (the default policy includes the flow run id, so it never hits across runs).
- ``scout``: the same task declared with ``prefect_scout.scout_task``.

Each run is a fresh child process (its own ephemeral API server, warmed before timing) sharing one
``PREFECT_HOME`` and storage root, as a user's second run would. A body that executes during the timed
run appends to a counter file: a cached run that runs any body fails the benchmark (it would time a recompute).
``--repeat N`` (bench/run.py) runs the pair N times per system, interleaved, and reports medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from child_env import child_env

SYSTEMS = ("prefect", "scout")


def child(system: str, n_tasks: int, counter: str) -> dict:
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    def square(i: int) -> int:
        with open(counter, "a") as fh:
            fh.write("x")
        return i * i

    if system == "scout":
        from prefect_scout import scout_task

        step = scout_task(workflow="Bench", name="square")(square)
    else:
        step = task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE, name="square")(square)

    @flow(name="Bench", persist_result=False)
    def many(n: int) -> int:
        return sum(step(i) for i in range(n))

    def warm():
        return 1

    flow(name="warm")(warm)()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):  # as in the test suite
        t = time.perf_counter()
        total = many(n_tasks)
        return {"seconds": time.perf_counter() - t, "total": total}


def _fill_then_cached(system: str, n_tasks: int) -> dict:
    """One fill run and one cached run of ``system`` in a fresh store; the cached run must run no task body."""
    with tempfile.TemporaryDirectory(prefix=f"bench-cached-{system}-") as tmp:
        work = Path(tmp)
        counter = work / "bodies"
        env = child_env(work)
        out = []
        for _ in range(2):
            cmd = [sys.executable, __file__, "--child", system, str(n_tasks), str(counter)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise RuntimeError(f"{system} cached-tasks run failed:\n{proc.stderr[-3000:]}")
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            out[-1]["bodies"] = len(counter.read_text()) if counter.exists() else 0
    if out[0]["total"] != out[1]["total"]:
        raise RuntimeError(f"{system}: cached run returned {out[1]['total']}, fill run {out[0]['total']}")
    bodies = out[1]["bodies"] - out[0]["bodies"]
    if bodies:
        raise RuntimeError(
            f"{system}: {bodies} of {n_tasks} task bodies ran in the cached run: cache misses, not hits; the timing "
            "would be of a recompute"
        )
    return {"fill_s": out[0]["seconds"], "cached_s": out[1]["seconds"], "bodies_in_cached_run": bodies}


def run(n_tasks: int = 500, systems=SYSTEMS, repeat: int = 1) -> dict:
    """Fill then time a fully cached run per system, ``repeat`` times (systems interleaved, so a busy spell on a
    shared machine hits both): {system: {fill_s, cached_s: medians, bodies_in_cached_run, samples}}."""
    samples: dict[str, list[dict]] = {system: [] for system in systems}
    for _ in range(repeat):
        for system in systems:
            samples[system].append(_fill_then_cached(system, n_tasks))
    return {
        system: {
            "fill_s": statistics.median(r["fill_s"] for r in runs),
            "cached_s": statistics.median(r["cached_s"] for r in runs),
            "bodies_in_cached_run": max(r["bodies_in_cached_run"] for r in runs),
            "samples": runs,
        }
        for system, runs in samples.items()
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
        print(json.dumps(run(n, systems=sys.argv[2:] or SYSTEMS), indent=2))
