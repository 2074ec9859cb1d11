"""kill -9 at random points during job writes: a reader never sees a torn or wrong result.

Invariant checked while the writer runs and after every kill: each ``.info`` that exists parses strictly
(no torn sidecar), and each job whose status is ``done`` loads exactly the value its index defines.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crash_writer import JOB_TASK, expected, job_key
from scout_persist.errors import ScoutPersistError
from scout_persist.job import Job
from scout_persist.store import Store

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

HERE = Path(__file__).parent
SOAK = bool(os.environ.get("SCOUT_PERSIST_SOAK"))
MIN_WRITES = 2000 if SOAK else 100  # make test: a sample (the crash-state test enumerates every state)
JOBS = 24
MIN_KILLS = 200 if SOAK else 12


def violations_in(store: Store) -> list[str]:
    found = []
    for i in range(JOBS):
        key = job_key(i)
        try:
            raw = store.get(key + ".info")
        except FileNotFoundError:
            continue
        if not raw.strip():  # atomic writes never expose an empty (truncated, not yet written) sidecar
            found.append(f"job{i}: empty .info")
            continue
        job = Job.at(store, key)
        try:
            info = job.read_info(strict=True)  # one snapshot: load() below uses this info
        except ScoutPersistError as exc:
            found.append(f"job{i}: torn .info: {exc}")
            continue
        if info.get("status") != "done":
            continue
        try:
            value = job.load()
        except ScoutPersistError as exc:
            found.append(f"job{i}: done but unreadable: {exc}")
            continue
        if value != expected(i):
            found.append(f"job{i}: done but loads a wrong value")
    return found


def hammer(
    url: str,
    seed: int,
    pause: float = 0.0,
    max_delay: float = 0.4,
    min_kills: int = MIN_KILLS,
    min_writes: int = MIN_WRITES,
) -> tuple[int, int, list[str]]:
    """Kill the writer at random points until ``min_writes`` writes completed; return (writes, kills, violations)."""
    rng = random.Random(seed)
    store = Store(url)
    seen: list[str] = []
    stop = threading.Event()

    def reader():
        while not stop.wait(pause):
            seen.extend(violations_in(store))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    writes = kills = 0
    # a safety net only: a busy machine makes the sample slower, never smaller
    deadline = time.monotonic() + (1800 if SOAK else 270)  # under the 300 s test timeout
    try:
        while (writes < min_writes or kills < min_kills) and time.monotonic() < deadline:
            first = rng.randrange(0, JOBS - 8)
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "crash_writer.py"), url, str(first), "8"],
                stdout=subprocess.PIPE,
                text=True,
            )
            proc.stdout.readline()  # imports done, one write completed
            writes += 1
            time.sleep(rng.uniform(0.0, max_delay))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
            writes += len(out.split())
            kills += 1
            seen.extend(violations_in(store))
    finally:
        stop.set()
        thread.join()
    return writes, kills, seen


def test_kill9_during_local_writes(tmp_path):
    writes, kills, violations = hammer(str(tmp_path / "root"), seed=1)
    assert writes >= MIN_WRITES, f"only {writes} writes in the time box"
    assert kills >= MIN_KILLS
    assert violations == []
    leftovers = [p for p in (tmp_path / "root").rglob("*") if p.is_file() and ".tmp" in p.name]
    assert len(leftovers) <= kills, f"temporary files pile up: {leftovers[:5]}"
    done = [i for i in range(JOBS) if Job.at(Store(str(tmp_path / "root")), job_key(i)).status == "done"]
    assert done, "no job ever finished: the test exercised nothing"


@pytest.mark.s3
def test_kill9_during_s3_writes(s3_url):
    # Each S3 writer needs ~2 s to import s3fs: longer runs between kills, fewer kills.
    writes, kills, violations = hammer(
        s3_url, seed=2, pause=0.5, max_delay=2.0, min_kills=MIN_KILLS // 2, min_writes=MIN_WRITES // 4
    )
    assert writes >= MIN_WRITES // 4, f"only {writes} writes in the time box"
    assert kills >= MIN_KILLS // 2
    assert violations == []
    store = Store(s3_url)
    assert any(Job.at(store, job_key(i)).status == "done" for i in range(JOBS))
    assert all(k.startswith(JOB_TASK) for k in store.list("var"))


PERSIST_ENTRIES = 6


def test_kill9_during_persist_writes(tmp_path):
    """persist() entries have no sidecar: the file is its own commit point, so it must never be torn."""
    from crash_persister import expected_text
    from scout_persist.persist_cache import locate

    url = str(tmp_path / "root")
    store = Store(url)
    texts = [expected_text(i).encode() for i in range(PERSIST_ENTRIES)]
    rng = random.Random(3)
    kills, torn = 0, []
    while kills < (100 if SOAK else 12):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "crash_persister.py"), url, str(PERSIST_ENTRIES)],
            stdout=subprocess.PIPE,
            text=True,
        )
        proc.stdout.readline()
        time.sleep(rng.uniform(0.05, 0.5))
        proc.kill()
        proc.wait()
        kills += 1
        for i in range(PERSIST_ENTRIES):
            loc = locate(f"soak_{i}", store=store)
            if loc.store.exists(loc.key) and loc.store.get(loc.key) != texts[i]:
                torn.append(f"soak_{i} after kill {kills}")
    assert torn == []
    assert all(locate(f"soak_{i}", store=store).store.exists(locate(f"soak_{i}", store=store).key) for i in range(2)), (
        "the writer never completed an entry: the test exercised nothing"
    )
