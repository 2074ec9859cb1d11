"""Lease locks over the store: real processes contending, killed holders, ended leases, safe breaking."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from scout_persist.errors import InvalidInputError, LeaseLost, LockTimeout, ScoutPersistError, UnsafePathError
from scout_persist.layout import LOCK_DIR, lock_key_for
from scout_persist.locks import FRESH, Lock, describe_holder, parse_lock, ruby_lock_time
from scout_persist.process import hostname, pid_alive
from scout_persist.store import Store

PY = sys.executable

CONTEND = r"""
import os, sys, time
from scout_persist.store import Store
from scout_persist.locks import Lock
url, key, log, counter, rounds, start = sys.argv[1:7]
store = Store(url)
while time.time() < float(start):
    time.sleep(0.005)
for _ in range(int(rounds)):
    with Lock(store, key, lease=10, refresh=1, timeout=120):
        with open(log, "a") as fh:
            fh.write(f"enter {os.getpid()}\n")
        n = int(open(counter).read())
        time.sleep(0.005)
        with open(counter, "w") as fh:
            fh.write(str(n + 1))
        with open(log, "a") as fh:
            fh.write(f"exit {os.getpid()}\n")
"""

HOLD = r"""
import sys, time
from scout_persist.store import Store
from scout_persist.locks import Lock
lock = Lock(Store(sys.argv[1]), sys.argv[2])
assert lock.acquire(timeout=30)
print("held", flush=True)
time.sleep(120)
"""

TRY_ONCE = r"""
import sys, time
from scout_persist.store import Store
from scout_persist.locks import Lock
url, key, start = sys.argv[1:4]
lock = Lock(Store(url), key)
while time.time() < float(start):
    time.sleep(0.002)
won = lock.acquire(timeout=0)
print("won" if won else "lost", flush=True)
if won:
    time.sleep(2.0)
    lock.release()
