"""A Prefect server, a ``process`` work pool, two workers sharing one S3 store, the Measurements flow deployed from
local source (the ``lab`` fixture, tests/topology/conftest.py): concurrent flow runs compute each job once across
workers, and the API shows each task run's job.  The other work-pool scenarios have a file each, so that under
``pytest -n`` they run beside each other: test_work_pool_crash.py, test_work_pool_code_change.py.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from topology import SOAK
from workpool import expected_jobs, load_measurements, scout_tags

pytestmark = pytest.mark.timeout(1800)

SAMPLES = [f"s{i}" for i in range(1, 9 if SOAK else 7)]
N_RUNS = 30 if SOAK else 10


def overlapping(n: int) -> list[dict]:
    """``n`` parameter sets sharing samples and gains: most jobs are wanted by several runs at once."""
    return [
        {"samples": [SAMPLES[(i + k) % len(SAMPLES)] for k in range(3)], "gain": (1.0, 2.0)[i % 2]} for i in range(n)
    ]


def test_concurrent_runs_compute_each_job_once_across_workers_and_the_api_shows_every_job(lab, say):
    params = overlapping(N_RUNS)
    started = time.monotonic()
    ids = [lab.launch(p) for p in params]  # all at once: both workers pick them up
    lab.wait_final(ids, nominal=180)
    first_s = time.monotonic() - started

    reference = load_measurements(lab.source / "measurements.py", "measurements_v1")
    for run_id, p in zip(ids, params):
        assert lab.result(run_id) == reference.expected(p["samples"], p["gain"]), run_id
    counts = lab.body_counts()
    wanted = expected_jobs(params)
    assert set(counts) == wanted
    assert {job for job, n in counts.items() if n != 1} == set(), counts  # each job computed exactly once
    ran_on = Counter(lab.ran_on(i) for i in ids)
    assert set(ran_on) == {"a", "b"}, f"both workers ran flow runs: {ran_on}"

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
    started = time.monotonic()
    again = [lab.launch(p) for p in again_params]
    lab.wait_final(again, nominal=180)
    again_s = time.monotonic() - started
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
    computing = len({pid for _, _, _, pid in lab.bodies()})
    say(
        f"work pool: {len(ids)} runs launched at once (flow runs by worker {dict(sorted(ran_on.items()))}), "
        f"{len(runs)} task runs, {len(wanted)} distinct jobs, each body once "
        f"({dict(sorted(Counter(w for _, _, w, _ in lab.bodies()).items()))} by worker, in {computing} of the "
        f"{len(ids)} flow run processes; the others were served) in {first_s:.0f}s; {len(again)} later runs: "
        f"{len(cached_runs)} task runs all Cached, 0 bodies, {again_s:.0f}s; {len(done)} scout: tags = {len(done)} jobs"
    )
