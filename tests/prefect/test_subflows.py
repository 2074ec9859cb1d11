"""Subflows: a scout task belongs to the workflow of the flow that calls it — the subflow's — unless it names one.

docs/prefect.md ("Subflows") documents both; these tests run them as real nested flows.
"""

from __future__ import annotations

from prefect import flow

from prefect_scout import scout_task

RAN: list[str] = []


@scout_task(type="string")
def whisk(kind: str = "eggs") -> str:
    RAN.append("whisk")
    return f"whisked {kind}"


@scout_task(type="string", workflow="Pantry")
def shared_whisk(kind: str = "eggs") -> str:
    RAN.append("shared_whisk")
    return f"whisked {kind}"


@scout_task(type="string")
def batter(eggs: str) -> str:
    RAN.append("batter")
    return f"batter of {eggs}"


@flow(name="Baking")
def baking() -> str:
    return whisk()


@flow(name="Kitchen")
def kitchen() -> tuple[str, str]:
    return whisk(), baking()


@flow(name="Baking")
def baking_shared() -> str:
    return shared_whisk()


@flow(name="Kitchen")
def kitchen_shared() -> tuple[str, str]:
    return shared_whisk(), baking_shared()


@flow(name="Baking")
def baking_from(eggs: str) -> str:
    return batter(eggs)


@flow(name="Kitchen")
def kitchen_passes() -> str:
    return baking_from(whisk())


def jobs(root) -> list[str]:
    return sorted(
        str(p.relative_to(root / "var/jobs"))
        for p in (root / "var/jobs").rglob("*")
        if p.is_file() and not p.name.endswith(".info")
    )


def test_a_task_in_a_subflow_belongs_to_the_subflow_workflow(scout_root):
    RAN.clear()
    assert kitchen() == ("whisked eggs", "whisked eggs")
    assert jobs(scout_root) == ["Baking/whisk/Default", "Kitchen/whisk/Default"]
    assert RAN == ["whisk", "whisk"]  # two workflows, two jobs: not reused across them
    RAN.clear()
    kitchen()
    assert RAN == []  # each job is reused by its own workflow on the next run


def test_workflow_argument_shares_one_job_across_flows(scout_root):
    RAN.clear()
    assert kitchen_shared() == ("whisked eggs", "whisked eggs")
    assert jobs(scout_root) == ["Pantry/shared_whisk/Default"]
    assert RAN == ["shared_whisk"]  # the subflow's call is a cache hit on the parent's job


def test_a_value_passed_into_a_subflow_is_an_input_there(scout_root):
    """A subflow receives values, not task runs: a scout result passed in as a parameter is hashed as an input of
    the subflow's tasks (a provided one: it is the subflow's parameter), not recorded as a dependency."""
    import json

    RAN.clear()
    assert kitchen_passes() == "batter of whisked eggs"
    (name,) = [j for j in jobs(scout_root) if j.startswith("Baking/batter/")]
    info = json.loads((scout_root / "var/jobs" / f"{name}.info").read_text())
    assert info["dependencies"] == [] and info["inputs"] == ["whisked eggs"]
    assert name.startswith("Baking/batter/Default_")
