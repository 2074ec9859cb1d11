"""Artifact registry: versions, aliases, manifests, verification, Scout jobs, bad names, concurrent loggers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from scout_persist.errors import CorruptPayloadError, InvalidInputError, KeyNotFound, UnsafePathError
from scout_persist.job import Job, JobWriter
from scout_persist.registry import (
    BLOB_DIR,
    Registry,
    check_artifact_name,
    files_digest,
    iter_versions,
    log_artifact,
    parse_ref,
    use_artifact,
    verify,
)
from scout_persist.store import Store

PY = sys.executable

LOGGER = r"""
import os, sys, time
from scout_persist.registry import Registry
url, tag, count, start = sys.argv[1:5]
reg = Registry(url)
while time.time() < float(start):
    time.sleep(0.005)
for i in range(int(count)):
    payload = f"{tag} {i} {os.getpid()}".encode()
    v = reg.log_artifact("shared", {"payload.txt": payload, "common.txt": b"same in every version"},
                         metadata={"tag": tag, "i": i})
    print(v.version, flush=True)
"""


@pytest.fixture
def reg(tmp_path) -> Registry:
    return Registry(str(tmp_path / "root"))


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("alpha\n")
    (d / "sub" / "b.bin").write_bytes(bytes(range(256)))
    return d


# -- logging and using ----------------------------------------------------------------------------------------
def test_log_and_use_round_trip(reg, src, tmp_path):
    v0 = reg.log_artifact("dataset", src, metadata={"rows": 2}, type="dataset")
    assert v0.version == "v0" and v0.files() == ["a.txt", "sub/b.bin"]
    got = reg.use_artifact("dataset:v0")
    assert got.metadata == {"rows": 2} and got.manifest["type"] == "dataset"
    assert got.read("a.txt") == b"alpha\n" and got.read("sub/b.bin") == bytes(range(256))
    with got.open("a.txt") as fh:
        assert fh.read() == b"alpha\n"
    out = got.download(tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == bytes(range(256)) and out == str(tmp_path / "out")
    entry = got.entry("sub/b.bin")
    assert entry["size"] == 256 and entry["sha256"] == hashlib.sha256(bytes(range(256))).hexdigest()
    assert got.digest == files_digest(got.manifest["files"])
    with pytest.raises(KeyNotFound) as err:
        got.read("nope.txt")
    assert "nope.txt" in str(err.value) and "a.txt" in str(err.value)


def test_sources_file_list_and_dict(reg, src):
    v = reg.log_artifact("mixed", [src / "a.txt", {"notes/readme.md": b"# hi", "copy.bin": src / "sub" / "b.bin"}])
    assert v.files() == ["a.txt", "copy.bin", "notes/readme.md"]
    assert reg.use_artifact("mixed").read("notes/readme.md") == b"# hi"
    v = reg.log_artifact("tree", {"data": src})
    assert v.files() == ["data/a.txt", "data/sub/b.bin"]


def test_versions_are_immutable_and_content_is_shared(reg, src):
    reg.log_artifact("d", src)
    (src / "a.txt").write_text("changed\n")
    reg.log_artifact("d", src)
    assert reg.versions("d") == ["v0", "v1"]
    assert reg.use_artifact("d:v0").read("a.txt") == b"alpha\n"
    assert reg.use_artifact("d:v1").read("a.txt") == b"changed\n"
    blobs = list(reg.store.list(f"{reg.prefix}/{BLOB_DIR}"))
    assert len(blobs) == 3  # b.bin is stored once for both versions
    assert iter_versions("d", store=reg.store).__next__().version == "v0"


def test_aliases_latest_and_user_aliases(reg):
    reg.log_artifact("m", {"w": b"1"}, aliases=["production", "latest"])
    assert reg.aliases("m") == {"latest": "v0", "production": "v0"}
    reg.log_artifact("m", {"w": b"2"}, aliases="staging")
    assert reg.aliases("m") == {"latest": "v1", "production": "v0", "staging": "v1"}
    assert reg.use_artifact("m").version == "v1" and reg.use_artifact("m:latest").version == "v1"
    assert reg.use_artifact("m:production").read("w") == b"1"
    reg.set_alias("m", "production", "v1")  # aliases move
    assert reg.use_artifact("m:production").version == "v1"
    reg.remove_alias("m", "staging")
    assert "staging" not in reg.aliases("m")
    with pytest.raises(InvalidInputError):
        reg.set_alias("m", "latest", "v0")
    with pytest.raises(KeyNotFound) as err:
        reg.set_alias("m", "production", "v9")
    assert "v9" in str(err.value) and "v0, v1" in str(err.value)
    with pytest.raises(KeyNotFound) as err:
        reg.use_artifact("m:nosuch")
    assert "nosuch" in str(err.value) and "production" in str(err.value)
    with pytest.raises(KeyNotFound):
        reg.use_artifact("never-logged")
    assert reg.artifacts() == ["m"]


def test_module_level_helpers_and_memory_store():
    store = Store("memory://registry-test")
    try:
        v = log_artifact("x", {"f": b"data"}, aliases=["best"], store=store)
        assert use_artifact("x:best", store=store).read("f") == b"data" and v.version == "v0"
        assert verify("x:v0", store=store).ok
    finally:
        store.delete("", recursive=True)


# -- verification ---------------------------------------------------------------------------------------------------
def _blob_path(reg: Registry, spec: str, name: str) -> str:
    return reg.store.path(reg.blob_key(reg.use_artifact(spec).entry(name)["sha256"]))


def test_verify_detects_flipped_truncated_and_missing_content(reg, src, tmp_path):
    reg.log_artifact("d", src)
    report = reg.verify("d:v0")
    assert report.ok and report.checked == 2 and report.raise_for_problems() is report
    path = _blob_path(reg, "d:v0", "sub/b.bin")
    data = bytearray(open(path, "rb").read())
    data[10] ^= 0xFF
    open(path, "wb").write(bytes(data))
    report = reg.verify("d:v0")
    assert not report.ok and any("sub/b.bin" in p and "sha256" in p for p in report.problems)
    with pytest.raises(CorruptPayloadError) as err:
        report.raise_for_problems()
    assert "d:v0" in str(err.value)
    with pytest.raises(CorruptPayloadError):
        reg.use_artifact("d:v0").read("sub/b.bin")
    with pytest.raises(CorruptPayloadError):
        reg.use_artifact("d:v0").download(tmp_path / "dl")
    assert not (tmp_path / "dl" / "sub" / "b.bin").exists()
    open(path, "wb").write(bytes(data[:100]))
    assert any("100 bytes" in p for p in reg.verify("d:v0").problems)
    os.unlink(path)
    assert any("missing" in p for p in reg.verify("d:v0").problems)


def test_verify_detects_a_tampered_manifest(reg):
    reg.log_artifact("d", {"f": b"x"})
    key = f"{reg.prefix}/d/versions/v0.json"
    m = json.loads(reg.store.get(key))
    m["files"][0]["name"] = "g"
    reg.store.put(key, json.dumps(m).encode())
    assert any("digest" in p for p in reg.verify("d:v0").problems)
    reg.store.put(key, b"{not json")
    with pytest.raises(CorruptPayloadError) as err:
        reg.use_artifact("d:v0")
    assert "v0.json" in str(err.value)
    reg.store.put(key, b'{"artifact": "d"}')
    with pytest.raises(CorruptPayloadError):
        reg.use_artifact("d:v0")


# -- Scout jobs --------------------------------------------------------------------------------------------------------
def test_publish_a_ruby_job(reg, relocated_jobs, tmp_path):
    job = Job(relocated_jobs / "var/jobs/ReturnCases/with_files/Default")
    v = reg.log_job("with-files", job, aliases=["production"], metadata={"note": "fixture"})
    base = "Default"
    assert v.files() == sorted([base, base + ".info"] + [f"{base}.files/{f}" for f in job.files()])
    meta = v.metadata["scout_job"]
    assert meta["path"] == job.path and meta["workflow"] == "ReturnCases" and meta["task"] == "with_files"
    assert meta["status"] == "done" and meta["signature"] is None
    assert meta["info_sha256"] == hashlib.sha256(job.store.get(job.info_key)).hexdigest()
    assert v.metadata["note"] == "fixture" and v.manifest["type"] == "scout-job"
    # downloaded into a fresh root, it is the same job again
    out = tmp_path / "restored" / "var/jobs/ReturnCases/with_files"
    reg.use_artifact("with-files:production").download(out)
    again = Job(out / base)
    assert again.status == "done" and again.load() == job.load() and again.files() == job.files()
    for f in job.files():
        assert again.read_file(f) == job.read_file(f)


def test_publish_records_the_prefect_signature(reg, tmp_path):
    store = Store(str(tmp_path / "jobs"))
    w = JobWriter(store, "var/jobs/Wf/task/Default", workflow="Wf", task="task", type="json")
    w.setup(inputs=[], input_names=[])
    w.start()
    w.set_info("prefect", {"signature": {"inputs": "abc", "version": "2"}})
    w.save({"a": 1})
    job = w.done()
    v = reg.log_job("sig", job.path)
    assert v.metadata["scout_job"]["signature"] == {"inputs": "abc", "version": "2"}
    assert "Default.json" in v.files() or "Default" in v.files()


def test_unfinished_jobs_are_refused(reg, relocated_jobs):
    job = Job(relocated_jobs / "var/jobs/ReturnCases/ret_runtime_error/Default")
    with pytest.raises(InvalidInputError) as err:
        reg.log_job("failed", job)
    assert "error" in str(err.value) and job.path in str(err.value)
    assert reg.versions("failed") == []


# -- bad input ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,error",
    [
        ("..", UnsafePathError),
        ("a/b", UnsafePathError),
        ("a..b", UnsafePathError),
        ("a\\b", UnsafePathError),
        ("a:b", InvalidInputError),
        ("", InvalidInputError),
        ("-x", InvalidInputError),
        ("x" * 200, InvalidInputError),
        (None, InvalidInputError),
        ("_blobs", InvalidInputError),
    ],
)
def test_bad_artifact_names(reg, name, error):
    with pytest.raises(error) as err:
        check_artifact_name(name)
    assert repr(name) in str(err.value)
    with pytest.raises(error):
        reg.log_artifact(name, {"f": b"x"})
    assert list(reg.store.list("")) == []  # nothing written


@pytest.mark.parametrize("spec", ["a:b:c", "a:", ":v1", "a:v01", "a:x/y", "a:..", 7])
def test_bad_references(reg, spec):
    with pytest.raises((InvalidInputError, UnsafePathError)) as err:
        reg.use_artifact(spec)
    assert repr(spec) in str(err.value) or str(spec) in str(err.value)


def test_parse_ref():
    assert parse_ref("m") == ("m", "latest")
    assert parse_ref("m:v0") == ("m", "v0") and parse_ref("m:v12") == ("m", "v12")
    assert parse_ref("m:production") == ("m", "production")


def test_bad_aliases_sources_and_metadata(reg, src):
    for alias in ("v3", "x/y", "a:b", "", "9lives"):
        with pytest.raises(InvalidInputError) as err:
            reg.log_artifact("d", {"f": b"x"}, aliases=[alias])
        assert repr(alias) in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        reg.log_artifact("d", src / "missing")
    assert "missing" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        reg.log_artifact("d", [src / "a.txt", {"a.txt": b"dup"}])
    assert "twice" in str(err.value)
    with pytest.raises(UnsafePathError):
        reg.log_artifact("d", {"../escape": b"x"})
    with pytest.raises(InvalidInputError):
        reg.log_artifact("d", 42)
    with pytest.raises(InvalidInputError):
        reg.log_artifact("d", {"f": 3.5})
    with pytest.raises(InvalidInputError) as err:
        reg.log_artifact("d", {"f": b"x"}, metadata={"obj": object()})
    assert "JSON" in str(err.value)
    assert reg.versions("d") == []


def test_symlink_loops_are_not_followed(reg, src):
    os.symlink(src, src / "sub" / "loop")
    os.symlink(src / "nowhere", src / "dangling")
    with pytest.raises(UnsafePathError) as err:
        reg.log_artifact("d", src)
    assert "dangling" in str(err.value)
    os.unlink(src / "dangling")
    assert reg.log_artifact("d", src).files() == ["a.txt", "sub/b.bin"]


# -- concurrency (real processes) --------------------------------------------------------------------------------------
def _two_loggers(url: str, count: int) -> list[str]:
    start = time.time() + 2.0
    procs = [
        subprocess.Popen([PY, "-c", LOGGER, url, tag, str(count), str(start)], stdout=subprocess.PIPE, text=True)
        for tag in ("A", "B")
    ]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    return outs[0] + outs[1]


def _check_forty(reg: Registry, printed: list[str], count: int) -> None:
    n = 2 * count
    assert sorted(printed, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(n)]  # no number given twice
    assert reg.versions("shared") == [f"v{i}" for i in range(n)]
    logged = set()
    for v in iter_versions("shared", store=reg.store):
        report = reg.verify(v.ref)
        assert report.ok and report.checked == 2, (v.ref, report.problems)
        tag, i, _pid = v.read("payload.txt").decode().split()
        assert v.metadata == {"tag": tag, "i": int(i)}
        logged.add((tag, int(i)))
    assert logged == {(t, i) for t in "AB" for i in range(count)}  # every log landed in its own version
    assert reg.aliases("shared")["latest"] == f"v{n - 1}"


def test_two_processes_log_twenty_each(reg):
    _check_forty(reg, _two_loggers(reg.store.url, 20), 20)


def test_two_processes_log_twenty_each_on_s3(s3_url):
    reg = Registry(s3_url)
    _check_forty(reg, _two_loggers(s3_url, 20), 20)


# -- unsafe manifests and downloads (#12 item 5) ----------------------------------------------------------------------
def _rename_entry(reg: Registry, spec: str, old: str, new) -> None:
    """Rewrite one file name in a published manifest, digest included, so only the name can be at fault."""
    av = reg.use_artifact(spec)
    m = dict(av.manifest)
    m["files"] = [dict(e, name=new) if e["name"] == old else e for e in m["files"]]
    m["digest"] = files_digest(m["files"])
    reg.store.put(f"{reg.prefix}/{av.name}/versions/{av.version}.json", json.dumps(m).encode())


@pytest.mark.parametrize(
    "bad",
    [
        "../../escaped.txt",
        "/etc/escaped.txt",
        "a\x00b.txt",
        "..\\..\\escaped.txt",
        "sub/../../escaped.txt",
        "C:/escaped.txt",
    ],
)
def test_a_traversing_manifest_name_fails_verify_and_download_writes_nothing(reg, tmp_path, bad):
    reg.log_artifact("d", {"ok.txt": b"fine", "evil.txt": b"payload"})
    _rename_entry(reg, "d:v0", "evil.txt", bad)
    report = reg.verify("d:v0")
    assert not report.ok
    assert any(repr(bad) in p and "unsafe" in p for p in report.problems), report.problems
    dest = tmp_path / "dl" / "inner"
    with pytest.raises(UnsafePathError) as err:
        reg.use_artifact("d:v0").download(dest)
    assert repr(bad) in str(err.value) and "d:v0" in str(err.value)
    assert not (tmp_path / "dl").exists()  # checked before anything was written, ok.txt included
    assert not list(tmp_path.rglob("escaped*"))


def test_download_does_not_follow_a_symlink_out_of_the_destination(reg, src, tmp_path):
    reg.log_artifact("d", src)
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    os.symlink(outside, dest / "sub")
    with pytest.raises(UnsafePathError) as err:
        reg.use_artifact("d:v0").download(dest)
    text = str(err.value)
    assert "sub/b.bin" in text and str(outside) in text and "outside the destination" in text
    assert list(outside.iterdir()) == []
    # a link planted at a file's own name is replaced by the download, never written through
    os.unlink(dest / "sub")
    os.symlink(outside / "target.txt", dest / "a.txt")
    reg.use_artifact("d:v0").download(dest)
    assert not (dest / "a.txt").is_symlink() and (dest / "a.txt").read_text() == "alpha\n"
    assert list(outside.iterdir()) == []
    # the destination itself may be a link: the caller chose it
    os.symlink(outside, tmp_path / "dest-link")
    reg.use_artifact("d:v0").download(tmp_path / "dest-link")
    assert (outside / "sub" / "b.bin").read_bytes() == bytes(range(256))


def test_verify_reports_malformed_and_duplicate_entries(reg):
    reg.log_artifact("d", {"a": b"1", "b": b"2"})
    _rename_entry(reg, "d:v0", "b", "a")
    assert any("appears twice" in p for p in reg.verify("d:v0").problems)
    key = f"{reg.prefix}/d/versions/v0.json"
    m = json.loads(reg.store.get(key))
    m["files"].append({"name": "c"})
    reg.store.put(key, json.dumps(m).encode())
    assert any("malformed file entry" in p for p in reg.verify("d:v0").problems)


# -- same content, one version (#17 item 7) --------------------------------------------------------------------------
def test_logging_the_same_content_returns_the_latest_version(reg, src):
    v0 = reg.log_artifact("d", src, metadata={"rows": 2})
    again = reg.log_artifact("d", src, metadata={"rows": 2}, aliases=["best"])
    assert again.version == "v0" and again.manifest == v0.manifest and reg.versions("d") == ["v0"]
    assert reg.aliases("d") == {"best": "v0", "latest": "v0"}  # aliases still apply to the returned version
    assert reg.log_artifact("d", src, metadata={"rows": 2}, force=True).version == "v1"
    assert reg.log_artifact("d", src, metadata={"rows": 3}).version == "v2"  # other metadata: a new version
    assert reg.log_artifact("d", src, metadata={"rows": 3}, type="dataset").version == "v3"  # other type too
    (src / "a.txt").write_text("changed\n")
    assert reg.log_artifact("d", src, metadata={"rows": 3}, type="dataset").version == "v4"
    (src / "a.txt").write_text("alpha\n")  # back to v0's content: only the *latest* is compared
    assert reg.log_artifact("d", src, metadata={"rows": 2}).version == "v5"
    assert reg.versions("d") == [f"v{i}" for i in range(6)]


SAME_LOGGER = r"""
import sys, time
from scout_persist.registry import Registry
url, start = sys.argv[1:3]
reg = Registry(url)
while time.time() < float(start):
    time.sleep(0.002)
