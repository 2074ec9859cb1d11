"""A Ruby-written dependency counts by its result bytes: a timing rewrite of its ``.info`` is no change, new bytes
are (even with the size and modification time put back)."""

from __future__ import annotations

import json
import os

import pytest

from scout_persist import signature as sig
from scout_persist.info import InfoFile
from scout_persist.result_token import ABSENT, file_digest, ruby_result_token
from scout_persist.store import Store

KEY = "var/jobs/Race/work/j1"


@pytest.fixture
def ruby_job(tmp_path) -> Store:
    """A job as Ruby writes it: the result, and a .info with no checksum."""
    store = Store(str(tmp_path / "root"))
    info = InfoFile(store, KEY)
    info.setup(task_name="work", workflow="Race", type="string")
    info.start()
    store.put(KEY, b"v:ruby")
    info.done()
    return store


def test_a_timing_rewrite_of_a_ruby_dependency_keeps_its_token(ruby_job):
    store = ruby_job
    before = sig.dependency_token(KEY, json.loads(store.get(KEY + ".info")), store)
    info = InfoFile(store, KEY + ".info")
    info.set("end", "2031-01-01 00:00:00 +0000")  # what a second Ruby process that waited rewrites
    info.set("time_elapsed", 99.5)
    rewritten = json.loads(store.get(KEY + ".info"))
    assert rewritten["end"] == "2031-01-01 00:00:00 +0000"
    assert sig.dependency_token(KEY, rewritten, store) == before
    assert before.startswith(KEY + "=ruby:sha256:")


def test_new_bytes_of_a_ruby_dependency_change_its_token_even_with_size_and_mtime_put_back(ruby_job):
    store = ruby_job
    info = json.loads(store.get(KEY + ".info"))
    before = sig.dependency_token(KEY, info, store)
    path = store.path(KEY)
    st = os.stat(path)
    with open(path, "r+b") as fh:  # same size, in place
        fh.write(b"v:RUBY")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the modification time put back
    assert sig.dependency_token(KEY, info, store) != before


def test_tokens_of_missing_and_folder_results(tmp_path):
    store = Store(str(tmp_path / "root"))
    assert ruby_result_token(store, KEY, {}) == ABSENT  # Ruby's task that returned nothing
    store.put(KEY + "/a.txt", b"a")
    store.put(KEY + "/sub/b.txt", b"b")
    folder = ruby_result_token(store, KEY, {})
    assert folder.startswith("ruby:tree:")
    store.put(KEY + "/sub/b.txt", b"B")
    assert ruby_result_token(store, KEY, {}) != folder


def test_the_digest_is_read_once_per_version_of_the_file(tmp_path):
    path = tmp_path / "result"
    path.write_bytes(b"x" * 100)
    first = file_digest(str(path))
    from scout_persist import result_token

    assert result_token._cache[str(path)][1] == first  # cached under its stat key
    assert file_digest(str(path)) == first
    path.write_bytes(b"y" * 100)
    assert file_digest(str(path)) != first
    assert file_digest(str(tmp_path / "missing")) is None


def test_without_a_store_the_token_is_the_older_end_time():
    ruby = {"status": "done", "end": "2026-11-22 14:53:39 +0000"}
    assert sig.dependency_token("var/jobs/W/t/x", ruby) == "var/jobs/W/t/x=legacy:2026-11-22 14:53:39 +0000"


def test_on_object_stores_the_token_is_the_digest_of_the_bytes(s3_url):
    store = Store(s3_url)
    assert ruby_result_token(store, KEY, {}) == ABSENT
    store.put(KEY, b"v:ruby")
    token = ruby_result_token(store, KEY, {})
    store.put(KEY, b"v:other")
    assert ruby_result_token(store, KEY, {}) != token
