"""Our own work per small task, by part: a core-only loop driving ``scout_persist.attempt.Attempt`` the way the
Prefect plug-in does (plan the call, acquire, the verdict, claim, commit, release), on a local store, without Prefect.

Each part is timed by this thread's CPU time (``--wall``: by the wall clock), per task, median of ``--rounds`` rounds
of ``--tasks`` tasks, each round in a fresh store: the first run (every job new), then the same tasks again (every
job a hit).  Not part of ``make bench`` (it compares with nothing); it says where a small task's time goes:

    .venv/bin/python bench/small_task_parts.py --tasks 500 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable

from scout_persist import signature
from scout_persist.attempt import Attempt, Expiry, JobSetup, Served
from scout_persist.callplan import TaskDecl, plan_call
from scout_persist.store import Store


def square(i: int) -> int:
    return i * i


def one_pass(n: int, root: str, hit: bool, clock: Callable[[], float]) -> dict[str, float]:
    """Seconds per part, summed over ``n`` tasks of one flow run."""
    store = Store(root)
    decl = TaskDecl(workflow="Bench", name="square")
    parts: dict[str, float] = defaultdict(float)
    for i in range(n):
        t0 = clock()
        planned = plan_call(square, decl, "Bench", {"i": i}, provided={"n": n})
        signature.warn_not_followed("Bench#square", planned.code)
        ident = planned.identity
        setup = JobSetup(
            "Bench",
            "square",
            None,
            inputs=ident.inputs,
            input_names=ident.input_names,
            provided_inputs=ident.provided_inputs,
            non_default_inputs=ident.non_default_inputs,
        )
        attempt = Attempt(store, ident.key, dict(planned.signature), Expiry.RECORDED, setup=setup)
        t1 = clock()
        assert attempt.acquire(lease=30.0, refresh=2.0)
        t2 = clock()
        verdict = attempt.verdict()
        t3 = clock()
        parts["plan (key, signature, identity)"] += t1 - t0
        if hit:
            assert isinstance(verdict, Served), verdict
            attempt.serve()
            attempt.release()
            parts["acquire (a pass: .info read)"] += t2 - t1
            parts["verdict (result read, decoded)"] += clock() - t2
            continue
        assert not isinstance(verdict, Served), verdict
        attempt.claim()
        t4 = clock()
        attempt.commit(square(i), format=None, prefect={"task_run_id": "r" * 36, "flow_run_id": "f" * 36})
        t5 = clock()
        attempt.release()
        t6 = clock()
        parts["acquire (lock file, .info read)"] += t2 - t1
        parts["verdict (a miss)"] += t3 - t2
        parts["claim (.info start)"] += t4 - t3
        parts["commit (result, .info done)"] += t5 - t4
        parts["release (lock file)"] += t6 - t5
    return parts


def run(n: int = 500, rounds: int = 5, wall: bool = False) -> dict[str, dict[str, float]]:
    """{"first run" | "hit": {part: ms per task (median over rounds)}, with a "total" per phase}."""
    clock = time.perf_counter if wall else time.thread_time
    samples: dict[str, list[dict[str, float]]] = {"first run": [], "hit": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-small-parts-") as root:
            samples["first run"].append(one_pass(n, root, False, clock))
            samples["hit"].append(one_pass(n, root, True, clock))
    out: dict[str, dict[str, float]] = {}
    for phase, runs in samples.items():
        out[phase] = {part: statistics.median(r[part] for r in runs) / n * 1e3 for part in runs[0]}
        out[phase]["total"] = statistics.median(sum(r.values()) for r in runs) / n * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--wall", action="store_true", help="time by the wall clock, not this thread's CPU time")
    args = parser.parse_args()
    result = run(args.tasks, args.rounds, args.wall)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    clock = "wall clock" if args.wall else "CPU time"
    print(f"ms per task ({clock}), median of {args.rounds} rounds of {args.tasks} tasks, load average {load}")
    for phase, parts in result.items():
        print(f"  {phase}")
        for part, ms in parts.items():
            print(f"    {part:<34} {ms:7.3f}")


if __name__ == "__main__":
    main()
