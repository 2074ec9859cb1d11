"""Flows for the operations tests, importable by child processes and Dask workers.

Run as a script: ``python flows_for_ops.py chain|fan <out.json>``; it runs the flow in this process (store root from
``$SCOUT_PERSIST_URL``, side-effect file from ``$OPS_BODY_LOG``) and writes the flow's result as JSON to ``out.json``.
Each task body sleeps ``$OPS_SLEEP`` seconds (default 0.2) and then appends its job name to the side-effect file.
"""

from __future__ import annotations

import json
import os
import sys
import time

from prefect import flow

from prefect_scout import job_name, scout_task

N_TASKS = 24


def _note(name: str) -> None:
    time.sleep(float(os.environ.get("OPS_SLEEP", "0.2")))
    log = os.environ.get("OPS_BODY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()


@scout_task(type="integer", workflow="Ops")
def chain_step(prev: int, i: int) -> int:
    """One link of the chain: previous total plus ``i * i``."""
    _note(f"chain_{i}")
    return prev + i * i


@scout_task(type="integer", workflow="Ops")
def fan_item(i: int) -> int:
    """One independent task of the fan."""
    _note(f"fan_{i}")
    return i * i + 1


@flow(name="Ops")
def chain(n: int = N_TASKS) -> list[int]:
    """A chain of ``n`` scout tasks, each depending on the one before; returns every link's result."""
    out: list[int] = []
    with job_name("chain"):
        prev = 0
        future = None
        for i in range(n):
            future = chain_step.submit(future if future is not None else prev, i)
            out.append(future)
        return [f.result() for f in out]


@flow(name="Ops")
def fan(n: int = N_TASKS) -> list[int]:
    """``n`` independent scout tasks; returns their results in order."""
    with job_name("fan"):
        futures = [fan_item.submit(i) for i in range(n)]
        return [f.result() for f in futures]


def expected_chain(n: int = N_TASKS) -> list[int]:
    totals, total = [], 0
    for i in range(n):
        total += i * i
        totals.append(total)
    return totals


def expected_fan(n: int = N_TASKS) -> list[int]:
    return [i * i + 1 for i in range(n)]


if __name__ == "__main__":
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    which, out_path = sys.argv[1], sys.argv[2]
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = {"chain": chain, "fan": fan}[which]()
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
