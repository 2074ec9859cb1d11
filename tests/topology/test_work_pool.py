"""A Prefect server, a ``process`` work pool, two workers sharing one S3 store, the Measurements flow deployed from
local source: concurrent flow runs compute each job once across workers; a worker killed mid-run is found crashed
and resumed by an operator; the API shows each task run's job; a code change deployed mid-run serves no wrong value.
"""

from __future__ import annotations

import json
import uuid

import pytest

from conftest import SOAK
from workpool import Lab, expected_jobs, load_measurements, scout_tags

pytestmark = pytest.mark.timeout(1800)

SAMPLES = [f"s{i}" for i in range(1, 9 if SOAK else 7)]
N_RUNS = 30 if SOAK else 10


@pytest.fixture
def lab(tmp_path, prefect_server, api, topology_s3, patience, request):
    """A fresh pool, deployment, bucket and two workers (``limit`` flow runs each: the test's ``lab_limit`` mark)."""
    mark = request.node.get_closest_marker("lab_limit")
    name = f"lab-{uuid.uuid4().hex[:8]}"
    api.create_process_pool(name)
    team = Lab(tmp_path, prefect_server, api, topology_s3, patience, name, limit=mark.args[0] if mark else 4)
    team.deploy()
    try:
        for who in "ab":
            team.start_worker(who)
        team.wait_workers_online()
        yield team
    finally:
        team.stop()


def overlapping(n: int) -> list[dict]:
    """``n`` parameter sets sharing samples and gains: most jobs are wanted by several runs at once."""
    return [
        {"samples": [SAMPLES[(i + k) % len(SAMPLES)] for k in range(3)], "gain": (1.0, 2.0)[i % 2]} for i in range(n)
    ]


def test_concurrent_runs_compute_each_job_once_across_workers_and_the_api_shows_every_job(lab, api):
    params = overlapping(N_RUNS)
    ids = [lab.launch(p) for p in params]  # all at once: both workers pick them up
    lab.wait_final(ids, nominal=180)

    reference = load_measurements(lab.source / "measurements.py", "measurements_v1")
    for run_id, p in zip(ids, params):
        assert lab.result(run_id) == reference.expected(p["samples"], p["gain"]), run_id
    counts = lab.body_counts()
    wanted = expected_jobs(params)
    assert set(counts) == wanted
    assert {job for job, n in counts.items() if n != 1} == set(), counts  # each job computed exactly once
    workers = {w for _, _, w, _ in lab.bodies()}
    assert workers == {"a", "b"}, f"both workers computed jobs: {workers}"

    store = lab.store()
    done = {
        k[len("var/jobs/") : -len(".info")]
        for k in store.list("var/jobs/Measurements")
        if k.endswith(".info") and json.loads(store.get(k))["status"] == "done"
    }
    assert len(done) == len(wanted)

    # The API shows each scout task run's job as its `scout:` tag: every job, and only jobs that exist
    def tagged() -> list | None:
        runs = lab.api.task_runs(ids)
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        return runs if len(final) == sum(3 * len(p["samples"]) + 1 for p in params) else None

    runs = lab.patience.wait_for(tagged, "every task run recorded by the server", nominal=120)
    tags = [scout_tags(r) for r in runs]
    assert all(len(t) == 1 for t in tags), [r.tags for r in runs]
    assert {t[0] for t in tags} == done
    for r in runs:  # the tag names the task's own job: Measurements/<task>/<job name>
        assert scout_tags(r)[0].split("/")[:2] == ["Measurements", r.name.rsplit("-", 1)[0]], (r.name, r.tags)

    # Later runs of the same parameters, launched together: every task run is Cached, no body runs
    again_params = params if SOAK else params[:4]
    before = len(lab.bodies())
    again = [lab.launch(p) for p in again_params]
    lab.wait_final(again, nominal=180)
    assert len(lab.bodies()) == before, lab.bodies()[before:]
    for run_id, p in zip(again, again_params):
        assert lab.result(run_id) == reference.expected(p["samples"], p["gain"])

    def cached() -> list | None:
        runs = lab.api.task_runs(again)
        want = sum(3 * len(p["samples"]) + 1 for p in again_params)
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        return final if len(final) == want else None

    cached_runs = lab.patience.wait_for(cached, "the cached runs' task runs recorded", nominal=120)
    assert {r.state.name for r in cached_runs} == {"Cached"}
    assert {scout_tags(r)[0] for r in cached_runs} <= done
