"""Ruby Scout and the plug-in on one tree, without Ruby: Ruby's side is played by tests/ruby_like_holder.py (Ruby's
lock protocol and ``.info`` sequence in a real process) and by rewriting ``.info`` as Ruby's processes do.

* a scout task that waited on a Ruby holder's lock and won it inside Ruby's gap (result saved, lock released,
  ``done`` not yet written) reuses the result: its body does not run;
* a job the plug-in finished and a Ruby waiter rewrote (key order, ``end``, ``time_elapsed``) is still reused;
* a dependent of a Ruby-written job is reused when Ruby only rewrites that job's timing fields, and recomputed
  when its result bytes change.

tests/interop/test_ruby_race.py runs the same races against the real Ruby Scout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_scout import JobName, scout_task
from scout_persist.info import InfoFile
from scout_persist.store import Store

HOLDER = Path(__file__).resolve().parents[1] / "ruby_like_holder.py"


def _note(task: str, ident: str | None) -> None:
    with open(os.environ["HANDOVER_LOG"], "a", encoding="utf-8") as fh:
        fh.write(f"{task} {ident}\n")


@scout_task(workflow="Race", type="string")
def work(id: JobName = None) -> str:
    _note("work", id)
    return f"v:{id}"


@scout_task(workflow="Race", type="string")
def top(work: str, id: JobName = None) -> str:
    _note("top", id)
    return "top:" + work


@flow(name="Race", task_runner=ThreadPoolTaskRunner(max_workers=4), persist_result=False)
def run_work(ident: str) -> str:
    return work.submit(id=ident).result()


@flow(name="Race", task_runner=ThreadPoolTaskRunner(max_workers=4), persist_result=False)
def run_top(ident: str) -> str:
    return top.submit(work.submit(id=ident), id=ident).result()


def bodies(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_task_that_wins_the_lock_in_rubys_gap_reuses_rubys_result(scout_root, tmp_path, monkeypatch):
    log = tmp_path / "bodies.log"
    monkeypatch.setenv("HANDOVER_LOG", str(log))
    key = "var/jobs/Race/work/j1"
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), str(scout_root), key, "done", "1.0", "30"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "running"

        @flow(name="Race", task_runner=ThreadPoolTaskRunner(max_workers=4), persist_result=False)
        def race() -> str:
            future = work.submit(id="j1")  # waits on the holder's lock
            time.sleep(1.0)
            holder.stdin.write("\n")  # the holder saves its result, releases the lock, writes `done` 1 s later
            holder.stdin.flush()
            return future.result()

        assert race() == "v:ruby"
        assert bodies(log) == []  # never recomputed
        info = json.loads((scout_root / (key + ".info")).read_text())
        assert (info["status"], info["pid"]) == ("done", holder.pid)  # the holder's own `done`, on its own .info
    finally:
        holder.kill()
        holder.wait()


def test_a_job_we_finished_and_a_ruby_waiter_rewrote_is_reused(scout_root, tmp_path, monkeypatch):
    log = tmp_path / "bodies.log"
    monkeypatch.setenv("HANDOVER_LOG", str(log))
    assert run_work("j2") == "v:j2"
    info_key = "var/jobs/Race/work/j2.info"
    before = json.loads((scout_root / info_key).read_text())
    time.sleep(1.1)
    InfoFile(Store(str(scout_root)), info_key).done()  # a Ruby process that only waited: merge_info status done, end
    after = json.loads((scout_root / info_key).read_text())
    assert after["end"] != before["end"] and list(after) != list(before)  # timing and key order rewritten
    assert run_work("j2") == "v:j2"
    assert bodies(log) == ["work j2"]


def test_a_dependent_of_a_ruby_job_survives_a_timing_rewrite_not_a_new_result(scout_root, tmp_path, monkeypatch):
    log = tmp_path / "bodies.log"
    monkeypatch.setenv("HANDOVER_LOG", str(log))
    store = Store(str(scout_root))
    key = "var/jobs/Race/work/j3"
    ruby = subprocess.Popen(  # Ruby's own job: its .info has no checksum
        [sys.executable, str(HOLDER), str(scout_root), key, "done", "0", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ruby.communicate("\n", timeout=60)
    assert store.get(key) == b"v:ruby"
    assert run_top("j3") == "top:v:ruby"
    assert bodies(log) == ["top j3"]

    time.sleep(1.1)
    InfoFile(store, key + ".info").done()  # a second Ruby process that only waited rewrites end, time_elapsed
    assert run_top("j3") == "top:v:ruby"
    assert bodies(log) == ["top j3"]  # reused

    store.put(key, b"v:other")  # Ruby reran it and wrote other bytes
    assert run_top("j3") == "top:v:other"
    assert bodies(log) == ["top j3", "top j3"]
    why = json.loads((scout_root / "var/jobs/Race/top/j3.info").read_text())["prefect"]["recomputed_because"]
    assert f"dependency {key}" in why  # (and the input it received: an argument is digested by its value too)
