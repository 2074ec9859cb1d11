"""SIGKILL a 24-task chain flow midway in a child process, rerun it: finished bodies never run again, the job that was
running when killed (status ``start``, dead pid) is recomputed, and the final results are complete and correct."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

import flows_for_ops
from scout_persist.store import Store
from scout_prefect_helpers import kill_group

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

HERE = Path(__file__).resolve().parent


def _child_env(tmp_path: Path, root: Path, log: Path, home: str) -> dict:
    env = dict(os.environ)
    env.update(SCOUT_PERSIST_URL=str(root), PREFECT_HOME=str(tmp_path / home), OPS_BODY_LOG=str(log))
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the session's server: no ephemeral API to start
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


def _statuses(root: Path) -> dict[str, dict]:
    store = Store(str(root))
    infos = {}
    for key in store.list("var/jobs/Ops/chain_step"):
        if key.endswith(".info"):
            infos[key[: -len(".info")]] = json.loads(store.get(key))
    return infos


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _body_of(info: dict) -> str:
    return f"chain_{info['provided_inputs']['i']}"


def test_sigkill_midway_then_resume(tmp_path):
    root, log, out = tmp_path / "scout", tmp_path / "bodies.log", tmp_path / "out.json"
    script = [sys.executable, str(HERE / "flows_for_ops.py"), "chain", str(out)]
    started = time.monotonic()
    child = subprocess.Popen(
        script,
        env=_child_env(tmp_path, root, log, "home1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its own group: the kill takes its ephemeral API server too
    try:
        deadline = time.monotonic() + 120
        while True:
            lines = log.read_text().split() if log.exists() else []
            if len(lines) >= 8:
                break
            assert child.poll() is None, "the flow ended before it could be killed"
            assert time.monotonic() < deadline, "the flow never reached 8 task bodies"
            time.sleep(0.02)

        # kill while the next link is inside its body (status start; the body sleeps 0.2 s before its line)
        def in_body() -> bool:
            logged = set(log.read_text().split())
            return any(i["status"] == "start" and _body_of(i) not in logged for i in _statuses(root).values())

        while not in_body():
            assert time.monotonic() < deadline, "no job ever reached status start"
            time.sleep(0.01)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        kill_group(child)
    first_run = time.monotonic() - started

    finished_at_kill = log.read_text().split()
    assert 5 <= len(finished_at_kill) < 20, finished_at_kill
    assert not out.exists()
    at_kill = _statuses(root)
    done_at_kill = {k for k, info in at_kill.items() if info["status"] == "done"}
    running = {k: info for k, info in at_kill.items() if info["status"] == "start"}
    in_flight = {k: i for k, i in running.items() if _body_of(i) not in finished_at_kill}
    assert len(in_flight) == 1, {k: i["status"] for k, i in at_kill.items()}
    ((running_key, running_info),) = in_flight.items()
    assert running_info["pid"] == child.pid and not _pid_alive(child.pid)
    assert len(done_at_kill) >= 5
    for key in done_at_kill:
        assert (root / key).is_file(), key

    started = time.monotonic()
    subprocess.run(
        script,
        env=_child_env(tmp_path, root, log, "home2"),
        check=True,
        timeout=180,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    second_run = time.monotonic() - started
    print(f"crash test: killed run {first_run:.1f} s, resumed run {second_run:.1f} s")

    assert json.loads(out.read_text()) == flows_for_ops.expected_chain()
    counts = collections.Counter(log.read_text().split())
    assert set(counts) == {f"chain_{i}" for i in range(flows_for_ops.N_TASKS)}
    for key in done_at_kill:
        assert counts[_body_of(at_kill[key])] == 1, f"{key} was done before the kill but ran again"
    # the body in flight when killed had not written its line; it ran once, in the second run
    assert counts[_body_of(running_info)] == 1
    assert _body_of(running_info) not in finished_at_kill
    # every body that logged before the kill ran exactly once, except at most one that finished its body but was
    # killed before its result was stored
    reran = [b for b in finished_at_kill if counts[b] > 1]
    assert len(reran) <= 1 and all(counts[b] == 2 for b in reran)
    assert not set(reran) & {_body_of(at_kill[k]) for k in done_at_kill}
    after = _statuses(root)
    assert len(after) == flows_for_ops.N_TASKS
    assert all(info["status"] == "done" for info in after.values())
    assert after[running_key]["pid"] != child.pid  # recomputed by the second run
    for key in done_at_kill:
        assert after[key]["pid"] == child.pid  # reused, not rewritten
    locks = list((root / "tmp").rglob("*.lock")) if (root / "tmp").exists() else []
    assert not locks, locks  # the dead run's lock was recovered and the new run released its own
