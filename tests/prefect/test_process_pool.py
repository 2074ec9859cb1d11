"""A process pool resolves futures before its workers create task runs: the Scout dependencies must survive."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from prefect_scout import job_name, scout_task


@scout_task(type="integer", workflow="Pool")
def pool_base(n: int = 1) -> int:
    return n


@scout_task(type="integer", workflow="Pool")
def pool_plus_one(b: int) -> int:
    return b + 1


def _pool_flow(runner):
    @flow(name="Pool", task_runner=runner)
    def pool(n: int = 5):
        with job_name("pool"):
            return pool_plus_one.submit(pool_base.submit(n=n)).result()

    return pool


def _jobs(root):
    return sorted(str(p.relative_to(root)) for p in (root / "var/jobs").rglob("*") if p.is_file())


def test_process_pool_keeps_dependencies(tmp_path, monkeypatch):
    threads, procs = tmp_path / "threads", tmp_path / "procs"
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(threads))
    assert _pool_flow(ThreadPoolTaskRunner(max_workers=2))(5) == 6
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(procs))
    assert _pool_flow(ProcessPoolTaskRunner(max_workers=2))(5) == 6
    assert _jobs(procs) == _jobs(threads)
    base_key = next(k for k in _jobs(threads) if "pool_base" in k and not k.endswith(".info"))
    plus_key = next(k for k in _jobs(threads) if "pool_plus_one" in k and not k.endswith(".info"))
    assert base_key.rsplit("_", 1)[1] != plus_key.rsplit("_", 1)[1]  # plus_one hashes its dependency, not 5
