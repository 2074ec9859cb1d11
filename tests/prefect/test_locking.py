"""Exactly-once under SERIALIZABLE isolation with the Scout lock manager; stale locks are recovered."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_scout import ScoutLockManager, plans, scout_task
from scout_persist.layout import lock_key_for
from scout_persist.lease import LockFileLease
from scout_persist.store import Store


def note(name: str) -> None:
    with open(os.environ["BODY_LOG"], "a") as fh:
        fh.write(name + "\n")


@scout_task(type="integer")
def slow_square(n: int = 3) -> int:
    note(f"slow_square {n}")
    time.sleep(0.3)
    return n * n


@flow(name="Locks", task_runner=ThreadPoolTaskRunner(max_workers=4))
def contended(n: int = 3, copies: int = 6):
    futures = [slow_square.submit(n) for _ in range(copies)]
    return [f.result() for f in futures], [f.state.name for f in futures]


def test_threads_compute_each_job_once(scout_root, tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv("BODY_LOG", str(log))
    values, states = contended(4, 6)
    assert values == [16] * 6
    assert log.read_text().splitlines() == ["slow_square 4"]
    assert sorted(states) == ["Cached"] * 5 + ["Completed"]
    assert not list((scout_root / "tmp" / "persist_locks").glob("*.lock"))  # every lock released


def test_concurrent_flow_runs_in_threads(scout_root, tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv("BODY_LOG", str(log))
    results = []
    threads = [threading.Thread(target=lambda: results.append(contended(5, 2)[0])) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [[25, 25]] * 3
    assert log.read_text().splitlines() == ["slow_square 5"]


def test_lock_manager_protocol_and_dead_holder(scout_root):
    manager = ScoutLockManager(lease=5.0, refresh=1.0)
    key = "Locks/slow_square/Default"
    assert manager.acquire_lock(key, "me", acquire_timeout=1)
    assert manager.is_locked(key) and manager.is_lock_holder(key, "me")
    assert not manager.is_lock_holder(key, "other")
    assert not manager.acquire_lock(key, "other", acquire_timeout=0.2)
    manager.release_lock(key, "other")  # not the holder: nothing happens
    assert manager.is_locked(key)
    manager.release_lock(key, "me")
    assert not manager.is_locked(key) and manager.wait_for_lock(key, timeout=0.1)

    # a lock left by a killed process on this host is broken at once, not after the lease
    store = Store(str(scout_root))
    lock_key = lock_key_for(store.path("var/jobs/" + key))
    code = (
        "import os, sys; from scout_persist.locks import Lock; from scout_persist.store import Store;"
        f"l = Lock(Store({str(scout_root)!r}), {lock_key!r}, lease=60.0, refresh=1.0); assert l.acquire(1);"
        "print('held', flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "held" and store.exists(lock_key)
    t0 = time.monotonic()
    assert manager.acquire_lock(key, "me", acquire_timeout=10)
    assert time.monotonic() - t0 < 5
    manager.release_lock(key, "me")


class _Run:
    """A planned run's attempt as the lock manager sees it: with a lease (a miss) or a pass (``lease=None``)."""

    def __init__(self, lease: LockFileLease | None) -> None:
        self.plan = SimpleNamespace(url=None)
        self.lease, self.held = lease, False

    def acquire(self, lease: float, refresh: float, timeout: float | None) -> bool:
        self.held = self.lease.acquire(timeout=timeout) if self.lease else True  # a pass goes on (Attempt.held)
        return self.held

    def release(self) -> None:
        if self.lease and self.held:
            self.lease.release()
        self.held = False


def test_a_pass_granted_while_the_first_run_holds_the_lease_does_not_leak_that_lease(scout_root, monkeypatch):
    """Two task runs of one job in one process (a thread runner): the first holds the lease and commits, the second
    is granted a pass before the first lets go. The first one's release must release its lease: before, the pass
    took its place in the manager's table, the release found a stranger and did nothing, and the leaked lease, kept
    fresh by this live process, made every later run of the job wait for ever."""
    key = "Locks/slow_square/Default"
    store = Store(str(scout_root))
    lease = LockFileLease(store, "var/jobs/" + key, lease=5.0, refresh=1.0)
    manager = ScoutLockManager(lease=5.0, refresh=1.0)
    first, second = _Run(lease), _Run(None)
    monkeypatch.setattr(plans, "current", lambda key=None: first)
    assert manager.acquire_lock(key, "host:1:thread-a")
    monkeypatch.setattr(plans, "current", lambda key=None: second)
    assert manager.acquire_lock(key, "host:1:thread-b")  # a pass: the job is done by now
    assert manager.is_lock_holder(key, "host:1:thread-a") and manager.is_lock_holder(key, "host:1:thread-b")
    manager.release_lock(key, "host:1:thread-a")
    assert not first.held and not store.exists(lock_key_for(store.path("var/jobs/" + key)))
    assert manager.is_locked(key)  # the pass of thread-b is still in the table
    manager.release_lock(key, "host:1:thread-b")
    monkeypatch.setattr(plans, "current", lambda key=None: None)
    assert not manager.is_locked(key)
    assert manager.acquire_lock(key, "host:1:thread-c", acquire_timeout=1)  # the job's lease is free
    manager.release_lock(key, "host:1:thread-c")
