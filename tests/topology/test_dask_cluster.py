"""A Dask cluster started piece by piece — ``dask scheduler`` and two ``dask worker`` processes, each with its own
folder and environment (the store by ``SCOUT_PERSIST_URL`` + ``FSSPEC_S3_*``) — and a flow process fanning scout tasks
out with ``DaskTaskRunner(address=...)``: each job computed once, a worker killed mid-run survived, and a second run
all hits (the code identity the workers compute equals the flow process's)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from topology import PROJECT, SOAK, DaskScheduler, DaskWorker, Service, base_env
from workpool import Api, taken_over

pytestmark = pytest.mark.timeout(1800)
N = 600 if SOAK else 200


class Cluster:
    def __init__(self, folder: Path, server, s3, patience) -> None:
        self.folder, self.server, self.s3, self.patience = folder, server, s3, patience
        self.store_url = f"s3://{s3.create_bucket()}/fan"
        self.body_log = folder / "bodies.log"
        self.scheduler = DaskScheduler(folder / "scheduler", {"PYTHONPATH": str(PROJECT)}).start()
        self.address = patience.wait_for(
            lambda: self.scheduler.address, "the scheduler's address", nominal=60, alive=[self.scheduler]
        )
        self.workers: dict[str, DaskWorker] = {}

    def env(self, who: str) -> dict[str, str]:
        """A host's environment: the store, the S3 endpoint, the Prefect API; the project on its PYTHONPATH."""
        return {
            **self.s3.env(),
            "SCOUT_PERSIST_URL": self.store_url,
            "PREFECT_API_URL": self.server.url,
            "PREFECT_HOME": str(self.folder / who / "prefect-home"),
            "PYTHONPATH": str(PROJECT),
            "TOPO_WORKER": who,
            "TOPO_BODY_LOG": str(self.body_log),
            "TOPO_SLEEP": "0.05",
        }

    def add_worker(self, who: str) -> DaskWorker:
        worker = DaskWorker(who, self.folder / who, self.address, self.env(who), threads=4).start()
        self.workers[who] = worker
        self.patience.wait_for(
            lambda: "Registered to" in worker.log.read_text(errors="replace"),
            f"{who} registered with the scheduler",
            nominal=90,
            alive=[worker],
        )
        return worker

    def flow(self, out: Path) -> Service:
        """The flow's own process (a laptop, a CI job, a worker of a work pool): ``python fanout.py ADDRESS OUT N``."""
        argv = [sys.executable, str(PROJECT / "fanout.py"), self.address, str(out), str(N)]
        return Service("flow", self.folder / "flow", argv, base_env(**self.env("flow"))).start()

    def bodies(self) -> list[list[str]]:
        return [line.split() for line in self.body_log.read_text().splitlines()] if self.body_log.exists() else []

    def wait_exit(self, proc: Service) -> int:
        assert proc.proc is not None
        self.patience.wait_for(
            proc.exited,
            "the flow process to end",
            nominal=180,
            progress=lambda: len(self.bodies()),
            poll=0.5,
            alive=[self.scheduler],
        )
        return proc.proc.returncode

    def stop(self) -> None:
        for service in [*self.workers.values(), self.scheduler]:
            service.stop()


@pytest.fixture
def cluster(tmp_path, prefect_server, topology_s3, patience):
    c = Cluster(tmp_path, prefect_server, topology_s3, patience)
    try:
        for who in ("dask-1", "dask-2"):
            c.add_worker(who)
        yield c
    finally:
        c.stop()


