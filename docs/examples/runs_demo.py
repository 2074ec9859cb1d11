"""Run records, ``runs``, ``resume`` and ``reuse`` end to end, on a throw-away store.

Run: ``python docs/examples/runs_demo.py`` (needs only Python and the package: Prefect starts its own ephemeral API).
It runs a small flow, lists and shows its run, resumes it (every job reused), starts a second flow that reuses a
job of the first run, and prunes all but the newest run of each flow (dry run first).  Every line printed is
computed here.
"""

from __future__ import annotations

import os
import tempfile

from prefect import flow

from prefect_scout import reuse, scout_task


@scout_task(type="json")
def measure(n: int) -> list:
    print(f"  (measure ran for n={n})")
    return [i * i for i in range(n)]


@scout_task(type="integer")
def summarise(values: list, offset: int = 0) -> int:
    print("  (summarise ran)")
    return sum(values) + offset


@flow(name="Measurements")
def measurements(n: int = 6, offset: int = 1000) -> int:
    return summarise(measure(n), offset)


@flow(name="Report")
def report(source_run: str) -> int:
    values = reuse(run=source_run, task="measure")  # the job of that run, as a dependency of what it feeds
    return summarise(values, offset=1)


def cli(*argv: str) -> None:
    from scout_persist.cli import main

    print(f"$ scout-persist {' '.join(argv)}")
    main(list(argv))


def main() -> None:
    from scout_persist.runs import list_runs
    from scout_persist.store import Store

    os.environ.setdefault("SCOUT_PERSIST_URL", tempfile.mkdtemp(prefix="runs-demo-"))
    store = Store(os.environ["SCOUT_PERSIST_URL"])
    print(f"store: {store.url}")

    print("first run:", measurements(6))
    (first,) = list_runs(store)
    cli("runs")
    cli("runs", "show", first.run_id[:8])

    print("resume it: every job is reused, no body runs")
    cli("resume", first.run_id)

    print("a report that reuses the first run's 'measure' job:", report(first.run_id))
    cli("runs", "show", first.run_id[:8])

    print("keep the newest run of each flow: the first run's record goes, its jobs stay (the resumed run has them)")
    cli("runs", "prune", "--keep-last", "1", "--dry-run")
    cli("runs", "prune", "--keep-last", "1")
    cli("runs")


if __name__ == "__main__":
    main()
