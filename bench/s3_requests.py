"""S3 requests per save and per cache hit of one scout task, counted (not timed) at the HTTP level.

A moto S3 server runs on 127.0.0.1; a counting proxy sits in front of it (the one the reliability tests use
to inject faults). A flow with one scout task runs twice in this process: the first run saves, the second
hits the cache (asserted: the second run writes nothing). Every request the plug-in makes for the job in each run
is counted and listed, with the status it got. A third run hits in what stands for a process new to the store (this
process's presence hints forgotten, scout_persist.presence): it cannot know the job exists, so its conditional create
is refused (412, nothing written) before the hit's two reads. Then a flow of 50 tasks runs twice, batched (the
default) and unbatched (SCOUT_PERSIST_RUN_FLUSH=0): the requests of its run record (var/runs) per task, and of its
jobs per task (the first run saves 50 new jobs; the second, again as a process new to the store, hits them all).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def run() -> dict:
    """The counts, measured in a child process of its own: Prefect reads its settings (the ephemeral server's start-up
    timeout, its home, the log level) when first imported, and the bench process has imported it already; the S3
    variables the measurement sets stay out of the benchmarks that follow."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, timeout=900, env=dict(os.environ)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"S3 requests benchmark failed:\n{proc.stderr[-3000:]}")
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure() -> dict:
    """The child's work: a moto server and the counting proxy, the flows, every request counted."""
    sys.path[:0] = [str(TESTS)]
    import logging

    from faulty_proxy import FaultyProxy
    from s3_server import S3Server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server().start()
    proxy = FaultyProxy(server.url).start()
    bucket = server.create_bucket()
    tmp = tempfile.mkdtemp(prefix="bench-s3-")
    os.environ.update(server.env())
    os.environ.update(
        FSSPEC_S3_ENDPOINT_URL=proxy.url,
        SCOUT_PERSIST_URL=f"s3://{bucket}/root",
        PREFECT_HOME=f"{tmp}/prefect-home",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    os.environ.pop("PREFECT_API_URL", None)
    import fsspec.config

    fsspec.config.set_conf_env(fsspec.config.conf)

    from prefect import flow

    from prefect_scout import scout_task
    from scout_persist import presence

    @scout_task(workflow="Bench", type="integer")
    def answer(x: int = 41) -> int:
        return x + 1

    @flow(name="Bench", persist_result=False)
    def one_task() -> int:
        return answer()

    def warm():
        return 1

    flow(name="warm")(warm)()

    @scout_task(workflow="Bench", type="integer")
    def item(i: int) -> int:
        return i + 1000

    @flow(name="Bench", persist_result=False)
    def many(n: int, flush: str) -> list:
        return [f.result() for f in [item.submit(i) for i in range(n)]]

    def is_record(line: str) -> bool:
        return "/var/runs/" in line.split(" ")[1]

    def jobs_only(start: int) -> list[str]:
        """The job's own requests since ``start``, each with the status it got ("412 PUT ...": refused, wrote
        nothing)."""
        return [line for line in proxy.answered(start) if not is_record(line.split(" ", 1)[1])]

    counts = {}
    for phase in ("save", "hit", "hit_new_process"):
        if phase == "hit_new_process":
            presence.forget_all()  # what a process that never looked at this store knows
        start = len(proxy.log)
        assert one_task() == 42
        counts[phase] = jobs_only(start)
    for phase in ("hit", "hit_new_process"):
        writes = [line for line in counts[phase] if not line.startswith(("200 GET", "200 HEAD", "412 PUT"))]
        if writes:  # a hit reads; a run that writes the job recomputed it
            raise RuntimeError(f"the {phase} run was not a cache hit: it wrote {writes}")
    n = 50
    record = {}
    per_task = {}
    for flush in ("1", "0"):  # batched (the default), then one write per finished task
        os.environ["SCOUT_PERSIST_RUN_FLUSH"] = flush
        if flush == "0":
            presence.forget_all()  # the cached run: in a process new to the store
        start = len(proxy.log)
        assert many(n, flush) == [i + 1000 for i in range(n)]
        record[flush] = [line for line in proxy.log[start:] if is_record(line)]
        per_task["new_jobs" if flush == "1" else "cached_new_process"] = len(jobs_only(start)) / n
    os.environ.pop("SCOUT_PERSIST_RUN_FLUSH")
    proxy.stop()
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    out = {phase: {"requests": len(lines), "detail": lines} for phase, lines in counts.items()}
    out["jobs_per_task"] = {"tasks": n, **per_task}
    out["run_record"] = {
        "tasks": n,
        "per_task_batched": len(record["1"]) / n,
        "per_task_unbatched": len(record["0"]) / n,
        "batched": record["1"],
        "unbatched_requests": len(record["0"]),
    }
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure()))
    else:
        print(json.dumps(run(), indent=2))
