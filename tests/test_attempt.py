"""The core attempt and the hit rule, without Prefect: each reason a stored job cannot serve, what a hit reads, the
lease by capability (Ruby's lock file locally, ``.info`` itself where writes are conditional), claim, commit, fail;
and ``info --why`` says what the attempt says on every fixture job."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import fs_ops
from faulty_proxy import FaultyProxy
from scout_persist import presence, signature as sig
from scout_persist.attempt import Attempt, JobSetup
from scout_persist.cli.target import JobRef
from scout_persist.cli.why import explain
from scout_persist.errors import LockTimeout
from scout_persist.info import InfoFile, dumps_info, loads_info
from scout_persist.job import Job, JobWriter
from scout_persist.layout import lock_key_for
from scout_persist.locks import Lock
from scout_persist.store import Conflict, Store
from scout_persist.verdict import (
    ABSENT,
    CLAIMED,
    CORRUPT,
    EXPIRED,
    MISSING_RESULT,
    NOT_LOADED,
    STATUS,
    UNTRUSTED,
    Expiry,
    Miss,
    Served,
    judge,
)

KEY = "var/jobs/W/square/Default"
SIG = sig.compute({"x": 3}, [], "code of square", "1")
SETUP = JobSetup("W", "square", "integer", inputs=[3], input_names=["x"])


def committed(store: Store, value=9, signature=SIG, setup=SETUP, key=KEY) -> Attempt:
    """An attempt that computed and committed ``value`` (the way the plug-in does), released."""
    attempt = Attempt(store, key, signature, setup=setup)
    assert attempt.acquire(timeout=10)
    assert isinstance(attempt.verdict(), Miss)
    assert attempt.commit(value) == value
    attempt.release()
    return attempt


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


@pytest.fixture
def memory() -> Store:
    return Store(f"memory://attempt-{uuid.uuid4().hex}")  # conditional writes: .info is the lease


# -- the hit rule: each reason ------------------------------------------------------------------------------
def test_a_committed_job_serves_its_value_record_and_token(store):
    first = committed(store)
    assert first.committed and first.token == sig.dependency_token(KEY, loads_info(store.get(KEY + ".info")))
    verdict = Attempt(store, KEY, SIG).verdict()
    assert isinstance(verdict, Served) and verdict.value == 9 and verdict.token == first.token
    assert verdict.record is not None and verdict.record["checksum"].startswith(("blake3:", "sha256:"))


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ("absent", ABSENT, "no job"),
        ("error", STATUS, "status is 'error', not 'done'"),
        ("version", "signature:version", "computed with another version"),
        ("inputs", "signature:inputs", "computed with another input 'x'"),
        ("recorded expiry", EXPIRED, "expired"),
        ("result gone", MISSING_RESULT, "result file is missing"),
        ("result damaged", CORRUPT, "checksum"),
    ],
)
def test_each_reason_a_job_cannot_serve_has_its_code_and_sentence(store, change, code, words):
    committed(store)
    expected = SIG
    if change == "absent":
        store.delete(KEY + ".info")
    elif change == "error":
        InfoFile(store, KEY + ".info").error(RuntimeError("boom"))
    elif change == "version":
        expected = {**SIG, "version": "2"}
    elif change == "inputs":
        expected = sig.compute({"x": 4}, [], "code of square", "1")
    elif change == "recorded expiry":
        info = loads_info(store.get(KEY + ".info"))
        info["prefect"] = {"expires": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).isoformat()}
        store.put(KEY + ".info", dumps_info(info))
    elif change == "result gone":
        store.delete(KEY)
    elif change == "result damaged":
        store.put(KEY, b"8")  # same size, other bytes
    verdict = Attempt(store, KEY, expected).verdict()
    assert isinstance(verdict, Miss) and verdict.has(code) and words in verdict.message, verdict
    if code.startswith("signature:"):  # what changed, named (the part, or the input by its name)
        assert verdict.changed == [{"inputs": "input 'x'"}.get(part := code.split(":", 1)[1], part)]


def test_a_task_expiration_counts_from_the_end_and_a_reader_ignores_expiry(store):
    committed(store)
    assert isinstance(Attempt(store, KEY, SIG, dt.timedelta(hours=1)).verdict(), Served)
    late = Attempt(store, KEY, SIG, dt.timedelta(seconds=0)).verdict()
    assert isinstance(late, Miss) and late.reasons == (EXPIRED,) and late.changed == ["expired"]
    info = loads_info(store.get(KEY + ".info"))
    info["prefect"] = {"expires": "not a time"}  # an expiry that cannot be read is not trusted
    store.put(KEY + ".info", dumps_info(info))
    assert Attempt(store, KEY, SIG).verdict().has(EXPIRED)
    assert isinstance(Attempt(store, KEY, expiration=Expiry.IGNORED).verdict(), Served)
    assert Job.at(store, KEY).load() == 9  # Job.load asks the same rule, as a reader


def test_a_running_job_whose_writer_is_gone_is_aborted_in_the_verdict(store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = InfoFile(store, KEY + ".info")
    info.setup(task_name="square", workflow="W", type="integer", pid=dead.pid)
    info.start()
    verdict = Attempt(store, KEY).verdict()
    assert isinstance(verdict, Miss) and verdict.reasons == (STATUS,) and verdict.status == "aborted"
    assert f"pid {dead.pid}" in verdict.message and Job.at(store, KEY).status == "aborted"


def test_an_unsigned_pickle_is_untrusted_and_never_unpickled(store, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_HMAC_KEY", "the key it was written with, 32 bytes+")
    committed(store, {"a": {1, 2}}, setup=JobSetup("W", "square", None))
    assert Attempt(store, KEY, SIG).verdict().value == {"a": {1, 2}}
    monkeypatch.setenv("SCOUT_PERSIST_HMAC_KEY", "another key, also thirty-two bytes long")
    verdict = Attempt(store, KEY, SIG).verdict()
    assert isinstance(verdict, Miss) and verdict.has(UNTRUSTED) and "HMAC" in str(verdict.error)
    checked = Attempt(store, KEY, SIG).verdict(decode=False)  # what --why asks: the HMAC, nothing unpickled
    assert isinstance(checked, Miss) and checked.has(UNTRUSTED)
    monkeypatch.setenv("SCOUT_PERSIST_HMAC_KEY", "the key it was written with, 32 bytes+")
    served = Attempt(store, KEY, SIG).verdict(decode=False)
    assert isinstance(served, Served) and served.value is NOT_LOADED


def test_a_ruby_job_serves_by_ruby_rules_whatever_signature_is_expected(relocated_jobs):
    store = Store(str(relocated_jobs))
    key = "var/jobs/Baking/whisk_eggs/Normal muffin"
    verdict = Attempt(store, key, SIG).verdict()  # Ruby's jobs carry no signature: nothing to compare
    assert isinstance(verdict, Served) and verdict.value == Job.at(store, key).load() and verdict.record is None
    assert verdict.token.startswith(key + "=ruby:")  # by its result bytes (a timing rewrite is no change)


# -- what a hit reads --------------------------------------------------------------------------------------
def test_a_hit_is_one_info_read_and_one_result_read_without_a_lock(store, monkeypatch):
    committed(store)
    reads: list[str] = []
    get = store.get
    monkeypatch.setattr(store, "get", lambda key, **kw: reads.append(key) or get(key, **kw))
    attempt = Attempt(store, KEY, SIG)
    assert attempt.acquire(timeout=1) and attempt.passed and attempt.lease is None  # a pass: no lock file
    assert attempt.verdict().value == 9 and attempt.verdict().value == 9  # judged once per attempt
    assert reads == [KEY + ".info", KEY]
    assert not store.exists(lock_key_for(store.path(KEY)))


def test_a_pass_that_proves_wrong_takes_the_lock_and_looks_again(store):
    committed(store)
    store.put(KEY, b"8")  # damaged after the .info said done
    attempt = Attempt(store, KEY, SIG, setup=SETUP)
    assert attempt.acquire(timeout=1) and attempt.passed
    verdict = attempt.verdict()
    assert isinstance(verdict, Miss) and verdict.has(CORRUPT)
    assert not attempt.passed and attempt.lease is not None and attempt.lease.held  # now under the job's lock
    assert attempt.commit(9) == 9
    attempt.release()
    assert isinstance(Attempt(store, KEY, SIG).verdict(), Served)


def test_a_ruby_job_is_judged_under_its_lock_on_local_disks(relocated_jobs):
    store = Store(str(relocated_jobs))
    attempt = Attempt(store, "var/jobs/Baking/whisk_eggs/Normal muffin")
    assert attempt.acquire(timeout=1) and not attempt.passed and attempt.lease.held  # no signature: no pass
    assert isinstance(attempt.verdict(), Served)
    attempt.release()


def test_the_lease_times_out_while_a_live_holder_has_it(store):
    holder = Attempt(store, KEY, SIG, setup=SETUP)
    assert holder.acquire(timeout=1)
    waiter = Attempt(store, KEY, SIG, setup=SETUP)
    assert not waiter.acquire(timeout=0.3)
    holder.release()
    assert waiter.acquire(timeout=1)
    waiter.release()


# -- claim, commit, fail -----------------------------------------------------------------------------------
def test_claim_writes_start_fail_writes_error(store):
    attempt = Attempt(store, KEY, SIG, setup=SETUP)
    assert attempt.acquire(timeout=1)
    writer = attempt.claim()
    assert isinstance(writer, JobWriter) and attempt.claim() is writer
    assert json.loads(store.get(KEY + ".info"))["status"] == "start"
    assert attempt.verdict().reasons == (CLAIMED,)  # nothing stored serves an attempt that computes the job
    attempt.fail(ValueError("no square today"))
    attempt.release()
    info = json.loads(store.get(KEY + ".info"))
    assert info["status"] == "error" and not store.exists(KEY)
    assert Job.at(store, KEY).exception.message == "no square today"


def test_claim_without_a_lease_takes_it_and_without_a_setup_refuses(store):
    attempt = Attempt(store, KEY, SIG, setup=SETUP)
    attempt.claim()  # no acquire first (e.g. a run that skips the cache check): the lease is taken now
    assert attempt.lease is not None and attempt.lease.held
    attempt.fail(RuntimeError("stop"))
    attempt.release()
    with pytest.raises(Exception, match="JobSetup"):
        Attempt(store, KEY, SIG).claim()


def test_a_commit_records_the_signature_and_hands_on_what_a_hit_gives(store):
    setup = JobSetup("W", "square", "float_array", inputs=[3], input_names=["x"], non_default_inputs=["x"])
    attempt = committed(store, [1.5, 2], setup=setup)
    info = json.loads(store.get(KEY + ".info"))
    assert info["status"] == "done" and info["signature"] == SIG and info["type"] == "float_array"
    assert (info["inputs"], info["input_names"], info["non_default_inputs"]) == ([3], ["x"], ["x"])
    assert attempt.token == sig.dependency_token(KEY, info)
    assert Attempt(store, KEY, SIG).verdict().value == [1.5, 2.0]


def test_where_info_is_the_lease_acquiring_writes_start_and_excludes_others(memory):
    first = Attempt(memory, KEY, SIG, setup=SETUP)
    assert first.acquire(timeout=1) and first.writer is not None  # the conditional .info write is the lease
    assert json.loads(memory.get(KEY + ".info"))["status"] == "start"
    second = Attempt(memory, KEY, SIG, setup=SETUP)
    assert not second.acquire(timeout=0.3)  # a live holder: wait, then give up
    assert first.commit(9) == 9
    first.release()
    third = Attempt(memory, KEY, SIG)
    assert third.acquire(timeout=1) and third.passed and third.verdict().value == 9


def test_where_info_is_the_lease_an_abandoned_claim_becomes_aborted(memory):
    attempt = Attempt(memory, KEY, SIG, setup=SETUP)
    assert attempt.acquire(timeout=1)
    attempt.release()  # the run ended without commit or fail
    assert json.loads(memory.get(KEY + ".info"))["status"] == "aborted"


def test_a_pass_that_proves_wrong_while_another_holds_the_lock_times_out(store):
    committed(store)
    store.put(KEY, b"8")
    attempt = Attempt(store, KEY, SIG, setup=SETUP)
    assert attempt.acquire(timeout=0.3) and attempt.passed
    other = Lock(store, lock_key_for(store.path(KEY)))
    assert other.acquire(timeout=1)  # another writer of the job (Ruby takes this same lock)
    try:
        with pytest.raises(LockTimeout, match=r"was not acquired within 0\.3s"):
            attempt.verdict()
    finally:
        other.release()


def test_a_refused_create_whose_store_did_not_read_the_entry_is_followed_by_a_read(memory, monkeypatch):
    committed(memory)
    presence.forget_all()  # a process new to the store: it creates first
    put_if = memory.backend.put_if

    def refusing_blind(key, data, expect):  # a backend whose refusal says nothing of the entry (allowed)
        try:
            return put_if(key, data, expect)
        except Conflict as exc:
            raise Conflict(str(exc)) from exc

    monkeypatch.setattr(memory.backend, "put_if", refusing_blind)
    reads: list[str] = []
    get_versioned = memory.get_versioned
    monkeypatch.setattr(memory, "get_versioned", lambda key: reads.append(key) or get_versioned(key))
    attempt = Attempt(memory, KEY, SIG, setup=SETUP)
    assert attempt.acquire(timeout=1) and attempt.passed and attempt.verdict().value == 9
    assert reads == [KEY + ".info"]  # the attempt read it itself


# -- S3: each request of an attempt, counted by a proxy in front of the moto server -------------------------
DEAD_HOLDER = """
import os, sys
from scout_persist.attempt import Attempt, JobSetup
from scout_persist.store import Store
attempt = Attempt(Store(sys.argv[1]), sys.argv[2], setup=JobSetup("W", "square", "integer"))
assert attempt.acquire(timeout=30) and attempt.writer is not None
os._exit(0)  # dies holding the lease: its .info stays `start`
"""


@pytest.fixture
def s3(s3_url, s3_endpoint):
    """An S3 store whose every request goes through a counting proxy (botocore tries once: one request, one line),
    seen by a process that has never looked at it."""
    presence.forget_all()
    proxy = FaultyProxy(s3_endpoint).start()
    yield Store(s3_url, endpoint_url=proxy.url, config_kwargs={"retries": {"max_attempts": 1}}), proxy
    proxy.stop()


def _requests(proxy: FaultyProxy, start: int) -> list[str]:
    """``STATUS METHOD name`` of each request since ``start`` (``name``: the object's last path part)."""
    out = []
    for line in proxy.answered(start):
        status, method, target = line.split(" ", 2)
        out.append(f"{status} {method} {target.split('?')[0].rsplit('/', 1)[1]}")
    return out


NEW_JOB = ["200 PUT Default.info", "200 PUT Default", "200 PUT Default.info"]  # create start, result, done
HIT = ["200 GET Default.info", "200 GET Default"]


@pytest.mark.s3
def test_on_s3_a_new_job_is_three_puts_and_a_hit_two_gets(s3):
    store, proxy = s3
    committed(store)  # the create of `start` is the lookup: nothing read before it
    assert _requests(proxy, 0) == NEW_JOB
    info = json.loads(store.get(KEY + ".info"))
    assert info["status"] == "done" and info["lease"]["fence"] == 1
    start = len(proxy.log)
    hit = Attempt(store, KEY, SIG, setup=SETUP)
    assert hit.acquire(timeout=1) and hit.passed and hit.verdict().value == 9
    assert _requests(proxy, start) == HIT  # a job this process saw: read first, nothing written


@pytest.mark.s3
def test_on_s3_a_process_new_to_the_store_hits_after_a_refused_create(s3):
    store, proxy = s3
    committed(store)
    before = store.get(KEY + ".info")
    presence.forget_all()  # another process, which cannot know the job exists
    start = len(proxy.log)
    hit = Attempt(store, KEY, SIG, setup=SETUP)
    assert hit.acquire(timeout=1) and hit.passed and hit.verdict().value == 9
    # the refused create (412: nothing written) and the .info as S3 read it back, then the result
    assert _requests(proxy, start) == ["412 PUT Default.info", *HIT]
    assert store.get(KEY + ".info") == before
    presence.forget_all()
    start = len(proxy.log)
    reader = Attempt(store, KEY, SIG)  # no setup: it cannot create the job, so it reads first
    assert reader.acquire(timeout=1) and reader.verdict().value == 9
    assert _requests(proxy, start) == HIT


@pytest.mark.s3
def test_on_s3_a_create_refused_by_a_live_holder_waits_for_it_then_hits(s3):
    store, proxy = s3
    holder = Attempt(store, KEY, SIG, setup=SETUP)
    assert holder.acquire(timeout=1)
    presence.forget_all()
    start = len(proxy.log)
    waiter = Attempt(store, KEY, SIG, setup=SETUP)
    assert not waiter.acquire(timeout=0.6)  # refused, then polls the holder's .info, and gives up
    seen = _requests(proxy, start)
    assert seen[:2] == ["412 PUT Default.info", "200 GET Default.info"] and len(seen) >= 3
    assert set(seen[2:]) == {"200 GET Default.info"}  # polls read; nothing written over the holder
    assert json.loads(store.get(KEY + ".info"))["status"] == "start"
    assert holder.commit(9) == 9
    holder.release()
    start = len(proxy.log)
    assert waiter.acquire(timeout=5) and waiter.passed and waiter.verdict().value == 9
    assert _requests(proxy, start) == HIT


@pytest.mark.s3
def test_on_s3_an_expired_lease_is_taken_over_after_the_refused_create(s3, s3_url):
    store, proxy = s3
    subprocess.run([sys.executable, "-c", DEAD_HOLDER, s3_url, KEY], check=True, timeout=120)
    assert json.loads(store.get(KEY + ".info"))["status"] == "start"
    start = len(proxy.log)
    taker = Attempt(store, KEY, SIG, setup=SETUP)
    assert taker.acquire(timeout=10) and taker.writer is not None
    assert taker.commit(9) == 9
    taker.release()
    assert _requests(proxy, start) == [
        "412 PUT Default.info",  # the create: a job is there
        "200 GET Default.info",  # as S3 read it back: `start`, its holder dead
        "200 PUT Default.info",  # taken over: If-Match on that version
        "404 GET Default",  # the dead holder may have left a result: its version, for the fenced result write
        "200 PUT Default",
        "200 PUT Default.info",
    ]
    info = json.loads(store.get(KEY + ".info"))
    assert info["status"] == "done" and info["lease"]["fence"] == 2


@pytest.mark.s3
def test_on_s3_a_refused_create_that_then_finds_nothing_creates_again(s3):
    store, proxy = s3
    proxy.add_rule("fail", method="PUT", path=r"Default\.info", status=412)  # refused, and gone when read back
    committed(store)
    assert _requests(proxy, 0) == ["412 PUT Default.info", "404 GET Default.info", *NEW_JOB]
    assert json.loads(store.get(KEY + ".info"))["lease"]["fence"] == 1


@pytest.mark.s3
@pytest.mark.parametrize("action", ["fail_after_apply", "drop_after_apply"])
def test_on_s3_a_create_whose_reply_is_lost_is_recognised_as_the_acquisition(s3, action):
    store, proxy = s3
    rule = proxy.add_rule(action, method="PUT", path=r"Default\.info")
    committed(store)
    assert rule.hits == 1
    seen = _requests(proxy, 0)
    # (s3fs may send the PUT again, which S3 refuses: the entry is there); read back, it is its own bytes
    assert seen[0].endswith("PUT Default.info") and "200 GET Default.info" in seen and seen[-2:] == NEW_JOB[1:]
    assert not any(line.startswith("200 PUT Default.info") for line in seen[:-1])  # never written twice
    info = json.loads(store.get(KEY + ".info"))
    assert info["status"] == "done" and info["lease"]["fence"] == 1


# -- --why says what the attempt says ----------------------------------------------------------------------
def test_why_says_what_the_attempt_says_on_every_fixture_job(relocated_jobs, manifest):
    store = Store(str(relocated_jobs))
    compared = 0
    for rel, step in manifest["steps"].items():
        if rel.startswith("{INPUT_FILES}") or not os.path.exists(relocated_jobs / f"{rel}.info"):
            continue
        ref = JobRef(store, step["path"])
        info = loads_info(store.get(ref.info_key))
        reused, lines = explain(ref, info, [])
        verdict = Attempt(store, ref.key).verdict(decode=False)
        assert reused == isinstance(verdict, Served), (rel, lines, verdict)
        if isinstance(verdict, Miss):
            assert lines[0].startswith("would rerun: " + verdict.message), (rel, lines, verdict)
        same = judge(store, ref.key, info, decode=False)  # the rule itself, on the .info --why read
        assert type(same) is type(verdict)
        compared += 1
    assert compared >= 160, compared


def test_the_verdict_and_job_load_agree_on_every_done_fixture_job(relocated_jobs, manifest):
    store = Store(str(relocated_jobs))
    for rel, step in manifest["steps"].items():
        if step.get("status") != "done" or not step["result_file_exists"]:
            continue
        verdict = Attempt(store, step["path"], expiration=Expiry.IGNORED).verdict()
        assert isinstance(verdict, Served), (rel, verdict)
        loaded = Job(Path(relocated_jobs) / rel).load()
        assert type(loaded) is type(verdict.value), rel


# -- what a job costs in file-system operations (local disks) --------------------------------------------------------
def _named(store: Store, ops: list, key: str) -> list[tuple[str, str]]:
    """``ops`` (tests/fs_ops.py) with each path named by what it is for job ``key``."""
    folder, base = store.path(key).rsplit("/", 1)
    lock = store.path(lock_key_for(store.path(key)))
    out = []
    for op, path in ops:
        path = str(path)
        name = (
            "info" if path == store.path(key) + ".info"
            else "result" if path == store.path(key)
            else "info temp" if path.startswith(folder + "/.tmp_mv.") and path.endswith(base + ".info")
            else "result temp" if path.startswith(folder + "/.tmp_mv.") and path.endswith(base)
            else "lock" if path == lock
            else "lock temp" if path.startswith(lock.rsplit("/", 1)[0] + "/.") and path.endswith(".lck")
            else "pickle key" if path.endswith("pickle.key")
            else "cwd" if op == "getcwd"
            else path
        )  # fmt: skip
        out.append((op, name))
    return out


NEW_JOB_OPS = [
    ("open", "info"),  # the pass check: no job
    ("getcwd", "cwd"),  # where a Ruby process started here would lock (scout_persist.lock_folder)
    ("open", "lock temp"),  # Ruby's lock protocol: a complete temporary entry, hard-linked to the lock's name
    ("link", "lock temp"),
    ("unlink", "lock temp"),
    ("open", "info"),  # under the lock: still no job (this one read serves the handover and the verdict)
    ("open", "info temp"),  # start
    ("replace", "info temp"),
    ("stat", "pickle key"),  # checked at every use (scout_persist.pickle_key)
    ("open", "result temp"),  # the result, unsynced: a pickle every reader checks against .info
    ("replace", "result temp"),
    ("open", "info temp"),  # done: the commit point
    ("replace", "info temp"),
    ("unlink", "lock"),  # released without reading it back: won moments ago (locks.FRESH)
]


def test_a_new_job_costs_its_three_writes_a_lock_and_two_looks_at_its_info(store):
    setup = JobSetup("W", "square", None, inputs=[3], input_names=["x"])  # any Python value: a pickle
    committed(store, 4, setup=setup, key=KEY + "_first")  # folders made, lock folder swept, key made: steady state
    with fs_ops.counting() as ops:
        committed(store, 9, setup=setup)
    assert _named(store, ops, KEY) == NEW_JOB_OPS


def test_a_hit_is_one_info_read_and_one_result_read_on_disk_and_nothing_else(store):
    committed(store)  # a Scout type (integer): no pickle key to check
    with fs_ops.counting() as ops:
        attempt = Attempt(store, KEY, SIG)
        assert attempt.acquire(timeout=1) and attempt.verdict().value == 9
        attempt.release()
    assert _named(store, ops, KEY) == [("open", "info"), ("open", "result")]
    pickled = JobSetup("W", "square", None, inputs=[3], input_names=["x"])
    committed(store, {"a": [1.5]}, setup=pickled, key=KEY + "_pickled")
    with fs_ops.counting() as ops:
        attempt = Attempt(store, KEY + "_pickled", SIG)
        assert attempt.acquire(timeout=1) and attempt.verdict().value == {"a": [1.5]}
    assert _named(store, ops, KEY + "_pickled") == [("open", "info"), ("open", "result"), ("stat", "pickle key")]


def test_a_hit_records_its_use_at_most_once_an_hour_on_the_file_it_read(store):
    committed(store)
    path = store.path(KEY)
    os.utime(path, (1_000_000, 1_000_000))  # last used long ago
    with fs_ops.counting() as ops:
        assert Attempt(store, KEY, SIG).verdict().value == 9
    st = os.stat(path)
    assert st.st_mtime == 1_000_000 and st.st_atime > 1_000_000  # a use recorded; the time Ruby compares kept
    assert [op for op, _ in ops] == ["open", "open", "utime"]  # on the open file: no second lookup
    with fs_ops.counting() as ops:
        assert Attempt(store, KEY, SIG).verdict().value == 9
    assert [op for op, _ in ops] == ["open", "open"]  # used a moment ago: nothing to record
