"""job_liveness: a running job whose writer is gone (dead pid here, absent or stale lock elsewhere) is dead."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from scout_persist.info import hostname, ruby_time
from scout_persist.layout import lock_key_for
from scout_persist.liveness import job_liveness
from scout_persist.locks import Lock, ruby_lock_time
from scout_persist.store import Store

KEY = "var/jobs/W/task/Default"


def finished_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def running_info(pid: int, host: str, issued: str | None = None, status: str = "start") -> dict:
    return {
        "status": status,
        "issued": issued or ruby_time(),
        "pid": pid,
        "pid_hostname": host,
        "task_name": "task",
        "workflow": "W",
    }


def lock_entry(host: str, pid: int, expires: float | None) -> bytes:
    lines = [f"host: {host}", f"pid: {pid}", "ppid: 1", f"time: {ruby_lock_time()}"]
    if expires is not None:
        lines += ["lease: 30.0", f"expires: {expires:.6f}", "token: abc"]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path))


def test_settled_statuses_are_not_judged(store):
    for status in ("done", "error", "aborted", "forced_status", "waiting", ""):
        live = job_liveness(store, KEY, {"status": status, "pid": finished_pid(), "pid_hostname": hostname()})
        assert live.state == "settled" and not live.dead
    assert job_liveness(store, KEY, None).state == "settled"


def test_same_host_dead_pid_is_dead(store):
    pid = finished_pid()
    for status in ("setup", "start", "dependencies"):
        live = job_liveness(store, KEY, running_info(pid, hostname(), status=status))
        assert live.dead and live.reason.startswith(f"its pid {pid} is not running on this host ({hostname()})")


def test_same_host_live_pid_is_alive_even_without_a_lock(store):
    live = job_liveness(store, KEY, running_info(os.getpid(), hostname()))
    assert live.state == "alive" and str(os.getpid()) in live.reason
    # holding the job lock ourselves does not change what the pid says
    assert not job_liveness(store, KEY, running_info(os.getpid(), hostname()), holding_lock=True).dead


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times come from /proc")
def test_same_host_reused_pid_is_dead(store):
    # our pid, but the job was issued long before this process started: the pid was reused
    live = job_liveness(store, KEY, running_info(os.getpid(), hostname(), issued="2020-01-01 00:00:00 +0000"))
    assert live.dead and "reused" in live.reason


def test_other_host_without_lock_is_dead(store):
    live = job_liveness(store, KEY, running_info(4242, "elsewhere"))
    assert live.dead
    assert live.reason == "its job lock is absent (a running writer holds it); written by pid 4242 on host elsewhere"


def test_other_host_with_a_held_lock_is_alive(store):
    with Lock(store, lock_key_for(store.path(KEY))):
        live = job_liveness(store, KEY, running_info(4242, "elsewhere"))
    assert live.state == "alive" and f"pid {os.getpid()}" in live.reason
    assert job_liveness(store, KEY, running_info(4242, "elsewhere")).dead  # released


def test_other_host_lock_fresh_or_stale(store):
    """A lock of another host counts while renewed within its lease by the file system's own clock (no host's wall
    clock, no `expires` stamp is trusted)."""
    lock_key = lock_key_for(store.path(KEY))
    store.put(lock_key, lock_entry("elsewhere", 77, time.time() - 5))  # an `expires` in the past means nothing
    assert job_liveness(store, KEY, running_info(77, "elsewhere")).state == "alive"
    old = time.time() - 120
    os.utime(store.path(lock_key), (old, old))
    live = job_liveness(store, KEY, running_info(77, "elsewhere"))
    assert live.dead and live.reason.startswith("its job lock is stale: it was last renewed")
    # a Ruby lock (no lease line) is stale when not refreshed for 30 s
    store.put(lock_key, lock_entry("elsewhere", 77, None))
    assert job_liveness(store, KEY, running_info(77, "elsewhere")).state == "alive"
    os.utime(store.path(lock_key), (old, old))
    assert job_liveness(store, KEY, running_info(77, "elsewhere")).dead
    # a lock on this host whose pid is dead
    store.put(lock_key, lock_entry(hostname(), finished_pid(), time.time() + 20))
    assert job_liveness(store, KEY, running_info(77, "elsewhere")).dead


def test_holding_the_lock_ourselves_means_no_other_writer(store):
    live = job_liveness(store, KEY, running_info(4242, "elsewhere"), holding_lock=True)
    assert live.dead and live.reason.startswith("nobody else holds its job lock")


def test_no_pid_recorded_falls_back_to_the_lock(store):
    info = {"status": "start"}
    assert job_liveness(store, KEY, info).dead
    with Lock(store, lock_key_for(store.path(KEY))):
        assert job_liveness(store, KEY, info).state == "alive"


@pytest.mark.s3
def test_object_store_job_judged_by_its_info_lease(s3_url):
    """On object stores the job's .info is its lease: alive while rewritten within a lease (the store's clock)."""
    from scout_persist.info import dumps_info

    store = Store(s3_url)
    info = running_info(4242, "another-host")
    info["lease"] = {"host": "another-host", "pid": 4242, "seconds": 1.0}
    store.put(KEY + ".info", dumps_info(info))
    live = job_liveness(store, KEY, info)
    assert live.state == "alive" and "another-host" in live.reason
    time.sleep(2.2)  # S3's Last-Modified has second resolution
    live = job_liveness(store, KEY, info)
    assert live.dead and "not renewed" in live.reason