"""


def run_py(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True)


def dead_pid() -> int:
    proc = subprocess.Popen([PY, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


KEY = "tmp/persist_locks/thing.persist.lock"


# -- naming and content ---------------------------------------------------------------------------------
def test_lock_key_for_persist_entry_follows_scout_naming():
    # SCOUT_FORMAT.md §9.3: a generic persist locks its logical path in tmp/persist_locks.
    assert lock_key_for("var/cache/persistence/fixture_json") == (
        "tmp/persist_locks/var\u00b7cache\u00b7persistence\u00b7fixture_json.persist.lock"
    )
    assert lock_key_for("/h/u/.scout/var/jobs/Baking/whisk_eggs/Blueberry muffin") == (
        "tmp/persist_locks/\u00b7h\u00b7u\u00b7.scout\u00b7var\u00b7jobs\u00b7Baking\u00b7whisk_eggs"
        "\u00b7Blueberry_muffin.persist.lock"
    )
    assert lock_key_for("a/b", suffix="") == "tmp/persist_locks/a\u00b7b.lock"


def test_lock_key_for_multibyte_names_fits_255_bytes():
    # Ruby cuts at 160 characters, which overflows 255 bytes with multi-byte characters ("File name too long").
    key = lock_key_for("var/cache/persistence/" + "日本語" * 60)
    name = key.rsplit("/", 1)[1]
    assert key.startswith(LOCK_DIR + "/") and name.endswith(".lock")
    assert len(name.encode("utf-8")) <= 255
    assert lock_key_for("var/cache/persistence/" + "日本語" * 61) != key


def test_content_has_rubys_lines_and_a_lease(store):
    lock = Lock(store, KEY, lease=12.5, owner="flow run 7")
    assert lock.acquire(timeout=0)
    try:
        raw = store.get(KEY).decode()
        keys = [line.split(":", 1)[0] for line in raw.splitlines()]
        assert keys[:4] == ["host", "pid", "ppid", "time"]
        info = parse_lock(raw.encode())
        assert info["host"] == hostname() and info["pid"] == str(os.getpid()) and info["ppid"] == str(os.getppid())
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", info["time"])
        assert float(info["lease"]) == 12.5
        assert "expires" not in info  # no wall-clock stamp for another host to misjudge
        assert info["boot_id"] and info["pidns"] and info["start"]  # who holds it, across pid reuse
        assert info["owner"] == "flow run 7"
        assert lock.holder()["token"] == info["token"]
    finally:
        lock.release()
    assert not store.exists(KEY)


def test_ruby_time_pads_microseconds_on_the_right():
    t = time.mktime((2024, 1, 2, 3, 4, 5, 0, 0, -1)) + 0.000042
    assert ruby_lock_time(t).startswith("2024-01-02 03:04:05.")
    assert ruby_lock_time(t).endswith("420000") or ruby_lock_time(t).endswith("410000")


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0)


def test_describe_holder_names_host_pid_and_lease():
    text = describe_holder({"host": "h1", "pid": "42", "time": "t", "lease": "5"})
    assert "h1" in text and "42" in text and "lease 5s" in text
    assert "unknown" in describe_holder(None)


# -- basic behaviour ---------------------------------------------------------------------------------------
def test_second_lock_waits_and_times_out_naming_key_and_holder(store):
    first = Lock(store, KEY)
    assert first.acquire()
    second = Lock(store, KEY, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(LockTimeout) as err:
        with second:
            pass
    assert time.monotonic() - t0 >= 0.2
    assert isinstance(err.value, ScoutPersistError) and isinstance(err.value, TimeoutError)
    assert KEY in str(err.value) and hostname() in str(err.value) and str(os.getpid()) in str(err.value)
    assert not second.held and first.held
    first.release()
    with second:
        assert second.held
    assert not second.held and not store.exists(KEY)


def test_release_is_idempotent_and_acquire_twice_is_harmless(store):
    lock = Lock(store, KEY)
    assert lock.acquire(0) and lock.acquire(0)
    lock.release()
    lock.release()
    assert not store.exists(KEY)


def test_waiter_gets_the_lock_when_holder_releases(store):
    holder = Lock(store, KEY)
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    waiter = Lock(store, KEY)
    t0 = time.monotonic()
    assert waiter.acquire(timeout=10)
    assert 0.2 <= time.monotonic() - t0 < 5
    waiter.release()


@pytest.mark.parametrize(
    "kwargs",
    [dict(lease=2.0, refresh=2.0), dict(lease=0, refresh=0.1), dict(lease=5, refresh=-1), dict(timeout=-1)],
)
def test_bad_parameters_are_refused(store, kwargs):
    with pytest.raises(InvalidInputError) as err:
        Lock(store, KEY, **kwargs)
    assert any(str(v) in str(err.value) for v in kwargs.values())


def test_bad_keys_are_refused(store):
    for key in ("../outside.lock", "/abs.lock"):
        with pytest.raises(UnsafePathError):
            Lock(store, key)
    with pytest.raises(InvalidInputError):
        Lock(store, "")
    with pytest.raises(InvalidInputError):
        Lock(store, KEY).acquire(timeout=-1)
    with pytest.raises(InvalidInputError):
        Lock(store, KEY).acquire(poll=0)


# -- real processes -----------------------------------------------------------------------------------------
def test_processes_contend_one_enters_at_a_time(store, tmp_path):
    log, counter = tmp_path / "log", tmp_path / "counter"
    counter.write_text("0")
    n, rounds = 4, 8
    start = time.time() + 1.5
    procs = [run_py(CONTEND, store.url, KEY, log, counter, rounds, start) for _ in range(n)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert int(counter.read_text()) == n * rounds  # a lost update would show two processes inside at once
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * n * rounds
    for enter, leave in zip(lines[::2], lines[1::2]):
        assert enter.startswith("enter ") and leave == "exit " + enter.split()[1]
    assert len({line.split()[1] for line in lines}) == n
    assert not store.exists(KEY)


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_sigkilled_holder_is_recovered_by_its_dead_pid(store, reap):
    holder = run_py(HOLD, store.url, KEY)
    assert holder.stdout.readline().strip() == "held"
    assert parse_lock(store.get(KEY))["pid"] == str(holder.pid)
    assert not Lock(store, KEY).acquire(timeout=0.3)  # alive: honoured
    holder.kill()
    if reap:
        holder.wait()
    else:
        time.sleep(0.2)  # killed but not reaped: a zombie still answers kill(pid, 0)
    lock = Lock(store, KEY)  # default 30 s lease: only the dead pid can explain a quick recovery
    t0 = time.monotonic()
    assert lock.acquire(timeout=10)
    assert time.monotonic() - t0 < 10
    assert parse_lock(store.get(KEY))["pid"] == str(os.getpid())
    lock.release()
    holder.wait()


def test_two_breakers_never_both_win(store, tmp_path):
    stale = f"host: {hostname()}\npid: {dead_pid()}\nppid: 1\ntime: {ruby_lock_time()}\n"
    store.put(KEY, stale.encode())
    start = time.time() + 1.5
    procs = [run_py(TRY_ONCE, store.url, KEY, start) for _ in range(4)]
    results = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    assert not store.exists(KEY)
    assert list(store.list(LOCK_DIR)) == []  # no marker, no temporary left


def test_breaking_threads_on_memory_store():
    store = Store("memory://locks-break-test")
    store.put(KEY, b"host: elsewhere.example\npid: 7\nppid: 1\ntime: x\nlease: 0.2\n")
    barrier = threading.Barrier(8)
    won: list[Lock] = []

    def attempt():
        lock = Lock(store, KEY)
        barrier.wait()
        if lock.acquire(timeout=1.5):  # each watches it unchanged for its 0.2 s lease, then all try to break it
            won.append(lock)
            time.sleep(0.5)  # hold it while the others time out

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert parse_lock(store.get(KEY))["token"] == won[0].holder()["token"]
    won[0].release()
    assert not store.exists(KEY)
    store.delete("", recursive=True)


# -- leases (other hosts) -----------------------------------------------------------------------------------------
def test_foreign_lease_is_honoured_until_it_is_not_renewed_for_a_lease(store):
    store.put(KEY, b"host: other-host.example\npid: 1\nppid: 0\nlease: 1\n")
    with pytest.raises(LockTimeout) as err:
        with Lock(store, KEY, timeout=0.1):
            pass
    assert "other-host.example" in str(err.value) and KEY in str(err.value)
    lock = Lock(store, KEY)
    t0 = time.monotonic()
    assert lock.acquire(timeout=10)
    assert time.monotonic() - t0 >= 0.9  # it watched the entry unrenewed for the whole lease first
    lock.release()


def test_ruby_lock_without_lease_uses_the_store_clock_age(store):
    store.put(KEY, f"host: ruby-host\npid: 1\nppid: 0\ntime: {ruby_lock_time()}\n".encode())
    assert not Lock(store, KEY).acquire(timeout=0.2)  # fresh: honoured
    old = time.time() - 60
    os.utime(store.path(KEY), (old, old))
    lock = Lock(store, KEY)
    assert lock.acquire(timeout=0)  # 60 s without renewal by the file system's clock > 30 s lease: stale
    lock.release()


def test_refresher_keeps_a_short_lease_alive_then_a_hung_holder_is_recovered(store):
    holder = Lock(store, KEY, lease=1.0, refresh=0.2)
    holder.host = "far-away.example"  # seen as another host, so only the lease protects it
    assert holder.acquire(0)
    assert not Lock(store, KEY).acquire(timeout=1.8)  # 1.8 s > lease: only refreshing kept it
    holder._stop_refresher()  # the holder hangs
    other = Lock(store, KEY)
    assert other.acquire(timeout=10)
    assert parse_lock(store.get(KEY))["host"] == hostname()
    holder.release()  # must not delete the new holder's entry
    assert store.exists(KEY) and other.holder()["token"] == parse_lock(store.get(KEY))["token"]
    other.release()


def test_holder_notices_a_lost_lock(store):
    holder = Lock(store, KEY, lease=5.0, refresh=0.1)
    assert holder.acquire(0)
    store.delete(KEY)
    thief = Lock(store, KEY)
    assert thief.acquire(0)
    deadline = time.monotonic() + 5
    while holder.held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder.lost and not holder.held
    holder.release()
    assert thief.holder() is not None and store.exists(KEY)
    thief.release()


def test_dead_temporaries_of_this_host_are_swept(store):
    folder = os.path.dirname(store.path(KEY))
    os.makedirs(folder)
    dead = os.path.join(folder, f".{hostname()}_{dead_pid()}_ruby_1_2_3.lck")
    mine = os.path.join(folder, f".{hostname()}_{os.getpid()}_ruby_1_2_3.lck")
    for p in (dead, mine):
        open(p, "w").close()
    lock = Lock(store, KEY)
    assert lock.acquire(0)
    lock.release()
    assert not os.path.exists(dead) and os.path.exists(mine)


# -- S3 (real HTTP endpoint) ----------------------------------------------------------------------------------
def test_s3_lock_excludes_and_breaks_an_ended_lease(s3_url):
    store = Store(s3_url)
    first = Lock(store, KEY, lease=5.0, refresh=0.5)
    assert first.acquire(timeout=0)
    assert not Lock(store, KEY).acquire(timeout=0.3)
    first.release()
    assert not store.exists(KEY)
    store.put(KEY, b"host: other-host.example\npid: 1\nppid: 0\nlease: 1\n")
    lock = Lock(store, KEY)
    assert not lock.acquire(timeout=0)  # just written: its lease runs
    assert lock.acquire(timeout=10)  # not renewed for a lease (the store's clock, or ours watching it)
    assert parse_lock(store.get(KEY))["host"] == hostname()
    lock.release()


def test_s3_processes_contend_one_enters_at_a_time(s3_url, tmp_path):
    log, counter = tmp_path / "log", tmp_path / "counter"
    counter.write_text("0")
    n, rounds = 3, 4
    start = time.time() + 2.0
    procs = [run_py(CONTEND, s3_url, KEY, log, counter, rounds, start) for _ in range(n)]
    for p in procs:
        assert p.wait(timeout=180) == 0
    assert int(counter.read_text()) == n * rounds
    lines = log.read_text().splitlines()
    for enter, leave in zip(lines[::2], lines[1::2]):
        assert enter.startswith("enter ") and leave == "exit " + enter.split()[1]
    assert not Store(s3_url).exists(KEY)


def test_live_holder_on_this_host_is_never_broken_even_past_its_lease(store):
    holder = Lock(store, KEY, lease=0.5, refresh=0.1)
    assert holder.acquire(0)
    holder._stop_refresher()  # a long computation that starves its refresher
    assert not Lock(store, KEY, lease=0.5, refresh=0.1).acquire(timeout=1.5)  # pid alive here: honoured
    holder.release()
    assert not store.exists(KEY)


def test_a_breaker_that_died_does_not_block_breaking(store):
    stale = f"host: {hostname()}\npid: {dead_pid()}\nppid: 1\ntime: {ruby_lock_time()}\n".encode()
    store.put(KEY, stale)
    import hashlib

    marker = f"{KEY}.break.{hashlib.md5(stale).hexdigest()}"
    store.put(marker, f"host: {hostname()}\npid: {dead_pid()}\nppid: 1\n".encode())  # its breaker was killed
    lock = Lock(store, KEY)
    assert lock.acquire(timeout=5)
    assert not store.exists(marker)
    lock.release()


def test_s3_sigkilled_holder_is_recovered(s3_url):
    store = Store(s3_url)
    holder = run_py(HOLD, s3_url, KEY)
    assert holder.stdout.readline().strip() == "held"
    assert not Lock(store, KEY).acquire(timeout=0.3)
    holder.kill()
    holder.wait()
    lock = Lock(store, KEY)
    assert lock.acquire(timeout=10)  # 30 s lease: only the dead pid explains this
    assert parse_lock(store.get(KEY))["pid"] == str(os.getpid())
    lock.release()


# -- what winning a lock says about its previous holder (scout_persist.handover) ---------------------------------
def test_winning_a_free_or_released_lock_breaks_nothing(store):
    lock = Lock(store, KEY)
    assert lock.acquire(timeout=0) and lock.broken is None  # free
    waiter = Lock(store, KEY)
    threading.Timer(0.3, lock.release).start()
    assert waiter.acquire(timeout=10)
    assert waiter.broken is None  # released by a live holder: its work ended normally
    waiter.release()


def test_winning_a_dead_holders_lock_records_the_entry_it_broke(store):
    holder = run_py(HOLD, store.url, KEY)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    lock = Lock(store, KEY)
    assert lock.acquire(timeout=10)
    assert lock.broken is not None and lock.broken["pid"] == str(holder.pid)
    lock.release()
    assert lock.acquire(timeout=0) and lock.broken is None  # each acquire says what it did
    lock.release()


# -- the lock folder Ruby resolves (scout_persist.lock_folder) ---------------------------------------------------
def test_ruby_locks_in_the_working_directory_when_it_has_tmp_persist_locks(tmp_path):
    from scout_persist.lock_folder import ruby_lock_folder

    home, cwd = tmp_path / "home", tmp_path / "project"
    cwd.mkdir()
    (home / ".scout").mkdir(parents=True)
    assert ruby_lock_folder(str(cwd), str(home)) == str(home / ".scout/tmp/persist_locks")  # Ruby's default
    (cwd / "tmp/persist_locks").mkdir(parents=True)
    assert ruby_lock_folder(str(cwd), str(home)) == str(cwd / "tmp/persist_locks")  # Path#find: current map first


def test_a_second_lock_only_where_ruby_shares_the_root_and_locks_elsewhere(tmp_path):
    from scout_persist.lock_folder import extra_lock_folder

    home, cwd, other = tmp_path / "home", tmp_path / "project", tmp_path / "data"
    for d in (home / ".scout", cwd, other):
        d.mkdir(parents=True)
    root = str(home / ".scout")
    assert extra_lock_folder(root, str(cwd), str(home)) is None  # both lock in ~/.scout/tmp/persist_locks
    (cwd / "tmp/persist_locks").mkdir(parents=True)
    assert extra_lock_folder(root, str(cwd), str(home)) == str(cwd / "tmp/persist_locks")
    assert extra_lock_folder(str(other), str(cwd), str(home)) is None  # Ruby does not reach this root's jobs
    assert extra_lock_folder(str(cwd), str(cwd), str(home)) is None  # root = working directory: one folder


def test_a_job_lease_takes_rubys_lock_too_when_the_folders_differ(tmp_path, monkeypatch):
    from scout_persist.lease import LockFileLease

    home, cwd = tmp_path / "home", tmp_path / "project"
    (home / ".scout").mkdir(parents=True)
    (cwd / "tmp/persist_locks").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    store = Store(str(home / ".scout"))
    key = "var/jobs/W/t/j"
    name = lock_key_for(store.path(key)).rsplit("/", 1)[1]
    ruby = Lock(Store(str(cwd / "tmp/persist_locks")), name)  # a Ruby process started from `project` holds it
    assert ruby.acquire(timeout=0)
    lease = LockFileLease(store, key)
    assert not lease.acquire(timeout=0.3)  # excluded by Ruby's lock ...
    assert not store.exists(lock_key_for(store.path(key)))  # ... and not left holding the root's lock
    ruby.release()
    assert lease.acquire(timeout=5) and lease.held
    assert store.exists(lock_key_for(store.path(key))) and (cwd / "tmp/persist_locks" / name).exists()
    other = LockFileLease(store, key)
    assert not other.acquire(timeout=0.2)  # another Python process: excluded by the root's lock
    lease.release()
    assert not (cwd / "tmp/persist_locks" / name).exists() and not store.exists(lock_key_for(store.path(key)))


def test_a_lock_won_moments_ago_is_its_holders_without_reading_it_back(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "root"))
    reads: list[str] = []
    get_versioned = store.get_versioned
    monkeypatch.setattr(store, "get_versioned", lambda key: reads.append(key) or get_versioned(key))
    lock = Lock(store, KEY, lease=5.0, refresh=1.0)
    assert lock.acquire(timeout=0)
    lock.check()  # nobody may break an entry as young as this (locks.FRESH): no read
    assert reads == []
    time.sleep(min(FRESH, 5.0 / 10) + 0.05)
    lock.check()  # past the window: the entry is read and its token compared
    assert reads == [KEY]
    store.delete(KEY)  # taken from it since (only a break of a lease-old entry does that in the protocol)
    with pytest.raises(LeaseLost, match="taken over"):
        lock.check()
    lock.release()
    fresh = Lock(store, KEY, lease=5.0, refresh=1.0)
    assert fresh.acquire(timeout=0)
    reads.clear()
    fresh.release()  # released at once: deleted without a look
    assert reads == [] and not store.exists(KEY)


def test_temporary_names_and_lock_tokens_do_not_follow_a_users_random_seed(tmp_path):
    """Research flows call random.seed(0): two such processes must still draw different temporary names and lock
    tokens, or one's rename publishes the other's half-written file and a holder takes another's lock for its own."""
    code = (
        "import random, sys; from scout_persist.store import Store; from scout_persist.store.backend import temp_name;"
        "from scout_persist.locks import Lock; random.seed(0); lock = Lock(Store(sys.argv[1]), sys.argv[2], lease=5);"
        "assert lock.acquire(5); print(temp_name('var/x'), lock._token); lock.release()"
    )
    drawn = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), f"tmp/persist_locks/job{i}.lock"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for i in range(2)
    ]
    assert drawn[0][0] != drawn[1][0] and drawn[0][1] != drawn[1][1]
