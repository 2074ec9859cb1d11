"""Fencing of job writes (#12): a holder stopped past its lease has its commit refused; the newer holder's job stands
and is what readers get.  Locally the lease is Ruby's lock file, on S3 the job's .info itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from faulty_proxy import FaultyProxy
from scout_persist import presence
from scout_persist.attempt import Attempt, JobSetup
from scout_persist.errors import LeaseLost
from scout_persist.job import Job, JobWriter
from scout_persist.lease import InfoLease, LockFileLease, job_lease
from scout_persist.locks import FRESH
from scout_persist.store import Store

PY = sys.executable
KEY = "var/jobs/Fence/work/Default"

SLOW_WRITER = """
    import sys
    from scout_persist.store import Store
    from scout_persist.job import JobWriter
    from scout_persist.lease import job_lease
    from scout_persist.errors import LeaseLost
    url, key, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = Store(url)
    lease = job_lease(store, key, lease=lease_s, refresh=0.2)
    if hasattr(lease, "acquire"):
        assert lease.acquire(timeout=30)
    else:
        lease.observe()
    w = JobWriter(store, key, type="json", lease=lease)
    w.begin()
    print("started", flush=True)
    input()  # stopped while "computing"; continues when the test writes a line
    try:
        w.save({"by": "first"})
        w.done()
        print("committed", flush=True)
    except LeaseLost as exc:
        w.error(exc)
        print("refused:", exc, flush=True)
    lease.release()
"""


def _take_over(store: Store, value: dict, lease_s: float) -> JobWriter:
    lease = job_lease(store, KEY, lease=lease_s, refresh=0.2)
    deadline = time.monotonic() + 30
    if isinstance(lease, LockFileLease):
        assert lease.acquire(timeout=30)
    else:
        while True:
            info = lease.observe()
            if lease.busy_reason(info) is None:
                break
            assert time.monotonic() < deadline, "the stopped holder's lease never ended"
            time.sleep(0.1)
    w = JobWriter(store, KEY, type="json", lease=lease)
    w.begin()
    w.save(value)
    w.done()
    lease.release()
    return w


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_holder_stopped_past_its_lease_cannot_commit_over_the_new_holder(where, tmp_path, request):
    url = str(tmp_path / "root") if where == "local" else request.getfixturevalue("s3_url")
    store = Store(url)
    first = subprocess.Popen(
        [PY, "-c", textwrap.dedent(SLOW_WRITER), url, KEY, "1.0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout.readline().strip() == "started"
    first.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        _take_over(store, {"by": "second"}, 1.0)
        assert time.monotonic() - t0 >= 0.9  # it waited for the stopped holder's lease to end
    finally:
        first.send_signal(signal.SIGCONT)
    first.stdin.write("go\n")
    first.stdin.flush()
    line = first.stdout.readline()
    assert line.startswith("refused:") and "taken over" in line, line
    assert first.wait(timeout=30) == 0
    job = Job.at(store, KEY)
    assert job.status == "done" and job.load() == {"by": "second"}
    info = json.loads(store.get(KEY + ".info"))
    assert info["lease"]["fence"] == 2  # the first acquisition was fence 1


SLOW_ATTEMPT = """
    import sys
    from scout_persist.attempt import Attempt, JobSetup
    from scout_persist.errors import LeaseLost
    from scout_persist.store import Store
    url, key, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    attempt = Attempt(Store(url), key, setup=JobSetup("Fence", "work", "json"))
    assert attempt.acquire(lease=lease_s, refresh=0.2, timeout=30)  # new to the store: the create is the lookup
    print("started", flush=True)
    input()  # stopped while "computing"; continues when the test writes a line
    try:
        attempt.commit({"by": "first"})
        print("committed", flush=True)
    except LeaseLost as exc:
        print("refused:", exc, flush=True)
    attempt.release()
"""


@pytest.mark.s3
def test_an_attempt_whose_create_was_the_lookup_is_fenced_after_a_takeover(s3_url, s3_endpoint):
    """The plug-in's path on S3: both holders acquire through an attempt that creates ``start`` before reading
    anything (new to the store); the second is refused, reads the stopped holder's ``start`` back, waits out its
    lease and takes the job over; the first, resumed, cannot commit over it."""
    first = subprocess.Popen(
        [PY, "-c", textwrap.dedent(SLOW_ATTEMPT), s3_url, KEY, "1.0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout.readline().strip() == "started"
    first.send_signal(signal.SIGSTOP)
    proxy = FaultyProxy(s3_endpoint).start()
    try:
        presence.forget_all()
        store = Store(s3_url, endpoint_url=proxy.url)
        second = Attempt(store, KEY, setup=JobSetup("Fence", "work", "json"))
        t0 = time.monotonic()
        assert second.acquire(lease=1.0, refresh=0.2, timeout=30)
        assert time.monotonic() - t0 >= 0.9  # it waited for the stopped holder's lease to end
        assert proxy.answered()[0].startswith("412 PUT ") and proxy.log[1].startswith("GET ")
        assert second.commit({"by": "second"}) == {"by": "second"}
        second.release()
    finally:
        first.send_signal(signal.SIGCONT)
        proxy.stop()
    first.stdin.write("go\n")
    first.stdin.flush()
    line = first.stdout.readline()
    assert line.startswith("refused:") and "taken over" in line, line
    assert first.wait(timeout=30) == 0
    job = Job.at(Store(s3_url), KEY)
    assert job.status == "done" and job.load() == {"by": "second"}
    assert json.loads(Store(s3_url).get(KEY + ".info"))["lease"]["fence"] == 2


@pytest.mark.s3
@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
@pytest.mark.parametrize("which", ["acquisition", "result", "done"])
def test_ambiguous_replies_on_job_writes_commit_once(s3_url, s3_endpoint, action, which):
    """The .info start (acquisition), the result PUT and the .info done each reach S3 but their reply is lost:
    the writer reads back its own bytes and goes on; one job, no hang, no lost update."""
    proxy = FaultyProxy(s3_endpoint).start()
    try:
        store = Store(s3_url, endpoint_url=proxy.url, config_kwargs={"retries": {"max_attempts": 1}})
        lease = job_lease(store, KEY, lease=5, refresh=1)
        assert isinstance(lease, InfoLease)
        lease.observe()
        w = JobWriter(store, KEY, type="json", lease=lease)
        path = {"acquisition": r"Default\.info", "result": r"Default$", "done": r"Default\.info"}[which]
        if which != "done":
            rule = proxy.add_rule(action, method="PUT", path=path)
        w.begin()
        w.save({"n": 1})
        if which == "done":
            rule = proxy.add_rule(action, method="PUT", path=path)
        w.done()
        lease.release()
        assert rule.hits == 1
        direct = Store(s3_url)
        job = Job.at(direct, KEY)
        assert job.status == "done" and job.load() == {"n": 1}
    finally:
        proxy.stop()


def test_a_lost_lock_file_refuses_the_local_commit(tmp_path):
    store = Store(str(tmp_path / "root"))
    lease = LockFileLease(store, KEY, lease=5, refresh=1)
    assert lease.acquire(timeout=0)
    w = JobWriter(store, KEY, type="json", lease=lease)
    w.begin()
    time.sleep(FRESH + 0.1)  # a holder reads its entry back once nobody could have broken it yet (locks.FRESH)
    store.delete(lease.lock.key)  # another holder broke it (and may have taken it)
    with pytest.raises(LeaseLost, match="taken over"):
        w.save({"late": True})
    assert not store.exists(KEY)
    lease.release()
