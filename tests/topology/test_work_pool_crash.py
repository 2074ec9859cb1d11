"""A worker of the work pool (the ``lab`` fixture, tests/topology/conftest.py) killed mid-run is found crashed from a
third process and resumed by an operator without recomputing a finished job."""

from __future__ import annotations

import json

import pytest

from topology import SOAK
from workpool import expected_jobs, job_of, load_measurements, taken_over

pytestmark = pytest.mark.timeout(1800)


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
