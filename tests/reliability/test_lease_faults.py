"""Leases under the faults real stores and clusters produce (#12): ambiguous replies, paused holders, pid reuse,
clock skew.  Real processes; S3 through the fault proxy in front of the moto server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from faulty_proxy import FaultyProxy
from scout_persist.locks import Lock, parse_lock
from scout_persist.store import Store

PY = sys.executable
KEY = "tmp/persist_locks/job.persist.lock"


def _spawn(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE, text=True, **kwargs
    )


@pytest.fixture
def proxied(s3_url, s3_endpoint):
    """A store through the fault proxy (botocore's own retries off: faults reach our code), and one straight to S3."""
    proxy = FaultyProxy(s3_endpoint).start()
    options = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}}}
    yield Store(s3_url, **options), Store(s3_url), proxy
    proxy.stop()


# ------------------------------------------------------------------------------------------- ambiguous replies
@pytest.mark.s3
@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
def test_a_lock_create_whose_reply_is_lost_is_recognised_as_ours(proxied, action):
    store, direct, proxy = proxied
    rule = proxy.add_rule(action, method="PUT", path=r"persist_locks/job")
    lock = Lock(store, KEY, lease=5, refresh=1)
    t0 = time.monotonic()
    assert lock.acquire(timeout=10)
    assert rule.hits == 1 and time.monotonic() - t0 < 5  # no waiting on its own entry
    assert parse_lock(direct.get(KEY))["token"] == lock.token
    lock.release()
    assert not direct.exists(KEY)


@pytest.mark.s3
@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
def test_a_renewal_whose_reply_is_lost_keeps_the_lock(proxied, action):
    store, direct, proxy = proxied
    lock = Lock(store, KEY, lease=3, refresh=0.3)
    assert lock.acquire(timeout=0)
    rule = proxy.add_rule(action, method="PUT", path=r"persist_locks/job")
    time.sleep(1.2)
    assert rule.hits == 1 and lock.held and not lock.lost  # the lost reply was read back as ours
    assert not Lock(direct, KEY, lease=3, refresh=0.3).acquire(timeout=0.5)
    lock.check()
    lock.release()
    assert not direct.exists(KEY)


@pytest.mark.s3
@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
def test_a_break_whose_reply_is_lost_does_not_hang_or_double_win(proxied, action):
    store, direct, proxy = proxied
    direct.put(KEY, b"host: far-away.example\npid: 1\nppid: 0\nlease: 0.3\n")
    rule = proxy.add_rule(action, method="DELETE", path=r"persist_locks/job")
    lock = Lock(store, KEY, lease=5, refresh=1)
    assert lock.acquire(timeout=10)
    assert rule.hits == 1
    assert parse_lock(direct.get(KEY))["token"] == lock.token
    lock.release()


# ---------------------------------------------------------------------------------------------- paused holders
HOLD = """
    import sys, time
    from scout_persist.store import Store
    from scout_persist.locks import Lock
    from scout_persist.errors import LeaseLost
    lock = Lock(Store(sys.argv[1]), sys.argv[2], lease=float(sys.argv[3]), refresh=0.2)
    lock.host = "far-away.example"  # another machine: only its lease protects it
    assert lock.acquire(timeout=10)
    print("held", flush=True)
    input()  # stopped here; continues when the test writes a line
    try:
        lock.check()
        print("still mine", flush=True)
    except LeaseLost as exc:
        print("lost:", exc, flush=True)
    lock.release()
"""


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_holder_stopped_past_its_lease_loses_the_lock_and_cannot_take_it_back(where, tmp_path, request):
    url = str(tmp_path / "root") if where == "local" else request.getfixturevalue("s3_url")
    store = Store(url)
    holder = _spawn(HOLD, url, KEY, 1.0, stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGSTOP)
    try:
        other = Lock(store, KEY, lease=1.0, refresh=0.2)
        t0 = time.monotonic()
        assert other.acquire(timeout=15)  # the stopped holder stopped renewing: taken after its lease
        assert time.monotonic() - t0 >= 0.9
    finally:
        holder.send_signal(signal.SIGCONT)
    time.sleep(0.6)  # the resumed holder's renewals run and fail: they never put its entry back
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().startswith("lost:")
    assert holder.wait(timeout=20) == 0
    assert parse_lock(store.get(KEY))["token"] == other.token  # its release left the new holder's entry alone
    other.check()
    other.release()


