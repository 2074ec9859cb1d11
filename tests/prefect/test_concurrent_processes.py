"""Four processes run the same 24-task flow at once on one store: every task body runs exactly once, and all four
get the same correct results.  The children share the session's Prefect API server on 127.0.0.1."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

import flows_for_ops

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

HERE = Path(__file__).resolve().parent
N_PROCS = 4


@pytest.fixture
def prefect_server() -> str:
    """The session's Prefect API server (a real server process on 127.0.0.1); the children share it."""
    return str(PREFECT_API_URL.value())


@pytest.mark.timeout(180)
def test_four_processes_compute_each_job_once(tmp_path, prefect_server):
    root, log = tmp_path / "scout", tmp_path / "bodies.log"
    env = dict(os.environ)
    env.update(
        SCOUT_PERSIST_URL=str(root),
        PREFECT_API_URL=prefect_server,
        OPS_BODY_LOG=str(log),
        PREFECT_HOME=str(tmp_path / "client-home"),
    )
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    outs = [tmp_path / f"out{i}.json" for i in range(N_PROCS)]
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE / "flows_for_ops.py"), "fan", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for out in outs
    ]
    try:
        errors = [child.communicate(timeout=150)[1] for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    elapsed = time.monotonic() - started
    print(f"concurrency test: {N_PROCS} processes x {flows_for_ops.N_TASKS} tasks in {elapsed:.1f} s")
    for child, err in zip(children, errors):
        assert child.returncode == 0, err.decode(errors="replace")[-3000:]

    expected = flows_for_ops.expected_fan()
    assert [json.loads(out.read_text()) for out in outs] == [expected] * N_PROCS
    counts = collections.Counter(log.read_text().split())
    assert counts == {f"fan_{i}": 1 for i in range(flows_for_ops.N_TASKS)}
    jobs = sorted(p.name for p in (root / "var/jobs/Ops/fan_item").iterdir())
    assert len(jobs) == 2 * flows_for_ops.N_TASKS  # one result and one .info per task, nothing else
    for info in (root / "var/jobs/Ops/fan_item").glob("*.info"):
        assert json.loads(info.read_text())["status"] == "done", info
    locks = list((root / "tmp").rglob("*.lock")) if (root / "tmp").exists() else []
    assert not locks, locks
