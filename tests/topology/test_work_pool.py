"""A Prefect server, a ``process`` work pool, two workers sharing one S3 store, the Measurements flow deployed from
local source: concurrent flow runs compute each job once across workers; a worker killed mid-run is found crashed
and resumed by an operator; the API shows each task run's job; a code change deployed mid-run serves no wrong value.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest

from topology import SOAK
from workpool import FINAL as FINAL_STATES, Lab, expected_jobs, job_of, load_measurements, scout_tags, taken_over

pytestmark = pytest.mark.timeout(1800)

SAMPLES = [f"s{i}" for i in range(1, 9 if SOAK else 7)]
N_RUNS = 30 if SOAK else 10


@pytest.fixture
def lab(tmp_path, prefect_server, api, topology_s3, patience, request):
    """A fresh pool, deployment, bucket and two workers, each running up to 4 flow runs at once (or ``param``)."""
    name = f"lab-{uuid.uuid4().hex[:8]}"
    api.create_process_pool(name)
    team = Lab(tmp_path, prefect_server, api, topology_s3, patience, name, limit=getattr(request, "param", 4))
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


def test_a_worker_killed_mid_run_is_seen_crashed_from_a_third_process_and_resumed_without_recomputing(lab, say):
    pause = lab.patience.seconds(0.5)  # long enough, on this machine now, to see the run midway
    params = {"samples": [f"k{i}" for i in range(1, 13 if SOAK else 9)], "gain": 3.0, "pause": pause}
    run_id = lab.launch(params)
    wanted = expected_jobs([params])

    def midway() -> bool:
        states = lab.api.states([run_id])
        assert states.get(run_id) not in ("COMPLETED", "FAILED", "CRASHED"), "the run ended before it could be killed"
        return len(lab.bodies()) >= len(wanted) // 3

    lab.patience.wait_for(
        midway,
        "a third of the run's jobs done",
        nominal=120,
        progress=lambda: len(lab.bodies()),
        alive=lab.workers.values(),
    )
    (who,) = {w for _, _, w, _ in lab.bodies()}
    killed = lab.workers[who].kill_tree()  # the worker and its flow run process: a host gone, no handler runs
    assert len(killed) >= 2, killed
    store = lab.store()
    at_kill = {k: store.get(k) for k in store.list("var/jobs/Measurements") if k.endswith(".info")}
    done_at_kill = {k: raw for k, raw in at_kill.items() if json.loads(raw)["status"] == "done"}
    bodies_at_kill = lab.body_counts()
    assert 0 < len(done_at_kill) < len(wanted)

    # An operator's shell (a third process: the store's URL in its environment, no Prefect database) sees it crashed
    def crashed() -> dict | None:
        listed = lab.cli("runs", "--status", "crashed", "--json")
        assert listed.returncode == 0, listed.stderr
        return next((r for r in json.loads(listed.stdout) if r["run_id"] == str(run_id)), None)

    run = lab.patience.wait_for(crashed, "the killed run listed as crashed (its lease lapsed)", nominal=90, poll=1.0)
    assert run["flow"] == "Measurements" and run["recorded_status"] == "running", run
    assert "past its lease" in run["status_reason"]

    # ... and resumes it there, talking to the same Prefect server; done jobs are reused, the rest computed
    resumed = lab.cli(
        "resume", "--incomplete", nominal=300, PREFECT_API_URL=lab.server.url, PREFECT_HOME=str(lab.folder / "ops-home")
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id} of flow Measurements crashed" in resumed.stdout

    reference = load_measurements(lab.source / "measurements.py", "measurements_resume")
    (result,) = list(lab.results.iterdir())  # the killed run wrote none; the resumed run's
    assert json.loads(result.read_text()) == {"worker": "ops", "value": reference.expected(params["samples"], 3.0)}
    counts = lab.body_counts()
    assert set(counts) == wanted
    # Computed again: at most the bodies that had finished but whose job was not yet committed at the kill (the
    # instant between a body's end and its `done`), usually none; every job committed before the kill was reused.
    again = {job for job, n in counts.items() if n > 1}
    assert again <= set(bodies_at_kill) and max(counts.values()) <= 2, counts
    assert len(again) <= sum(bodies_at_kill.values()) - len(done_at_kill), (again, len(done_at_kill))
    infos = {k: json.loads(store.get(k)) for k in store.list("var/jobs/Measurements") if k.endswith(".info")}
    assert len(infos) == len(wanted) and {i["status"] for i in infos.values()} == {"done"}
    assert {k: store.get(k) for k in done_at_kill} == done_at_kill  # reused as they were, not rewritten
    held = {job_of(i) for i in infos.values() if taken_over(i)}  # jobs the dead run held: the resume took them over
    assert again <= held, (again, held)
    taken = len(held)
    say(
        f"crash: worker-{who} and its flow run process SIGKILLed with {len(done_at_kill)}/{len(wanted)} jobs done; "
        f"`runs` from an operator's shell: crashed ({run['status_reason']}); `resume --incomplete` there: "
        f"{len(wanted) - len(done_at_kill)} jobs computed ({taken} taken over from the dead holder), "
        f"{len(done_at_kill)} reused untouched, bodies run twice: {len(again)}"
    )


@pytest.mark.parametrize("lab", [1], indirect=True)  # one run per worker: a run launched now goes to the idle one
def test_a_code_change_deployed_while_a_worker_runs_the_old_code_serves_neither_a_wrong_value(lab, say):
    """The report's code changes (a constant it reads) while a run of the old code is at its first stage: the old
    run plans its report after the checkout was edited, yet signs it with the code it runs (in memory, never the
    file on disk); the unchanged tasks' jobs are shared by both versions, the report is computed by each."""
    params = {"samples": ["c1", "c2", "c3"], "gain": 1.5}
    checkout = lab.source / "measurements.py"
    v1 = load_measurements(checkout, "measurements_v1")
    # slow enough that three stages are left when its loads are done: time for an edit, a deploy and a new run
    old = lab.launch({**params, "pause": max(lab.patience.seconds(3.0), 1.5 * lab.deploy_seconds)})

    def loaded() -> bool:
        assert lab.api.states([old]).get(old) not in FINAL_STATES, "the old run ended before the change landed"
        return len([t for t, _, _, _ in lab.bodies() if t == "load"]) == 3

    lab.patience.wait_for(loaded, "the old code's first stage done", nominal=120, alive=lab.workers.values())

    # The developer edits the checkout and deploys again (the docs' local-source workflow): same deployment name
    text = checkout.read_text()
    assert 'UNITS = "mV"' in text
    checkout.write_text(text.replace('UNITS = "mV"', 'UNITS = "volts"'))  # (a new size too: no stale .pyc)
    lab.deploy()
    v2 = load_measurements(checkout, "measurements_v2")
    new = lab.launch(params)
    assert lab.api.states([old])[old] == "RUNNING", "the old run must still be running when the new code runs"
    lab.wait_final([old, new], nominal=180)

    want_old, want_new = v1.expected(params["samples"], 1.5), v2.expected(params["samples"], 1.5)
    assert want_old["report"]["units"] == "mV" and want_new["report"]["units"] == "volts"
    assert lab.result(old) == want_old  # the old code was served only what the old code computes
    assert lab.result(new) == want_new  # and the new code only what the new code computes
    old_worker, new_worker = lab.ran_on(old), lab.ran_on(new)
    assert {old_worker, new_worker} == {"a", "b"}, "the new code ran on the other worker"
    counts = lab.body_counts()
    unchanged = {job: n for job, n in counts.items() if job[0] != "report"}
    assert len(unchanged) == 9 and set(unchanged.values()) == {1}, counts  # shared by both versions
    assert counts[("report", "c1+c2+c3@1.5")] == 2, counts  # computed by each version

    later = lab.launch(params)  # the new code again, on whichever worker: the new code's values
    lab.wait_final([later])
    assert lab.result(later) == want_new
    say(
        f"code change: old run on worker-{old_worker} (UNITS mV), the report's code changed and deployed while it "
        f"ran, new run on worker-{new_worker} (UNITS volts): each served its own code's values; the 9 unchanged jobs "
        f"computed once for both, the report once per version; a later run served the new report"
    )
