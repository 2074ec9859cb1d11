"""The store alone is enough: SIGKILL a flow midway, delete its PREFECT_HOME, find it with ``runs --status running``,
let its lease lapse, and ``resume --incomplete`` completes it without recomputing a done job (local disk and S3).
Two restorers racing resume a crashed run once."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

import flows_for_ops
from scout_persist import runs as core
from scout_persist.job import Job
from scout_persist.store import Store
from scout_prefect_helpers import kill_group

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

HERE = Path(__file__).resolve().parent
LEASE = 15  # seconds: short enough to wait for, long enough for `runs` to see the run before it lapses
CLI = [sys.executable, "-c", "import sys; from scout_persist.cli import main; sys.exit(main())"]


def _env(root: str, log: Path, home: Path | None, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        SCOUT_PERSIST_URL=root,
        OPS_BODY_LOG=str(log),
        SCOUT_PERSIST_RUN_LEASE=str(LEASE),
        SCOUT_PERSIST_RUN_FLUSH="0",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240",
        **extra,
    )
    # every child talks to the session's Prefect server (a real one; starting an ephemeral API per child costs ~20 s)
    env["PREFECT_API_URL"] = extra.get("PREFECT_API_URL") or str(PREFECT_API_URL.value())
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


def _cli(env: dict, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(argv), env=env, capture_output=True, text=True, timeout=timeout)


def _job_infos(store: Store) -> dict[str, dict]:
    return {
        k[: -len(".info")]: json.loads(store.get(k))
        for k in store.list("var/jobs/Ops/chain_step")
        if k.endswith(".info")
    }


def _body_of(info: dict) -> str:
    return f"chain_{info['provided_inputs']['i']}"


@pytest.fixture(params=["local", "s3"])
def crash_root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "scout")
    return request.getfixturevalue("s3_url")


@pytest.mark.timeout(600)
def test_killed_flow_is_found_without_prefect_and_resumed_without_recomputing(crash_root, tmp_path):
    store = Store(crash_root)
    log, out = tmp_path / "bodies.log", tmp_path / "out.json"
    home1 = tmp_path / "home1"
    child = subprocess.Popen(
        [sys.executable, str(HERE / "flows_for_ops.py"), "chain", str(out)],
        env=_env(crash_root, log, home1),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its own group: the kill takes its ephemeral API server too
    try:
        deadline = time.monotonic() + 180
        while len(log.read_text().split() if log.exists() else []) < 6:
            assert child.poll() is None, "the flow ended before it could be killed"
            assert time.monotonic() < deadline, "the flow never reached 6 task bodies"
            time.sleep(0.02)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        kill_group(child)
    shutil.rmtree(home1)  # Prefect's database of that run is gone
    at_kill = _job_infos(store)
    done_at_kill = {k for k, i in at_kill.items() if i["status"] == "done"}
    assert len(done_at_kill) >= 5 and not out.exists()

    env = _env(crash_root, log, None)
    env.pop("PREFECT_HOME", None)
    listed = _cli(env, "runs", "--status", "running", "--json")
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    assert run["flow"] == "Ops" and run["recorded_status"] == "running" and run["pid"] == child.pid
    assert run["entrypoint"] == f"{HERE / 'flows_for_ops.py'}:chain"
    recorded_done = {j["key"] for j in run["jobs"] if j["status"] == "done"}
    # every job the record calls done is done, and at most the last one finished was not yet written down
    assert recorded_done <= done_at_kill and len(done_at_kill - recorded_done) <= 1, (recorded_done, done_at_kill)

    deadline = time.monotonic() + 120
    while True:  # the lease lapses: the run is crashed, judged by the store's clock
        crashed = json.loads(_cli(env, "runs", "--status", "crashed", "--json").stdout)
        if crashed:
            break
        assert time.monotonic() < deadline, "the run's lease never lapsed"
        time.sleep(1)
    assert crashed[0]["run_id"] == run["run_id"] and "past its lease" in crashed[0]["status_reason"]

    resumed = _cli(_env(crash_root, log, tmp_path / "home2"), "resume", "--incomplete", timeout=400)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run['run_id']} of flow Ops crashed" in resumed.stdout
    infos = _job_infos(store)
    values = {info["provided_inputs"]["i"]: Job.at(store, key).load() for key, info in infos.items()}
    assert [values[i] for i in sorted(values)] == flows_for_ops.expected_chain()

    counts = collections.Counter(log.read_text().split())
    assert set(counts) == {f"chain_{i}" for i in range(flows_for_ops.N_TASKS)}
    for key in done_at_kill:
        assert counts[_body_of(at_kill[key])] == 1, f"{key} was done before the kill but ran again"
    after = core.list_runs(store)
    new = next(r for r in after if r.run_id != run["run_id"])
    old = next(r for r in after if r.run_id == run["run_id"])
    assert old.status == "crashed" and new.status == "completed"
    new = core.read_run(store, new.workflow, new.run_id)
    assert new.record["resumed_from"]["run_id"] == run["run_id"]
    assert new.job_counts() == {"done": flows_for_ops.N_TASKS}
    assert {j["key"] for j in new.jobs() if j["reused"]} >= done_at_kill
    assert [m["run_id"] for m in core.markers(store, "Ops", run["run_id"], core.RESUMED_BY)] == [new.run_id]
    again = _cli(env, "resume", "--incomplete")  # nothing left: the crashed run was resumed
    assert again.returncode == 0 and "no crashed run to resume" in again.stderr


@pytest.mark.timeout(600)
def test_two_restorers_racing_resume_a_crashed_run_once(tmp_path):

    from prefect_scout.run_recorder import code_of

    root = tmp_path / "scout"
    store = Store(str(root))
    log = tmp_path / "bodies.log"
    flow_code, tasks, hashed = code_of(flows_for_ops.chain)
    run_id = str(uuid.uuid4())
    record = {
        "format": core.FORMAT,
        "run_id": run_id,
        "workflow": "Ops",
        "flow": "Ops",
        "entrypoint": f"{HERE / 'flows_for_ops.py'}:chain",
        "source_file": str(HERE / "flows_for_ops.py"),
        "cwd": str(tmp_path),
        "code": {"hash": hashed, "flow": flow_code, "tasks": tasks},
        "parameters": {"n": 4},
        "parameter_digests": {},
        "resumable": True,
        "host": "a-machine-long-gone",
        "pid": 7,
        "start": core.now_iso(),
        "end": None,
        "status": "running",
        "lease": {"seconds": 1.0},
        "jobs": [],
    }
    core.write_record(store, record)
    path = store.path(core.record_key("Ops", run_id))
    os.utime(path, (time.time() - 60, time.time() - 60))
    env = _env(str(root), log, tmp_path / "home", OPS_SLEEP="1.0", PREFECT_API_URL=str(PREFECT_API_URL.value()))
    restorers = [
        subprocess.Popen(
            CLI + ["resume", "--incomplete"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in restorers]
    assert [p.returncode for p in restorers] == [0, 0], outputs
    resumed = [o for o, _ in outputs if f"resumed run {run_id}" in o]
    assert len(resumed) == 1, outputs
    assert sorted(log.read_text().split()) == [f"chain_{i}" for i in range(4)]  # each body ran once
    new = [r for r in core.list_runs(store) if r.run_id != run_id]
    assert len(new) == 1 and new[0].record["resumed_from"]["run_id"] == run_id and new[0].status == "completed"
    loser = next(o + e for o, e in outputs if f"resumed run {run_id}" not in o)
    assert (
        "is being resumed by" in loser
        or "no crashed run to resume" in loser
        or f"run {run_id} was resumed meanwhile" in loser
    ), loser
