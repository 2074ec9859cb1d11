"""Job reading: addressing, legacy rbbt jobs, compressed results, and hostile trees (never a write outside the root)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from scout_persist import Job, ruby_marshal
from scout_persist.errors import (
    CorruptPayloadError,
    InfoFormatError,
    JobFailed,
    JobNotFound,
    ScoutPersistError,
    UnsafePathError,
)
from scout_persist.info import dumps_info
from scout_persist.rubyvalues import Symbol
from scout_persist.store import Store

BAKE = "var/jobs/Baking/bake_muffin_tray/Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"
ERROR = "var/jobs/ReturnCases/ret_error/Default"
FILES = "var/jobs/ReturnCases/with_files/Default"


def snapshot(top: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(top))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes()
    return out


@pytest.fixture
def tree(relocated_jobs):
    """The relocated fixture root; every test that uses it also checks that reading wrote nothing anywhere."""
    return relocated_jobs


@contextmanager
def no_writes(root: Path):
    """Nothing in the folder holding ``root`` (the root and everything beside it) changes inside the block."""
    top = root.parent.parent
    before = snapshot(top)
    yield
    assert snapshot(top) == before, "a read-only operation wrote files"


def test_addressing(tree):
    job = Job(tree / BAKE)
    assert job.path == str(tree / BAKE) and job.key == BAKE
    assert job.name == "Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"
    assert (job.workflow, job.task_name, job.clean_name) == ("Baking", "bake_muffin_tray", "Blueberry muffin")
    assert Job(str(tree / BAKE) + ".info") == job == Job.at(Store(str(tree)), BAKE)
    assert Job(f"file://{tree / BAKE}").load() == job.load()
    assert job.provided_inputs == {"add_bluberries": True}  # provided to the top job, used by a dependency
    assert job.inputs == {}
    (dep,) = job.dependencies
    assert dep.inputs == {"add_bluberries": True} and dep.provided_inputs == {"add_bluberries": True}


def test_missing_jobs(tree):
    job = Job(tree / "var/jobs/W/t/nothing")
    assert job.status == "missing" and job.recorded_status == "" and not job.done and job.info == {}
    with pytest.raises(JobNotFound, match="no result"):
        job.load()
    with pytest.raises(JobNotFound, match="not under a Scout jobs directory"):
        Job(tree / "elsewhere/file")


def test_truncated_info(tree):
    info = tree / (BAKE + ".info")
    info.write_bytes(info.read_bytes()[:57])
    with no_writes(tree):
        job = Job(tree / BAKE)
        assert job.status == "noinfo"  # as Ruby reports it
        with pytest.raises(InfoFormatError, match=r"Blueberry muffin_9aff.*\.info"):
            job.read_info(strict=True)
        with pytest.raises(InfoFormatError):
            Job(tree / BAKE, strict=True).info
        with pytest.raises(InfoFormatError, match="type is unknown"):
            job.load()
        assert job.load(type="string").startswith("Baking")
        assert job.dependencies == []


def test_exception_blob_not_from_scout(tree):
    path = tree / (ERROR + ".info")
    info = json.loads(path.read_bytes())
    for blob in (
        base64.encodebytes(ruby_marshal.dumps([1, Symbol("not_an_exception")])).decode(),
        base64.encodebytes(b"\x04\x08o:\x13ScoutException\x08:\tmesg").decode(),  # truncated
        base64.encodebytes(b"random bytes, not Marshal").decode(),
    ):
        info["exception"] = blob
        path.write_bytes(dumps_info(info))
        with no_writes(tree):
            job = Job(tree / ERROR)
            with pytest.raises(CorruptPayloadError):
                job.exception
            with pytest.raises(JobFailed, match="Planned failure"):  # falls back to the last message
                job.load()


def test_dependency_escaping_the_root(tree):
    path = tree / (BAKE + ".info")
    info = json.loads(path.read_bytes())
    info["dependencies"] = ["/home/scout/.scout/var/jobs/Baking/t/../../../../../../etc/passwd"]
    info["inputs"] = ["/home/scout/.scout/var/jobs/../../../../etc/shadow"]
    info["input_names"] = ["x"]
    path.write_bytes(dumps_info(info))
    with no_writes(tree):
        job = Job(tree / BAKE)
        with pytest.raises(UnsafePathError, match=r"escapes the Scout root.*'\.\.'"):
            job.dependencies
    assert job.inputs == {"x": "/home/scout/.scout/var/jobs/../../../../etc/shadow"}  # kept, never followed


def test_job_paths_outside_the_root(tree):
    with no_writes(tree):
        _paths_outside_the_root(tree)


def _paths_outside_the_root(tree):
    store = Store(str(tree))
    for key in ("../outside", "var/jobs/W/t/../../../../x", "/etc/passwd", "var/jobs/W/t/\x00x"):
        with pytest.raises(UnsafePathError):
            Job.at(store, key)
    with pytest.raises(ScoutPersistError):
        Job(str(tree) + "/var/jobs/W/t/../../../../../etc/passwd")
    job = Job(tree / FILES)
    for name in ("../Default", "../../../../../../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(UnsafePathError):
            job.file(name)


def test_files_symlink_out_of_the_root(tree, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    link = tree / FILES.replace("Default", "Default.files") / "leak.txt"
    os.symlink(secret, link)
    with no_writes(tree):
        job = Job(tree / FILES)
        assert "leak.txt" in job.files()
        with pytest.raises(UnsafePathError, match="outside the store root"):
            job.file("leak.txt")
        with pytest.raises(UnsafePathError):
            job.read_file("leak.txt")
        assert job.read_file("sub/y.json")  # ordinary files still read


def test_files_symlink_loop(tree):
    files = tree / (FILES + ".files")
    os.symlink("loop_b", files / "loop_a")
    os.symlink("loop_a", files / "loop_b")
    with no_writes(tree):
        job = Job(tree / FILES)
        with pytest.raises(UnsafePathError, match="looping symlink"):
            job.files()
        with pytest.raises(UnsafePathError):
            job.file("loop_a")


def test_files_directory_linked_to_itself_is_not_followed(tree):
    files = tree / (FILES + ".files")
    os.symlink(".", files / "self")
    assert Job(tree / FILES).files() == ["sub/y.json", "x.txt"]


def test_gz_result(tree):
    src = tree / "var/jobs/ReturnCases/ret_integer_array/Default"
    gz = Path(str(src) + ".gz")
    gz.write_bytes(gzip.compress(src.read_bytes()))
    src.unlink()
    job = Job(src)
    assert job.done and job.load() == [1, 2, 3]


def test_rbbt_legacy_job(tmp_path):
    """An rbbt-util era job: Marshal info, String keys, Symbol values, triples, an exception map."""
    root = tmp_path / ".rbbt"
    store = Store(str(root))
    old = "/home/someone/.rbbt/var/jobs/Old/base/Default"
    store.put("var/jobs/Old/base/Default", b"7")
    store.put(
        "var/jobs/Old/base/Default.info",
        ruby_marshal.dumps({"status": Symbol("done"), "result_type": Symbol("integer")}),
    )
    store.put("var/jobs/Old/top/Default", b"")
    store.put(
        "var/jobs/Old/top/Default.info",
        ruby_marshal.dumps(
            {
                "status": Symbol("error"),
                "pid": "99",
                "inputs": {"n": 3},
                "dependencies": [["base", "Default", old]],
                "exception": {"class": "RuntimeError", "message": "old failure", "backtrace": ["x.rb:1"]},
            }
        ),
    )
    store.delete("var/jobs/Old/top/Default")
    job = Job(root / "var/jobs/Old/top/Default")
    assert job.status == "error" and job.info["pid"] == 99
    assert job.inputs == {"n": 3}
    (dep,) = job.dependencies
    assert dep.key == "var/jobs/Old/base/Default" and dep.load() == 7
    exc = job.exception
    assert (exc.ruby_class, exc.message, exc.backtrace) == ("RuntimeError", "old failure", ["x.rb:1"])
    with pytest.raises(JobFailed, match="old failure"):
        job.load()


def test_copied_tree_keeps_working_after_a_second_move(relocated_jobs, tmp_path):
    again = tmp_path / "moved-again"
    shutil.copytree(relocated_jobs, again, symlinks=True)
    job = Job(again / BAKE)
    chain = [job.key]
    while job.dependencies:
        job = job.dependencies[0]
        chain.append(job.key)
        assert job.path.startswith(str(again))
    assert chain[-1] == "var/jobs/Baking/whisk_eggs/Blueberry muffin"