def test_a_fan_on_a_dask_cluster_computes_each_job_once_survives_a_killed_worker_and_hits_next_time(
    cluster, prefect_server, say
):
    import time

    from scout_persist.store import Store

    started = time.monotonic()

    out = cluster.folder / "first.json"
    flow = cluster.flow(out)
    try:

        def busy() -> set[str] | None:
            by = Counter(who for _, _, who, _ in cluster.bodies())
            return {w for w, n in by.items() if n >= 5} if sum(by.values()) >= N // 4 else None

        working = cluster.patience.wait_for(
            busy, "a quarter of the fan computed", nominal=180, progress=lambda: len(cluster.bodies()), alive=[flow]
        )
        victim = sorted(working)[0]
        cluster.workers[victim].kill_tree()  # mid-run, with tasks in its threads: the scheduler reassigns them
        bodies_at_kill = Counter(what for _, what, _, _ in cluster.bodies())
        assert sum(bodies_at_kill.values()) < N, "the fan ended before the worker was killed"
        assert cluster.wait_exit(flow) == 0, flow.tail()
    finally:
        flow.stop()
    first = json.loads(out.read_text())
    first_s = time.monotonic() - started
    assert first["values"] == [i * i + 1 for i in range(N)]

    counts = Counter(what for _, what, _, _ in cluster.bodies())
    assert set(counts) == {str(i) for i in range(N)}
    again = {i for i, n in counts.items() if n > 1}
    # run twice at most: a body that had finished on the killed worker whose job was not yet committed (the
    # instant between the body's end and its `done`), and only that worker's; every other job exactly once
    assert max(counts.values()) <= 2 and len(again) <= 4, again
    by_victim = {what for _, what, who, _ in cluster.bodies() if who == victim}
    assert again <= by_victim
    assert {who for _, _, who, _ in cluster.bodies()} == {"dask-1", "dask-2"}

    # Code identity: what the workers signed equals what the flow process computes for the task
    env = cluster.s3.env()
    store = Store(
        cluster.store_url,
        endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"],
        key=env["FSSPEC_S3_KEY"],
        secret=env["FSSPEC_S3_SECRET"],
    )
    infos = [json.loads(store.get(k)) for k in store.list("var/jobs/Fanout/square") if k.endswith(".info")]
    assert len(infos) == N and {i["status"] for i in infos} == {"done"}
    assert {i["signature"]["code"] for i in infos} == {first["code"]}
    assert {i["pid"] for i in infos} == {w.pid for w in cluster.workers.values()}  # computed on the workers
    held = {str(i["inputs"][0]) for i in infos if taken_over(i)}  # started on the victim, not committed: taken over
    assert again <= held, (again, held)

    # A second run on two workers again (a replacement joins): every task a hit, no body runs
    cluster.add_worker("dask-3")
    before = len(cluster.bodies())
    started = time.monotonic()
    out2 = cluster.folder / "second.json"
    flow = cluster.flow(out2)
    try:
        assert cluster.wait_exit(flow) == 0, flow.tail()
    finally:
        flow.stop()
    second = json.loads(out2.read_text())
    second_s = time.monotonic() - started
    assert second["values"] == first["values"] and second["code"] == first["code"]
    assert len(cluster.bodies()) == before, cluster.bodies()[before:]

    api = Api(prefect_server.url)

    def recorded() -> list | None:
        runs = api.task_runs([second["flow_run_id"]])
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        return final if len(final) == N else None

    runs = cluster.patience.wait_for(recorded, "the second run's task runs recorded", nominal=120)
    assert {r.state.name for r in runs} == {"Cached"}
    by_worker = Counter(who for _, _, who, _ in cluster.bodies())
    say(
        f"dask: {N} scout tasks over dask-1 + dask-2 in {first_s:.0f}s, bodies by worker "
        f"{dict(sorted(by_worker.items()))}; {victim} SIGKILLed after {sum(bodies_at_kill.values())} bodies "
        f"({len(held)} jobs it held taken over); bodies run twice: {len(again)}; second run "
        f"(dask-3 replacing {victim}) {len(runs)}/{N} Cached, 0 bodies, {second_s:.0f}s; code identity "
        f"{first['code'][:12]} in the flow process and in all {N} .info"
    )
