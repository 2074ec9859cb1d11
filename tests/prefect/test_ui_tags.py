"""Each scout task run carries its job as a tag, ``scout:<Workflow>/<task>/<name>``, in the Prefect API (and UI).

The tag rides on the state events the engine emits anyway (no API call of ours), so it is read back from the API
as the UI reads it: for a computed run and for a cached one, next to the task's own tags.
"""

from __future__ import annotations

import time

from prefect import flow

from prefect_scout import job_name, scout_task


@scout_task(type="string", tags=["kitchen"])
def whisk(kind: str = "eggs") -> str:
    return f"whisked {kind}"


@flow(name="Baking")
def baking(kind: str = "eggs") -> str:
    with job_name("Blueberry muffin"):
        return whisk.submit(kind).result()


def task_runs_of(flow_run_id, wait: float = 30.0):
    """The flow run's task runs once the API has recorded their final states (it ingests events asynchronously)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if runs and all(r.state_type is not None and r.state_type.value == "COMPLETED" for r in runs):
                return runs
            assert time.monotonic() < deadline, [(r.name, r.state_name) for r in runs]
            time.sleep(0.2)


def test_task_runs_show_their_job_in_prefect(scout_root):
    for expected_state, kind in (("Completed", "eggs"), ("Cached", "eggs"), ("Completed", "ducks")):
        state = baking(kind, return_state=True)
        (run,) = task_runs_of(state.state_details.flow_run_id)
        assert run.state_name == expected_state
        job = (
            "Baking/whisk/Blueberry muffin"
            if kind == "eggs"
            else next(t for t in run.tags if t.startswith("scout:")).removeprefix("scout:")
        )
        assert run.tags == ["kitchen", f"scout:{job}"], run.tags
        assert (scout_root / "var/jobs" / job).exists()  # the tag names the job's file under the root
    assert job.startswith("Baking/whisk/Blueberry muffin_")  # a non-default input hashes the name
