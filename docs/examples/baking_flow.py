"""The Baking workflow of scout-gear (tests/data/ruby-scout/workflows/baking.rb) as a Prefect flow.

Every task result lands as a Ruby Scout job under ``$SCOUT_PERSIST_URL/var/jobs/Baking/...`` (default: a temporary
folder when run as a script, so the demo never touches ``~/.scout``).  Run: ``python docs/examples/baking_flow.py``.
The first run bakes "Normal muffin" and "Blueberry muffin" and prints the job tree and the ``.info`` of the final
job; the second run finds every task cached.
"""

from __future__ import annotations

import json
import os

from prefect import flow

from prefect_scout import job_name, scout_task


def _note(task: str) -> None:
    """Append the task name to $BAKING_BODY_LOG when set: lets tests count the task bodies that really ran."""
    log = os.environ.get("BAKING_BODY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(task + "\n")


def pantry(item: str) -> str:
    """Ruby's ``Pantry.<item>.produce`` returns the resource path ``share/pantry/<item>``."""
    return f"share/pantry/{item}"


@scout_task(type="string")
def whisk_eggs() -> str:
    _note("whisk_eggs")
    return f"Whisking eggs from {pantry('eggs')}"


@scout_task(type="string")
def prepare_batter(whisked_eggs: str, add_bluberries: bool | None = None) -> str:
    _note("prepare_batter")
    batter = f"Mixing base ({whisked_eggs}) with mixer ({pantry('flour')})"
    if add_bluberries:
        batter = f"Mixing base ({batter}) with mixer ({pantry('blueberries')})"
    return batter


@scout_task(type="string")
def bake_muffin_tray(batter: str) -> str:
    _note("bake_muffin_tray")
    return f"Baking batter ({batter})"


@flow(name="Baking")
def baking(muffin: str = "Normal muffin", add_bluberries: bool | None = None) -> dict:
    """Bake one tray; returns the tray and the state name of every task run (``Cached`` on a hit)."""
    with job_name(muffin):
        eggs = whisk_eggs.submit()
        batter = prepare_batter.submit(eggs, add_bluberries)
        tray = bake_muffin_tray.submit(batter)
        result = tray.result()
    return {
        "tray": result,
        "states": {
            name: f.state.name
            for name, f in (("whisk_eggs", eggs), ("prepare_batter", batter), ("bake_muffin_tray", tray))
        },
    }


def job_tree(job, depth: int = 0) -> list[str]:
    """Indented lines ``status  path`` for a job and its dependencies."""
    lines = [f"{'  ' * depth}{job.status:5}  {job.path}"]
    for dep in job.dependencies:
        lines += job_tree(dep, depth + 1)
    return lines


def main() -> None:
    import tempfile

    from scout_persist import Job
    from scout_persist.store import Store

    if not os.environ.get("SCOUT_PERSIST_URL"):
        os.environ["SCOUT_PERSIST_URL"] = tempfile.mkdtemp(prefix="scout-baking-")
    root = Store().url
    print(f"store root: {root}")
    for run in (1, 2):
        for muffin, berries in (("Normal muffin", None), ("Blueberry muffin", True)):
            out = baking(muffin, berries)
            print(f"run {run} {muffin!r}: {out['tray']}")
            print(f"  task states: {out['states']}")
    key = "var/jobs/Baking/bake_muffin_tray"
    final = sorted(n for n in Store().ls(key) if n.startswith("Blueberry") and not n.endswith(".info"))[0]
    job = Job(f"{root}/{key}/{final}")
    print("job tree:")
    print("\n".join(job_tree(job)))
    print("info of the final job:")
    print(json.dumps(job.info, indent=1, ensure_ascii=False)[:3000])


if __name__ == "__main__":
    main()