print(reg.log_artifact("same", {"model.bin": b"identical bytes"}, metadata={"k": 1}).version, flush=True)
"""


def test_processes_logging_identical_content_at_once_share_one_version(reg):
    start = time.time() + 2.0
    procs = [
        subprocess.Popen([PY, "-c", SAME_LOGGER, reg.store.url, str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == [["v0"]] * 3 and reg.versions("same") == ["v0"]


def test_log_job_in_one_call_from_core_code(tmp_path):
    from scout_persist.registry import log_job

    store = Store(str(tmp_path / "root"))
    writer = JobWriter(store, "var/jobs/Baking/bake/Default", type="json")
    writer.run(lambda: {"muffins": 12})
    v = log_job("muffins", writer, aliases=["production"])  # a JobWriter, a Job or a path
    assert v.ref == "muffins:v0" and v.metadata["scout_job"]["task"] == "bake"
    reg = Registry(store)  # the job's own store is the default registry
    assert json.loads(reg.use_artifact("muffins:production").read("Default")) == {"muffins": 12}
    assert log_job("muffins", str(tmp_path / "root/var/jobs/Baking/bake/Default")).version == "v0"  # same job
    assert log_job("muffins", Job.at(store, writer.key), force=True).version == "v1"
    writer.run(lambda: {"muffins": 24})  # the job recomputed with another value: a new version
    assert log_job("muffins", writer).version == "v2"
    unfinished = JobWriter(store, "var/jobs/Baking/bake/Half", type="json")
    unfinished.setup()
    unfinished.start()
    with pytest.raises(InvalidInputError) as err:
        log_job("half", unfinished)
    assert "status 'start'" in str(err.value) and "Half" in str(err.value)


# -- removing versions -------------------------------------------------------------------------------------------------
def test_remove_a_version_never_reuses_its_number(reg):
    for i in range(3):
        reg.log_artifact("m", {"w": str(i).encode()})
    reg.set_alias("m", "production", "v1")
    with pytest.raises(InvalidInputError) as err:
        reg.remove_version("m", "v1")
    assert "production" in str(err.value) and "--delete-aliases" in str(err.value)
    reg.remove_version("m", "v2")
    assert reg.versions("m") == ["v0", "v1"] and reg.aliases("m")["latest"] == "v1"
    with pytest.raises(KeyNotFound) as err:
        reg.use_artifact("m:v2")
    assert "it was removed" in str(err.value) and "v0, v1" in str(err.value)
    assert reg.log_artifact("m", {"w": b"new"}).version == "v3"  # v2 is never given again
    reg.remove_version("m", "v1", delete_aliases=True)
    assert reg.versions("m") == ["v0", "v3"] and "production" not in reg.aliases("m")
    with pytest.raises(InvalidInputError) as err:
        reg.remove_version("m", "latest")
    assert "'latest'" in str(err.value)
    with pytest.raises(KeyNotFound):
        reg.remove_version("m", "v9")
