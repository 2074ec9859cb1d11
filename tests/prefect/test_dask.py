"""The Baking flow and a 24-task fan run on a Dask LocalCluster of 2 worker processes with the store on the S3
endpoint, and leave the same job tree (keys, .info status/inputs/dependencies, result bytes) as a thread-runner run
on a local folder."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from prefect.task_runners import ThreadPoolTaskRunner

import flows_for_ops
from scout_persist.store import Store
from scout_prefect_helpers import ran

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "docs" / "examples"


def _dask_runner():
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": 2,
            "processes": True,
            "threads_per_worker": 1,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",  # its HTTP server (health, metrics) on a free loopback port
        },
    )


def _run_all(runner, baking_flow) -> dict:
    baking = baking_flow.baking.with_options(task_runner=runner)
    fan = flows_for_ops.fan.with_options(task_runner=runner)
    return {
        "normal": baking("Normal muffin", None)["tray"],
        "blueberry": baking("Blueberry muffin", True)["tray"],
        "fan": fan(),
    }


def _tree(url: str) -> dict[str, object]:
    """Every key under var/jobs: result bytes, or (status, inputs, dependencies relative to the root) for .info."""
    store = Store(url)
    root = store.url.rstrip("/") + "/"
    tree: dict[str, object] = {}
    for key in store.list("var/jobs"):
        data = store.get(key)
        if key.endswith(".info"):
            info = json.loads(data)
            deps = [d[len(root) :] if d.startswith(root) else d for d in info["dependencies"]]
            tree[key] = (info["status"], info.get("inputs"), info.get("input_names"), deps)
        else:
            tree[key] = data
    return tree


@pytest.mark.s3
@pytest.mark.timeout(300)
def test_dask_cluster_on_s3_leaves_the_local_tree(tmp_path, s3_url, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(EXAMPLES), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("OPS_SLEEP", "0.05")
    import baking_flow

    local = tmp_path / "local"
    local_log, dask_log = tmp_path / "local.log", tmp_path / "dask.log"
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(local))
    monkeypatch.setenv("OPS_BODY_LOG", str(local_log))
    monkeypatch.setenv("BAKING_BODY_LOG", str(local_log))
    started = time.monotonic()
    local_out = _run_all(ThreadPoolTaskRunner(max_workers=4), baking_flow)
    local_time = time.monotonic() - started

    monkeypatch.setenv("SCOUT_PERSIST_URL", s3_url)
    monkeypatch.setenv("OPS_BODY_LOG", str(dask_log))
    monkeypatch.setenv("BAKING_BODY_LOG", str(dask_log))
    started = time.monotonic()
    dask_out = _run_all(_dask_runner(), baking_flow)
    dask_time = time.monotonic() - started
    with capsys.disabled():
        print(f"\ndask test: thread runner {local_time:.1f} s, Dask LocalCluster on S3 {dask_time:.1f} s")

    assert dask_out == local_out
    assert local_out["fan"] == flows_for_ops.expected_fan()
    # the same bodies ran once in each setting: 3 Baking jobs per muffin (job names differ) plus the fan
    assert sorted(ran(dask_log)) == sorted(ran(local_log))
    assert len(ran(dask_log)) == 6 + flows_for_ops.N_TASKS
    local_tree, dask_tree = _tree(str(local)), _tree(s3_url)
    assert len(local_tree) == 2 * (6 + flows_for_ops.N_TASKS)
    assert sorted(dask_tree) == sorted(local_tree)
    for key in local_tree:
        assert dask_tree[key] == local_tree[key], key
    assert all(v[0] == "done" for k, v in dask_tree.items() if k.endswith(".info"))
    store = Store(s3_url)
    pids = {json.loads(store.get(k))["pid"] for k in dask_tree if k.endswith(".info")}
    # computed in worker processes: each of the 3 flow runs starts its own cluster of 2 workers
    assert os.getpid() not in pids and 1 <= len(pids) <= 3 * 2, pids
    assert not [k for k in store.list("tmp/persist_locks") if k.endswith(".lock")]
    assert sys.modules["baking_flow"] is baking_flow
