"""Write-side path checks (#12 item 5): no local write follows a symlink below the store root to outside it.

One test per write path: Store.put / writer / create / delete, lock files, a whole JobWriter lifecycle, the job's
``.files/`` (write_file and file), persist() entries and registry blobs. Links that stay inside the root, and a root
that is itself a link, keep working.
"""

from __future__ import annotations

import os

import pytest

from scout_persist.errors import UnsafePathError
from scout_persist.job import Job, JobWriter
from scout_persist.locks import Lock
from scout_persist.persist_cache import persist
from scout_persist.registry import Registry
from scout_persist.store import Store

RULE = "links below the store root may not lead out of it"


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def outside(tmp_path):
    o = tmp_path / "outside"
    o.mkdir()
    return o


def nothing_in(folder) -> bool:
    return not any(folder.rglob("*"))


def link_workflow(root, outside, workflow="W"):
    """``var/jobs/<workflow>`` as a symlink to a folder outside the root (the case from the issue)."""
    (root / "var" / "jobs").mkdir(parents=True)
    os.symlink(outside, root / "var" / "jobs" / workflow)


def assert_refused(err, *names):
    text = str(err.value)
    assert RULE in text and "outside the store root" in text, text
    for name in names:
        assert str(name) in text, (name, text)


# -- Store primitives -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["put", "writer", "create"])
def test_store_writes_do_not_follow_a_symlinked_folder_out_of_the_root(root, outside, operation):
    link_workflow(root, outside)
    store = Store(str(root))
    key = "var/jobs/W/task/Default"
    with pytest.raises(UnsafePathError) as err:
        if operation == "put":
            store.put(key, b"x")
        elif operation == "writer":
            with store.writer(key) as fh:
                fh.write(b"x")
        else:
            store.create(key, b"x")
    assert_refused(err, key, root / "var/jobs/W", outside)
    assert nothing_in(outside)  # not even the task folder was created out there


def test_store_delete_does_not_follow_a_symlinked_folder_and_removes_links_themselves(root, outside):
    (outside / "t").mkdir()
    (outside / "t" / "precious").write_bytes(b"keep me")
    link_workflow(root, outside)
    store = Store(str(root))
    with pytest.raises(UnsafePathError) as err:
        store.delete("var/jobs/W/t/precious")
    assert_refused(err, "var/jobs/W/t/precious")
    with pytest.raises(UnsafePathError):
        store.delete("var/jobs/W/t", recursive=True)
    assert (outside / "t" / "precious").read_bytes() == b"keep me"
    # the link itself is below a real folder: deleting it removes the link, never what it points at
    store.delete("var/jobs/W", recursive=True)
    assert not os.path.lexists(root / "var/jobs/W") and (outside / "t" / "precious").exists()


def test_a_link_that_stays_inside_the_root_is_followed(root):
    (root / "shared" / "W").mkdir(parents=True)
    (root / "var" / "jobs").mkdir(parents=True)
    os.symlink("../../shared/W", root / "var/jobs/W")  # relative, resolves inside the root
    store = Store(str(root))
    store.put("var/jobs/W/t/a", b"1")
    assert store.create("var/jobs/W/t/b", b"2")
    assert (root / "shared/W/t/a").read_bytes() == b"1" and (root / "shared/W/t/b").read_bytes() == b"2"


def test_the_root_itself_may_be_a_symlink(tmp_path):
    real = tmp_path / "big-disk" / "scout"
    real.mkdir(parents=True)
    os.symlink(real, tmp_path / "scout-link")
    store = Store(str(tmp_path / "scout-link"))
    JobWriter(store, "var/jobs/W/t/Default", type="json").run(lambda: {"ok": True})
    assert Job(str(tmp_path / "scout-link/var/jobs/W/t/Default")).load() == {"ok": True}
    assert (real / "var/jobs/W/t/Default").exists()


def test_a_child_store_keeps_the_parents_boundary(root, outside):
    link_workflow(root, outside)
    child = Store(str(root)).child("var/jobs")
    with pytest.raises(UnsafePathError) as err:
        child.put("W/t/x", b"x")
    assert_refused(err, outside)
    assert nothing_in(outside)


# -- locks -------------------------------------------------------------------------------------------------------------
def test_lock_files_are_not_created_through_a_symlink(root, outside):
    (root / "tmp").mkdir()
    os.symlink(outside, root / "tmp" / "persist_locks")
    store = Store(str(root))
    with pytest.raises(UnsafePathError) as err:
        store.create("tmp/persist_locks/job.lock", b"host: h\n")
    assert_refused(err, "tmp/persist_locks/job.lock")
    with pytest.raises(UnsafePathError):
        Lock(store, "tmp/persist_locks/other.lock", timeout=0).acquire(timeout=0)
    assert nothing_in(outside)


# -- jobs --------------------------------------------------------------------------------------------------------------
def test_a_symlinked_workflow_folder_gets_no_job_written_outside(root, outside):
    link_workflow(root, outside, "Baking")
    writer = JobWriter(Store(str(root)), "var/jobs/Baking/bake/Default", type="json")
    with pytest.raises(UnsafePathError) as err:
        writer.run(lambda: {"muffins": 12})
    assert_refused(err, "Baking")
    assert nothing_in(outside)


def test_job_files_do_not_follow_a_symlink_out_of_the_root(root, outside):
    store = Store(str(root))
    writer = JobWriter(store, "var/jobs/W/t/Default", type="json")
    writer.setup()
    writer.start()
    files = root / "var/jobs/W/t/Default.files"
    files.mkdir()
    os.symlink(outside, files / "plots")
    with pytest.raises(UnsafePathError) as err:
        writer.write_file("plots/fig.png", b"\x89PNG")
    assert "outside the store root" in str(err.value) and "plots/fig.png" in str(err.value)
    with pytest.raises(UnsafePathError) as err:
        writer.file("plots/deeper/fig.png")
    assert "outside the store root" in str(err.value) and str(outside) in str(err.value)
    assert nothing_in(outside)  # neither the file nor the folders of file()
    # a file name that is itself a link to outside: file() refuses it (the task would write through it) and
    # write_file() replaces the link by an atomic rename, never writing through it
    os.symlink(outside / "target.txt", files / "leak.txt")
    with pytest.raises(UnsafePathError) as err:
        writer.file("leak.txt")
    assert "leak.txt" in str(err.value) and "outside the store root" in str(err.value)
    writer.write_file("leak.txt", b"replaced")
    assert not (files / "leak.txt").is_symlink() and (files / "leak.txt").read_bytes() == b"replaced"
    assert not (outside / "target.txt").exists()
    # ordinary files still work
    assert writer.write_file("ok/fig.png", b"png") == str(files / "ok/fig.png")
    assert writer.file("ok/other.csv") == str(files / "ok/other.csv") and (files / "ok").is_dir()


def test_persist_entries_are_not_written_through_a_symlink(root, outside):
    (root / "var" / "cache").mkdir(parents=True)
    os.symlink(outside, root / "var" / "cache" / "persistence")
    with pytest.raises(UnsafePathError) as err:
        persist("muffins", "json", lambda: [1, 2], store=Store(str(root)))
    assert "outside the store root" in str(err.value)
    assert nothing_in(outside)


def test_registry_blobs_are_not_written_through_a_symlink(root, outside):
    (root / "artifacts").mkdir()
    os.symlink(outside, root / "artifacts" / "_blobs")
    with pytest.raises(UnsafePathError) as err:
        Registry(str(root)).log_artifact("model", {"weights.bin": b"\x00" * 10})
    assert_refused(err, "_blobs")
    assert nothing_in(outside)