PERSIST_SLOW = """
    import os, sys, time
    from scout_persist.persist_cache import persist
    def compute():
        print("computing", flush=True)
        time.sleep(float(sys.argv[3]))
        return {"by": sys.argv[2]}
    try:
        print(persist("shared", "json", compute, store=sys.argv[1], lease=1.0), flush=True)
    except Exception as exc:
        print(type(exc).__name__, exc, flush=True)
"""


def test_a_paused_persist_whose_lock_was_taken_does_not_overwrite_the_commit(tmp_path):
    """SIGSTOP past the lease: the other process computes and commits; the resumed one's commit is refused and
    readers get the committed value."""
    from scout_persist.persist_cache import persist

    root = str(tmp_path / "root")
    first = _spawn(PERSIST_SLOW, root, "first", 1.5)
    assert first.stdout.readline().strip() == "computing"
    first.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.2)
        second = _spawn(PERSIST_SLOW.replace("lease=1.0", "lease=1.0"), root, "second", 0.1)
        out = second.communicate(timeout=60)[0]
        assert "'by': 'second'" in out
    finally:
        first.send_signal(signal.SIGCONT)
    out = first.communicate(timeout=60)[0]
    assert "LeaseLost" in out and "refusing to commit" in out
    assert persist("shared", "json", lambda: {"by": "reader"}, store=root) == {"by": "second"}


# ------------------------------------------------------------------------------------------------- pid reuse
def test_a_live_pid_that_is_another_process_is_not_the_holder(tmp_path):
    """Same host, same boot, same pid namespace, the holder's pid now runs another process (another start time)."""
    store = Store(str(tmp_path / "root"))
    host_lines = Lock(store, KEY)._content("x").decode()
    info = parse_lock(host_lines.encode())
    reused = host_lines.replace(f"pid: {info['pid']}", f"pid: {os.getppid()}").replace(
        f"start: {info['start']}", "start: 1"
    )  # our parent is alive, but it is not the process that locked
    store.put(KEY, reused.encode())
    lock = Lock(store, KEY)  # default 30 s lease: only the identity can explain a quick recovery
    assert lock.acquire(timeout=5)
    lock.release()


NS_HOLD = """
    import sys
    from scout_persist.store import Store
    from scout_persist.locks import Lock
    lock = Lock(Store(sys.argv[1]), sys.argv[2], lease=float(sys.argv[3]), refresh=0.2)
    if lock.acquire(timeout=30):
        print("held by pid", __import__("os").getpid(), flush=True)
        import time; time.sleep(600)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a PID namespace")
def test_a_holder_restarted_as_the_same_pid_in_a_new_namespace_does_not_keep_a_dead_lock(tmp_path):
    """A container's PID 1 is killed and restarts as PID 1 with the same hostname: its old lock must end with its
    lease, not be honoured for ever because "pid 1 is alive"."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --pid is not permitted here: {probe.stderr.decode().strip()}")
    root = str(tmp_path / "root")
    cmd = [
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        PY,
        "-c",
        textwrap.dedent(NS_HOLD),
        root,
        KEY,
        "1.0",
    ]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "held by pid 1"
    first.kill()
    first.wait()
    t0 = time.monotonic()
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert second.stdout.readline().strip() == "held by pid 1"  # took it over once the old lease ended
        assert time.monotonic() - t0 < 20
        assert parse_lock(Store(root).get(KEY))["pid"] == "1"
    finally:
        second.kill()
        second.wait()


# -------------------------------------------------------------------------------------------------- clock skew
SKEWED = """
    import sys, time
    real = time.time
    time.time = lambda: real() + 40.0  # this host's clock runs 40 s ahead
    from scout_persist.store import Store
    from scout_persist.locks import Lock
    lock = Lock(Store(sys.argv[1]), sys.argv[2], lease=30, refresh=2)
    print("won" if lock.acquire(timeout=2.0) else "honoured", flush=True)
"""


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_host_with_a_clock_40s_ahead_does_not_take_a_live_lock(where, tmp_path, request):
    url = str(tmp_path / "root") if where == "local" else request.getfixturevalue("s3_url")
    holder = Lock(Store(url), KEY, lease=30, refresh=1)
    holder.host = "far-away.example"  # a live holder elsewhere, renewing
    assert holder.acquire(timeout=0)
    try:
        out = subprocess.run([PY, "-c", textwrap.dedent(SKEWED), url, KEY], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "honoured", out.stderr
        holder.check()
    finally:
        holder.release()
