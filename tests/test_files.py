"""File outputs of a job (scout_persist.file_outputs through JobWriter.files and Job.files/open_file): staged, committed
into <job>.files/ with the job, listed with checksums in .info, read back verified, on local disks and S3; failed and
killed runs publish nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scout_persist.errors import CorruptPayloadError, InvalidInputError, KeyNotFound, UnsafePathError
from scout_persist.file_outputs import STAGE_DIR, clean_stages
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store

KEY = "var/jobs/W/report/Default"
HERE = Path(__file__).resolve().parent


def _writer(store: Store, key: str = KEY, type: str = "text") -> JobWriter:
    writer = JobWriter(store, key, type=type)
    writer.setup()
    writer.start()
    return writer


def _write_three(writer: JobWriter) -> None:
    files = writer.files
    files.put("counts.json", b'{"n": 3}')
    with files.open("sub/table.tsv", "w") as fh:
        fh.write("k\tv\n")
    with open(files.path("plots/fig.bin"), "wb") as fh:
        fh.write(bytes(range(256)))


def _check_committed(store: Store, job: Job) -> None:
    assert job.files() == ["counts.json", "plots/fig.bin", "sub/table.tsv"]
    manifest = job.info["files"]
    assert sorted(manifest) == job.files()
    assert manifest["plots/fig.bin"]["size"] == 256 and manifest["plots/fig.bin"]["checksum"].count(":") == 1
    assert job.read_file("plots/fig.bin") == bytes(range(256))
    with job.open_file("sub/table.tsv") as fh:
        assert fh.read() == b"k\tv\n"
    again = Job(job.path)  # a fresh reader by path or URL sees the same
    assert again.files() == job.files() and again.read_file("counts.json") == b'{"n": 3}'


def test_files_are_staged_then_committed_with_the_job(tmp_path):
    store = Store(str(tmp_path))
    writer = _writer(store)
    _write_three(writer)
    assert not (tmp_path / (KEY + ".files")).exists()  # nothing is visible before the commit
    assert writer.files.names() == ["counts.json", "plots/fig.bin", "sub/table.tsv"]
    writer.save("report")
    job = writer.done()
    _check_committed(store, job)
    assert sorted(p.name for p in (tmp_path / (KEY + ".files")).iterdir()) == ["counts.json", "plots", "sub"]
    assert not list((tmp_path / STAGE_DIR).iterdir())  # the stage became the files folder


@pytest.mark.s3
def test_files_are_committed_listed_and_read_back_on_s3(s3_url):
    store = Store(s3_url)
    writer = _writer(store)
    _write_three(writer)
    assert not store.exists(KEY + ".files")
    writer.save("report")
    job = writer.done()
    _check_committed(store, job)
    assert sorted(store.list(KEY + ".files")) == [f"{KEY}.files/{n}" for n in job.files()]
    # a rerun writing other files replaces the set: stale objects of the previous run are removed
    writer = _writer(store)
    writer.files.put("only.txt", b"1")
    writer.save("again")
    job = writer.done()
    assert job.files() == ["only.txt"] and list(store.list(KEY + ".files")) == [f"{KEY}.files/only.txt"]


def test_a_file_result_points_into_the_files_folder(tmp_path):
    store = Store(str(tmp_path))
    writer = _writer(store, type="file")
    staged = writer.files.put("result.tsv", b"k\tv\n")
    assert staged == str(tmp_path / (KEY + ".files/result.tsv"))  # where it will be
    writer.save(writer.files.path("result.tsv"))  # the local staging path, as a task returns it
    first = writer.value
    job = writer.done()
    assert (tmp_path / KEY).read_text() == str(tmp_path / (KEY + ".files/result.tsv"))  # Ruby's bytes
    assert first == job.load() == job.file("result.tsv")
    assert open(job.load()).read() == "k\tv\n"
    writer = _writer(store, key="var/jobs/W/many/Default", type="file_array")
    writer.files.put("a.txt", b"a")
    writer.files.put("b/c.txt", b"c")
    writer.save([writer.files.path("a.txt"), writer.files.location("b/c.txt")])
    job = writer.done()
    assert job.load() == [job.file("a.txt"), job.file("b/c.txt")] == writer.value


@pytest.mark.s3
def test_a_file_result_on_s3_is_the_url_of_the_file(s3_url):
    store = Store(s3_url)
    writer = _writer(store, type="file")
    writer.save(writer.files.path("out.txt") if writer.files.put("out.txt", b"x") else None)
    job = writer.done()
    assert job.load() == writer.value == f"{s3_url}/{KEY}.files/out.txt"
    assert Job(job.path).read_file("out.txt") == b"x"


def test_a_failed_run_publishes_nothing_and_drops_its_stage(tmp_path):
    store = Store(str(tmp_path))
    writer = _writer(store)
    writer.files.put("partial.txt", b"p")
    writer.error(RuntimeError("planned"))
    assert not (tmp_path / (KEY + ".files")).exists()
    assert not list((tmp_path / STAGE_DIR).iterdir())
    with pytest.raises(InvalidInputError, match="already committed or discarded; write files while the task runs"):
        writer.files.put("late.txt", b"l")


def test_reruns_replace_the_set_and_keep_ruby_files_alone(tmp_path, relocated_jobs):
    store = Store(str(tmp_path))
    writer = _writer(store)
    _write_three(writer)
    writer.save("one")
    writer.done()
    writer = _writer(store)
    writer.files.put("new.txt", b"n")
    writer.save("two")
    assert Job(str(tmp_path / KEY)).files() != ["new.txt"]  # not committed yet: the old folder is still there
    job = writer.done()
    assert job.files() == ["new.txt"] and os.listdir(tmp_path / (KEY + ".files")) == ["new.txt"]
    writer = _writer(store)
    writer.save("three, no files")
    job = writer.done()
    assert job.files() == [] and not (tmp_path / (KEY + ".files")).exists()  # ours, so removed
    # Ruby's .files folders (no manifest) are listed as they are
    ruby = Job(str(relocated_jobs / "var/jobs/ReturnCases/with_files/Default"))
    assert ruby.files() == ["sub/y.json", "x.txt"] and ruby.read_file("x.txt")


def test_committed_files_are_verified_when_read(tmp_path):
    store = Store(str(tmp_path))
    writer = _writer(store)
    _write_three(writer)
    writer.save("r")
    job = writer.done()
    target = tmp_path / (KEY + ".files/plots/fig.bin")
    target.write_bytes(bytes(range(255, -1, -1)))  # same size, other bytes
    with pytest.raises(CorruptPayloadError, match=r"fig.bin does not match the checksum the job's .info lists"):
        job.read_file("plots/fig.bin")
    target.write_bytes(b"short")
    with pytest.raises(CorruptPayloadError, match=r"holds 5 bytes but the job's .info lists 256"):
        job.open_file("plots/fig.bin")
    with pytest.raises(KeyNotFound, match=r"has no file 'missing.txt'; its files: counts.json, plots/fig.bin"):
        job.open_file("missing.txt")


def test_names_that_leave_the_files_folder_and_reading_modes_are_refused(tmp_path):
    writer = _writer(Store(str(tmp_path)))
    for bad, message in (
        ("../escape.txt", r"escapes the store root.*'\.\.' path segments"),
        ("/abs.txt", r"is absolute; keys are relative"),
        ("", r"empty file name for the files of job"),
    ):
        with pytest.raises(UnsafePathError, match=message):
            writer.files.path(bad)
    with pytest.raises(
        InvalidInputError,
        match=r"files.open\('x', 'rb'\): the files of a running job are for "
        r"writing.*Job\(path\).open_file",
    ):
        writer.files.open("x", "rb")


def _child(url: str, key: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE.parent / "integrations"), env.get("PYTHONPATH", "")]
    )
    return subprocess.Popen(
        [sys.executable, str(HERE / "files_child.py"), url, key, *extra], env=env, stdout=subprocess.PIPE, text=True
    )


def _kill_while_writing(url: str, key: str) -> int:
    child = _child(url, key)
    try:
        assert child.stdout.readline().strip() == "writing"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    return child.pid


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_run_killed_mid_write_leaves_no_partial_files_folder(backend, tmp_path, request):
    url = str(tmp_path / "root") if backend == "local" else request.getfixturevalue("s3_url")
    store = Store(url)
    fresh = "var/jobs/W/killed/Fresh"
    pid = _kill_while_writing(url, fresh)
    assert not store.exists(fresh + ".files") and not list(store.list(fresh + ".files"))
    assert json.loads(store.get(fresh + ".info"))["status"] == "start"
    # a done job rerun and killed mid-write keeps its committed set whole, never a mix
    done = "var/jobs/W/killed/Done"
    finished = _child(url, done, "--finish")
    assert finished.communicate(timeout=60)[0].split() == ["committed"]
    before = {k: store.get(k) for k in store.list(done + ".files")}
    assert (
        sorted(before) == [f"{done}.files/a.txt", f"{done}.files/big.bin"]
        and len(before[f"{done}.files/big.bin"]) == 2 << 20
    )
    _kill_while_writing(url, done)
    assert {k: store.get(k) for k in store.list(done + ".files")} == before
    if backend == "local":
        stages = os.listdir(store.path(STAGE_DIR))
        assert len(stages) == 2 and f".{pid}." in " ".join(stages)  # <host>.<pid>.<random> of the killed runs
        assert sorted(clean_stages(store)) == sorted(stages)  # their processes are gone
        assert os.listdir(store.path(STAGE_DIR)) == []


def test_stages_of_live_processes_are_kept(tmp_path):
    store = Store(str(tmp_path))
    writer = _writer(store)
    writer.files.put("a.txt", b"a")
    assert clean_stages(store) == []
    assert writer.files.names() == ["a.txt"]


def test_scout_persist_verify_checks_typed_results_and_committed_files(tmp_path, capsys):
    import numpy as np

    from scout_persist.cli import main

    store = Store(str(tmp_path))
    writer = _writer(store, type="binary")
    _write_three(writer)
    writer.save(np.arange(1000, dtype=np.float64), compression="none")  # checksum after the NPY header
    writer.done()
    capsys.readouterr()
    assert main(["verify", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 4 and report["failed"] == 0  # the NPY result and the three files
    (tmp_path / (KEY + ".files/counts.json")).write_bytes(b'{"n": 4}')
    assert main(["verify", str(tmp_path)]) != 0
    out = capsys.readouterr().out
    assert out.startswith("MISMATCH") and "[counts.json]" in out
