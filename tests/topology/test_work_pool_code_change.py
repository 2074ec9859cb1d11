"""A code change deployed while a worker of the work pool (the ``lab`` fixture, tests/topology/conftest.py) still runs
the old code serves neither run a wrong value."""

from __future__ import annotations

import pytest

from workpool import FINAL as FINAL_STATES, load_measurements

pytestmark = pytest.mark.timeout(1800)


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
