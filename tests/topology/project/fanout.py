"""A fan of independent scout tasks for a Dask cluster: ``python fanout.py <scheduler address> <out.json> [n]``.

Runs the flow in this process with ``DaskTaskRunner(address=...)`` (the cluster is started elsewhere; its workers
import this module from their own ``PYTHONPATH``) and writes ``{"values", "flow_run_id", "code"}`` to ``out.json``:
``code`` is the code identity of the task as this process computes it, to compare with what the workers recorded.
"""

from __future__ import annotations

import json
import sys

from prefect import flow, runtime

from bodies import note
from prefect_scout import job_name, scout_task


@scout_task(type="integer")
def square(i: int) -> int:
    note("square", str(i))
    return i * i + 1


@flow(name="Fanout")
def fanout(n: int = 200) -> dict:
    with job_name("fan"):
        futures = [square.submit(i) for i in range(n)]
        values = [f.result() for f in futures]
    return {"values": values, "flow_run_id": str(runtime.flow_run.id)}


if __name__ == "__main__":
    import inspect

    from prefect_dask import DaskTaskRunner

    from scout_persist.codeidentity import identify

    address, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    result = fanout.with_options(task_runner=DaskTaskRunner(address=address))(n)
    result["code"] = identify(inspect.unwrap(square.fn)).digest
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
