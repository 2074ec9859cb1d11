"""What a process expects of a job's .info before asking the store: absent at first, present once seen or written,
and per folder what the last job it knew nothing of turned out to be; one probe per folder, the looks that come while
its answer is on its way wait for it (bounded)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from scout_persist import presence

FOLDER = "var/jobs/W/square"


@pytest.fixture
def url() -> str:
    return f"s3://bucket-{uuid.uuid4().hex}/root"  # a store no other test has looked at


def _answered_probe(url: str, key: str, found: bool) -> None:
    assert not presence.expected(url, key)  # the folder's first look: the probe, expecting absent
    presence.looked(url, key, found)


def test_a_job_of_a_folder_never_looked_at_is_expected_absent(url):
    assert not presence.expected(url, f"{FOLDER}/a")


def test_a_job_seen_or_written_is_expected_present_until_seen_absent(url):
    _answered_probe(url, f"{FOLDER}/new", found=False)  # the folder's jobs are new...
    presence.wrote(url, f"{FOLDER}/b")
    assert presence.expected(url, f"{FOLDER}/b") and not presence.expected(url, f"{FOLDER}/c")  # ... not this one
    presence.looked(url, f"{FOLDER}/b", found=True)  # seen again (a known job: the folder learns nothing)
    assert presence.expected(url, f"{FOLDER}/b") and not presence.expected(url, f"{FOLDER}/c")
    presence.looked(url, f"{FOLDER}/b", found=False)  # deleted since (e.g. by `clean`)
    assert not presence.expected(url, f"{FOLDER}/b")


def test_a_folder_expects_what_its_last_unknown_job_turned_out_to_be(url):
    _answered_probe(url, f"{FOLDER}/a", found=True)  # a cached run: its jobs are there
    assert presence.expected(url, f"{FOLDER}/new")
    presence.looked(url, f"{FOLDER}/new", found=False)  # ... until one is not
    assert not presence.expected(url, f"{FOLDER}/other")
    presence.looked(url, f"{FOLDER}/a", found=True)  # a job known already teaches nothing of the others
    assert not presence.expected(url, f"{FOLDER}/other")
    assert not presence.expected(url, "var/jobs/W/cube/x")  # another folder (task) has its own history


def test_stores_are_apart_and_forget_all_is_a_process_new_to_them(url):
    presence.wrote(url, f"{FOLDER}/a")
    _answered_probe(url, f"{FOLDER}/b", found=True)
    other = url + "-other"
    assert not presence.expected(other, f"{FOLDER}/a")
    presence.forget_all()
    assert not presence.expected(url, f"{FOLDER}/a")


def test_looks_that_come_while_the_probe_is_on_its_way_wait_for_its_answer(url):
    assert not presence.expected(url, f"{FOLDER}/first")  # the probe
    answers: list[bool] = []
    waiters = [
        threading.Thread(target=lambda i=i: answers.append(presence.expected(url, f"{FOLDER}/{i}"))) for i in range(4)
    ]
    for t in waiters:
        t.start()
    time.sleep(0.2)
    assert answers == []  # waiting, not guessing
    presence.looked(url, f"{FOLDER}/first", found=True)
    for t in waiters:
        t.join(timeout=5)
    assert answers == [True] * 4


def test_a_probe_that_never_answers_holds_its_folder_up_only_for_probe_wait(url, monkeypatch):
    monkeypatch.setattr(presence, "PROBE_WAIT", 0.3)
    assert not presence.expected(url, f"{FOLDER}/lost")  # the probe; its request fails, no answer ever comes
    t0 = time.monotonic()
    assert not presence.expected(url, f"{FOLDER}/a")  # waited for it, then the default
    assert 0.2 <= time.monotonic() - t0 < 2.0
    t0 = time.monotonic()
    assert not presence.expected(url, f"{FOLDER}/b")  # the stale probe is replaced: this look probes, no wait
    assert time.monotonic() - t0 < 0.2


def test_a_look_with_a_deadline_waits_for_the_probe_no_longer_than_it(url):
    assert not presence.expected(url, f"{FOLDER}/first")  # the probe, still on its way
    t0 = time.monotonic()
    assert not presence.expected(url, f"{FOLDER}/a", wait=0.2)
    assert time.monotonic() - t0 < 1.0


def test_what_is_remembered_is_bounded(url, monkeypatch):
    monkeypatch.setattr(presence, "MAX_KNOWN", 3)
    monkeypatch.setattr(presence, "MAX_FOLDERS", 2)
    for i in range(5):
        presence.wrote(url, f"{FOLDER}/{i}")
    assert [(url, f"{FOLDER}/{i}") in presence._known for i in range(5)] == [False, False, True, True, True]
    for i in range(5):
        presence.looked(url, f"var/jobs/W/t{i}/x", found=False)
    assert [(url, f"var/jobs/W/t{i}") in presence._folders for i in range(5)] == [False, False, False, True, True]
