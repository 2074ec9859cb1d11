"""A job lock won from a Ruby holder: its late ``.info`` write is waited for, its result stands as Ruby's rule has it.

The Ruby holder is played by tests/ruby_like_holder.py (Ruby's ``.info`` sequence and lock protocol, a real process),
so this runs without Ruby; tests/interop/test_ruby_race.py races the real Ruby Scout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from scout_persist import handover
from scout_persist.handover import marked_done_by_another, ruby_run_in_progress, settle_handover
from scout_persist.info import InfoFile
from scout_persist.lease import LockFileLease
from scout_persist.store import Store

KEY = "var/jobs/Race/work/j1"
HOLDER = Path(__file__).with_name("ruby_like_holder.py")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


def race(store: Store, mode: str, late: float = 0.6, stay: float = 30.0, grace: float = handover.GRACE) -> Any:
    """The Ruby-like holder runs the job; a LockFileLease waits for its lock and settles what it owes once won."""
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), store.url, KEY, mode, str(late), str(stay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "running"
        lease = LockFileLease(store, KEY)
        got: dict[str, Any] = {}

        def wait_and_settle() -> None:
            assert lease.acquire(timeout=30)
            got["info_at_win"] = json.loads(store.get(KEY + ".info"))
            got["handover"] = settle_handover(lease, grace=grace)
            got["info"] = json.loads(store.get(KEY + ".info"))
            lease.release()

        waiter = threading.Thread(target=wait_and_settle)
        waiter.start()
        holder.stdin.write("\n")
        holder.stdin.flush()
        waiter.join(60)
        assert not waiter.is_alive()
        got["holder"] = holder.pid
        return got
    finally:
        holder.kill()
        holder.wait()


def test_a_finishing_ruby_holder_s_late_done_is_waited_for(store):
    got = race(store, "done")
    assert got["info_at_win"]["status"] == "start"  # won inside Ruby's gap: `start` next to a complete result
    assert got["handover"].outcome == handover.DONE
    assert got["info"]["status"] == "done" and got["info"]["pid"] == got["holder"]  # Ruby's own .info, untouched
    assert store.get(KEY) == b"v:ruby"


def test_a_ruby_holder_that_never_writes_done_has_its_result_accepted_as_ruby_does(store):
    got = race(store, "silent", grace=0.3)
    assert got["handover"].outcome == handover.ACCEPTED
    info = got["info"]
    assert info["status"] == "done" and info["pid"] == got["holder"] and "end" in info and "lease" not in info
    assert list(info)[-1] == "end" and store.get(KEY) == b"v:ruby"


def test_a_failed_ruby_holder_s_late_error_is_waited_for_then_the_job_is_recomputed(store):
    got = race(store, "error")
    assert got["handover"].outcome == handover.SETTLED
    assert got["info"]["status"] == "error" and not store.exists(KEY)


def test_a_ruby_holder_gone_without_its_late_write_leaves_a_job_to_recompute(store):
    got = race(store, "exit", late=0.0)
    assert got["handover"].outcome == handover.GONE
    assert got["info"]["status"] == "start"  # nothing written for it: the winner's own run replaces it


def test_a_ruby_holder_killed_holding_the_lock_leaves_a_job_to_recompute(store):
    holder = subprocess.Popen(
        [sys.executable, str(HOLDER), store.url, KEY, "done", "0", "30"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "running"
    store.put(KEY, b"v:half")  # e.g. a binary result Ruby writes in place, cut short
    holder.kill()
    holder.wait()
    lease = LockFileLease(store, KEY)
    assert lease.acquire(timeout=30)
    assert lease.broken is not None and lease.broken["pid"] == str(holder.pid)
    assert settle_handover(lease).outcome == handover.GONE
    lease.release()


def test_nothing_is_owed_by_a_python_holder_or_a_settled_job(store):
    info = InfoFile(store, KEY)
    info.setup(task_name="work", workflow="Race")
    info.start(lease={"token": "t", "fence": 1, "pid": 1})  # the plug-in's start: done/error come under its lock
    lease = LockFileLease(store, KEY)
    assert lease.acquire(timeout=0)
    assert settle_handover(lease, grace=60).outcome == handover.SETTLED  # returns at once, no wait
    InfoFile(store, KEY).done()
    assert settle_handover(lease, grace=60).outcome == handover.SETTLED
    lease.release()


def test_what_counts_as_a_ruby_run_in_progress():
    assert ruby_run_in_progress({"status": "start", "pid": 5})
    assert ruby_run_in_progress({"status": "setup"})
    assert not ruby_run_in_progress({"status": "start", "lease": {"token": "t"}})
    assert not ruby_run_in_progress({"status": "done"})
    assert not ruby_run_in_progress(None)


def test_a_python_start_that_another_process_marked_done_is_not_a_finished_job():
    started = {"status": "done", "lease": {"token": "t", "fence": 1}, "end": "2026-01-01 00:00:00 +0000"}
    assert "marked 'done'" in (marked_done_by_another(started) or "")
    finished = dict(started, payload={"format": "scout", "type": "string", "checksum": "sha256:aa"})
    assert marked_done_by_another(finished) is None
    assert marked_done_by_another({"status": "done", "pid": 3}) is None  # Ruby's own job


def test_a_ruby_writer_whose_pid_now_belongs_to_a_newer_process_is_gone(store):
    import os

    from scout_persist.info import hostname

    info = InfoFile(store, KEY)  # issued long before the process that now has its pid (this one) started
    info.setup(
        task_name="work", workflow="Race", pid=os.getpid(), pid_hostname=hostname(), issued="2000-01-01 00:00:00 +0000"
    )
    info.start()
    lease = LockFileLease(store, KEY)
    assert lease.acquire(timeout=0)
    assert settle_handover(lease, grace=60).outcome == handover.GONE  # at once: no 60 s wait
    lease.release()
