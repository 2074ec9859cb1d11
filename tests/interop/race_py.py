"""The Python side of the interop race suite (tests/interop/test_ruby_race.py): the plug-in runs the jobs of Ruby's
``Race`` workflow (tests/interop/race.rb) as scout tasks with the same job paths.

Run as ``python race_py.py`` with ``$SCOUT_PERSIST_URL``, ``$PREFECT_API_URL`` and ``$RACE_LOG`` set.  It reads one
JSON command per line on stdin and answers one JSON line on stdout (after a first ``{"cmd": "ready"}``):

    {"cmd": "run", "t0": EPOCH, "jobs": [{"task": "work", "id": "t1_j00", "offset": 0.1}, ...], "duration": 0.3}

runs one flow that submits each job at ``t0 + offset`` (a thread per task) and answers each job's value, or the
error it ended with.  Each task body appends ``py <task> <id> <pid> start`` / ``... end`` to ``$RACE_LOG``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_scout import JobName, scout_task


def _body_log(task: str, id: str | None, event: str) -> None:
    with open(os.environ["RACE_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"py {task} {id} {os.getpid()} {event}\n")


@scout_task(workflow="Race", type="string")
def work(id: JobName = None) -> str:
    _body_log("work", id, "start")
    time.sleep(float(os.environ.get("RACE_DURATION", "0.3")))
    _body_log("work", id, "end")
    return f"v:{id}"


@scout_task(workflow="Race", type="string")
def top(work: str, id: JobName = None) -> str:
    _body_log("top", id, "start")
    time.sleep(float(os.environ.get("RACE_DURATION", "0.3")))
    _body_log("top", id, "end")
    return "top:" + work


@flow(name="Race", task_runner=ThreadPoolTaskRunner(max_workers=64), persist_result=False)
def race(jobs: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    futures: dict[str, Any] = {}
    for spec in sorted(jobs, key=lambda s: float(s.get("offset", 0))):
        wait = t0 + float(spec.get("offset", 0)) - time.time()
        if wait > 0:
            time.sleep(wait)
        ident = spec["id"]
        if spec["task"] == "work":
            futures[f"work/{ident}"] = work.submit(id=ident)
        else:
            dep = futures.get(f"work/{ident}") or work.submit(id=ident)
            futures[f"top/{ident}"] = top.submit(dep, id=ident)
    out: dict[str, Any] = {}
    for name, future in futures.items():
        future.wait()
        state = future.state
        out[name] = future.result() if state.is_completed() else f"{state.type.value}: {state.message}"
    return out


def main() -> None:
    print(json.dumps({"cmd": "ready", "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        os.environ["RACE_DURATION"] = str(command.get("duration", 0.3))
        try:
            results = race(command["jobs"], float(command["t0"]))
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results = {"flow": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"cmd": "run", "results": results}), flush=True)


if __name__ == "__main__":
    main()
