"""Hostile inputs: a clear ScoutPersistError every time, and nothing ever written outside the store root.

Each case runs inside ``root = <tmp>/sandbox/root``; the sandbox is listed before and after, so a write
anywhere outside the root (a sibling, the parent, an absolute path) fails the test.
"""

from __future__ import annotations

import base64
import os

import pytest

from scout_persist.errors import ScoutPersistError
from scout_persist.job import Job, JobWriter
from scout_persist.persist_cache import persist
from scout_persist.store import Store
from scout_persist.workflow import Workflow

BAD_NAMES = ["../escape", "a/../../escape", "/etc/passwd", "nul\0byte", ".."]


@pytest.fixture
def sandbox(tmp_path):
    root = tmp_path / "sandbox" / "root"
    root.mkdir(parents=True)
    (tmp_path / "sandbox" / "outside.txt").write_text("untouched")

    def outside():
        return sorted(
            str(p.relative_to(tmp_path))
            for p in (tmp_path / "sandbox").rglob("*")
            if root not in p.parents and p != root
        )

    before = outside()
    yield root
    assert outside() == before, "something was written outside the store root"
    assert (tmp_path / "sandbox" / "outside.txt").read_text() == "untouched"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_job_names(sandbox, name):
    wf = Workflow("Hostile")
    wf.task("t", "string")
    with pytest.raises(ScoutPersistError) as err:
        spec = wf.job("t", name)
        JobWriter(Store(str(sandbox)), spec).setup()
    assert repr(name)[1:-1] in str(err.value) or name in str(err.value)


@pytest.mark.parametrize("key", ["var/jobs/W/t/../../../../escape", "/tmp/abs", "var/jobs/W/t/a\0b"])
def test_bad_job_keys(sandbox, key):
    with pytest.raises(ScoutPersistError):
        JobWriter(Store(str(sandbox)), key, type="text").setup()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_persist_names_are_refused_or_mangled_inside_the_root(sandbox, name):
    """Scout mangles '/' in persist names (SCOUT_FORMAT.md §9.3), so most hostile names become harmless file names."""
    try:
        where = persist(name, "text", lambda: "x", store=str(sandbox), no_load=True)
    except ScoutPersistError:
        return
    assert os.path.realpath(str(where)).startswith(str(sandbox) + os.sep)


def test_very_long_unicode_job_name(sandbox):
    """Ruby cuts ids to 150 characters, which can exceed 255 bytes: Ruby fails to write, we fail clearly."""
    wf = Workflow("Hostile")
    wf.task("t", "string")
    spec = wf.job("t", "ñandú🦤" * 200)
    assert len(spec.key.rsplit("/", 1)[1].encode()) > 255  # the Ruby-exact name really is too long
    with pytest.raises(ScoutPersistError) as err:
        JobWriter(Store(str(sandbox)), spec).run(lambda: "ok")
    assert "too long" in str(err.value)


@pytest.mark.parametrize("content", [b'{"status": "done", "pid"', b"\x04\x08{\x06", b"\xff\xfe garbage", b"[1, 2]"])
def test_malformed_info(sandbox, content):
    store = Store(str(sandbox))
    JobWriter(store, "var/jobs/W/t/job", type="text").run(lambda: "kept")
    (sandbox / "var/jobs/W/t/job.info").write_bytes(content)
    job = Job.at(store, "var/jobs/W/t/job")
    assert job.status in ("noinfo", "")  # Ruby's reading: the job is not done
    with pytest.raises(ScoutPersistError) as err:
        job.read_info(strict=True)
    assert "job.info" in str(err.value)


def test_marshal_blob_that_is_not_scouts(sandbox):
    store = Store(str(sandbox))
    writer = JobWriter(store, "var/jobs/W/t/job", type="text")
    try:
        writer.run(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    info_path = sandbox / "var/jobs/W/t/job.info"
    text = info_path.read_text()
    import json

    info = json.loads(text)
    info["exception"] = base64.b64encode(b"\x04\x08[\x07i\x06i\x07").decode()  # a Marshal array, not an exception
    info_path.write_text(json.dumps(info))
    with pytest.raises(ScoutPersistError):
        Job.at(store, "var/jobs/W/t/job").exception
    info["exception"] = "not base64 at all!!"
    info_path.write_text(json.dumps(info))
    with pytest.raises(ScoutPersistError):
        Job.at(store, "var/jobs/W/t/job").exception


def test_symlinks_out_of_the_root_are_refused(sandbox, tmp_path):
    store = Store(str(sandbox))
    writer = JobWriter(store, "var/jobs/W/t/job", type="text")
    writer.setup()
    writer.start()
    writer.write_file("inside.txt", b"fine")
    writer.save("result")
    writer.done()
    files = sandbox / "var/jobs/W/t/job.files"
    os.symlink(tmp_path / "sandbox" / "outside.txt", files / "leak.txt")
    os.symlink(files / "loop", files / "loop")
    job = Job.at(store, "var/jobs/W/t/job")
    with pytest.raises(ScoutPersistError):
        job.file("leak.txt")
    with pytest.raises(ScoutPersistError):
        job.read_file("loop")
    assert job.read_file("inside.txt") == b"fine"
    # Writing the same name replaces the link inside the root (atomic rename); it never writes through it.
    JobWriter(store, "var/jobs/W/t/job", type="text").write_file("leak.txt", b"replaced")
    assert not os.path.islink(files / "leak.txt") and (files / "leak.txt").read_bytes() == b"replaced"


def test_empty_info_is_a_job_that_is_not_done(sandbox):
    store = Store(str(sandbox))
    JobWriter(store, "var/jobs/W/t/job", type="text").run(lambda: "kept")
    (sandbox / "var/jobs/W/t/job.info").write_bytes(b"")
    assert Job.at(store, "var/jobs/W/t/job").status != "done"
