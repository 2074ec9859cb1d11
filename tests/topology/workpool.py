"""A team's setup around the topology's Prefect server: a ``process`` work pool, the Measurements flow deployed into
it from a local source folder, two workers (each its own folder, PREFECT_HOME and environment; the store reaches
them through ``SCOUT_PERSIST_URL`` and fsspec's ``FSSPEC_S3_*`` variables only), and an operator's shell (a third
process with the same environment) for ``scout-persist``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

from topology import PROJECT, Patience, PrefectServer, ProcessWorker, base_env, run_python

DEPLOY = """
import sys
from prefect import flow
source, name, pool = sys.argv[1:4]
deployment = flow.from_source(source, "measurements.py:measurements").deploy(
    name=name, work_pool_name=pool, print_next_steps=False, ignore_warnings=True
)
print(deployment)
"""
CLI = "import sys; from scout_persist.cli import main; sys.exit(main())"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class Api:
    """The topology server's API through Prefect's own client, without touching the test process's settings."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.url}):
            with get_client(sync_client=True) as client:
                yield client

    def create_process_pool(self, name: str) -> None:
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.workers.process import ProcessWorker as Worker

        template = Worker.get_default_base_job_template()
        with self.client() as c:
            c.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))

    def run_deployment(self, name: str, parameters: dict[str, Any]) -> UUID:
        """Create a flow run of the deployment and return at once (``timeout=0``): a worker picks it up."""
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.url}):
            run = run_deployment(name, parameters=parameters, timeout=0, as_subflow=False)
        return run.id

    def states(self, ids: list[UUID]) -> dict[UUID, str]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with self.client() as c:
            runs = c.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))))
        return {r.id: (r.state.type.value if r.state else "NONE") for r in runs}

    def task_runs(self, flow_run_ids: list[UUID]) -> list[Any]:
        """Every task run of these flow runs, as the server holds them now."""
        from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId

        found: list[Any] = []
        with self.client() as c:
            while True:
                page = c.read_task_runs(
                    task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=list(flow_run_ids))),
                    limit=200,
                    offset=len(found),
                )
                found += page
                if len(page) < 200:
                    return found


def scout_tags(task_run: Any) -> list[str]:
    return [t[len("scout:") :] for t in task_run.tags if t.startswith("scout:")]


class Lab:
    """One team's deployment: pool ``name``, the flow deployed from ``source``, workers, a shared bucket."""

    def __init__(
        self, folder: Path, server: PrefectServer, api: Api, s3: Any, patience: Patience, name: str, limit: int
    ) -> None:
        self.folder, self.server, self.api, self.s3, self.patience = folder, server, api, s3, patience
        self.name, self.limit = name, limit
        self.source = folder / "checkout"  # the team's code, deployed as local source
        shutil.copytree(PROJECT, self.source, ignore=shutil.ignore_patterns("__pycache__"))
        self.store_url = f"s3://{s3.create_bucket()}/lab"
        self.body_log = folder / "bodies.log"
        self.results = folder / "results"
        self.results.mkdir()
        self.deployment = f"Measurements/{name}"
        self.workers: dict[str, ProcessWorker] = {}
        self.deploy_seconds = 0.0

    # -- the environment every process of the team gets (the only way the store reaches them) ----------------
    def env(self, who: str, **extra: str) -> dict[str, str]:
        return {
            **self.s3.env(),  # FSSPEC_S3_ENDPOINT_URL, FSSPEC_S3_KEY, FSSPEC_S3_SECRET and AWS_* credentials
            "SCOUT_PERSIST_URL": self.store_url,
            "SCOUT_PERSIST_RUN_LEASE": "10",  # a dead run is called crashed 10 s after its last renewal
            "TOPO_WORKER": who,
            "TOPO_BODY_LOG": str(self.body_log),
            "TOPO_RESULTS": str(self.results),
            **extra,
        }

    def storage_options(self) -> dict[str, str]:
        env = self.s3.env()
        return {
            "endpoint_url": env["FSSPEC_S3_ENDPOINT_URL"],
            "key": env["FSSPEC_S3_KEY"],
            "secret": env["FSSPEC_S3_SECRET"],
        }

    def store(self) -> Any:
        from scout_persist.store import Store

        return Store(self.store_url, **self.storage_options())

    # -- setting up ------------------------------------------------------------------------------------------
    def deploy(self) -> str:
        """``flow.from_source(<checkout>, "measurements.py:measurements").deploy(...)`` from a developer's shell;
        ``deploy_seconds`` says how long it took."""
        began = time.monotonic()
        env = base_env(PREFECT_API_URL=self.server.url, PREFECT_HOME=str(self.folder / "developer-home"))
        done = run_python(
            [sys.executable, "-c", DEPLOY, str(self.source), self.name, self.name],
            env,
            self.folder,
            timeout=self.patience.seconds(180),
        )
        assert done.returncode == 0, f"deploy failed:\n{done.stdout}\n{done.stderr}"
        self.deploy_seconds = time.monotonic() - began
        return done.stdout.strip().splitlines()[-1]

    def start_worker(self, who: str) -> ProcessWorker:
        worker = ProcessWorker(
            f"worker-{who}", self.folder / f"worker-{who}", self.server.url, self.name, self.env(who), limit=self.limit
        )
        self.workers[who] = worker.start()
        return worker

    def wait_workers_online(self) -> None:
        from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

        def online() -> bool:
            with self.api.client() as c:
                seen = c.read_workers_for_work_pool(
                    self.name, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"]))
                )
            return {w.name for w in seen} >= {w.name for w in self.workers.values()}

        self.patience.wait_for(online, "both workers online", nominal=120, alive=self.workers.values())

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()

    # -- running ---------------------------------------------------------------------------------------------
    def launch(self, parameters: dict[str, Any]) -> UUID:
        return self.api.run_deployment(self.deployment, parameters)

    def wait_final(self, ids: list[UUID], nominal: float = 120.0) -> dict[UUID, str]:
        """Wait until every flow run is final; a wait fails only after ``nominal`` seconds without any progress
        (a new body, a run ending)."""

        def final() -> dict[UUID, str] | None:
            states = self.api.states(ids)
            return states if len(states) == len(ids) and all(s in FINAL for s in states.values()) else None

        def progress() -> tuple[int, int]:
            return len(self.bodies()), len(list(self.results.iterdir()))

        states = self.patience.wait_for(
            final, f"{len(ids)} flow runs to end", nominal, progress, poll=0.5, alive=self.workers.values()
        )
        bad = {i: s for i, s in states.items() if s != "COMPLETED"}
        assert not bad, f"flow runs did not complete: {bad}\n" + self.worker_logs()
        return states

    def result(self, flow_run_id: UUID) -> dict:
        """What the flow run returned (what it was served)."""
        return dict(json.loads((self.results / f"{flow_run_id}.json").read_text())["value"])

    def ran_on(self, flow_run_id: UUID) -> str:
        """The worker whose flow run process ran it (``ops`` for an operator's shell)."""
        return str(json.loads((self.results / f"{flow_run_id}.json").read_text())["worker"])

    def bodies(self) -> list[tuple[str, str, str, str]]:
        """(task, what, worker, pid) of every task body that ran, in order."""
        if not self.body_log.exists():
            return []
        return [tuple(line.split()) for line in self.body_log.read_text().splitlines() if line]  # type: ignore[misc]

    def body_counts(self) -> Counter[tuple[str, str]]:
        return Counter((task, what) for task, what, _, _ in self.bodies())

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.tail(60)}" for w in self.workers.values())

    # -- an operator's shell: a third process with the team's environment ------------------------------------
    def cli(self, *argv: str, nominal: float = 120.0, **extra: str) -> Any:
        env = base_env(**self.env("ops", **extra))
        return run_python([sys.executable, "-c", CLI, *argv], env, self.folder, timeout=self.patience.seconds(nominal))


def expected_jobs(runs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (task, what) of every job the Measurements runs with these parameters compute (as bodies.note names them)."""
    jobs: set[tuple[str, str]] = set()
    for p in runs:
        gain = f"{p['gain']:g}"
        for s in p["samples"]:
            jobs |= {("load", s), ("calibrate", f"{s}@{gain}"), ("summarise", f"{s}@{gain}")}
        jobs.add(("report", f"{'+'.join(p['samples'])}@{gain}"))
    return jobs


def job_of(info: dict[str, Any]) -> tuple[str, str]:
    """The (task, what) of a Measurements job's ``.info``, as ``bodies.note`` names its body."""
    inputs = dict(zip(info["input_names"], info["inputs"]))
    task = info["task_name"]
    if task == "load":
        return task, inputs["sample"]
    if task == "report":
        return task, f"{'+'.join(inputs['samples'])}@{inputs['gain']:g}"
    return task, f"{inputs['sample']}@{inputs['gain']:g}"


def taken_over(info: dict[str, Any]) -> bool:
    """Whether the job's lease was taken from an earlier holder (its fence is past the first acquisition)."""
    return int(info.get("lease", {}).get("fence", 1)) > 1


def load_measurements(path: Path, name: str) -> Any:
    """The Measurements module of a checkout, imported under its own name (for the values its code computes)."""
    import importlib.util

    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
