"""Jobs written by JobWriter: Ruby's bytes (result and .info, masking times/pids/hosts) and loading back equal."""

from __future__ import annotations

import io
import json
from fractions import Fraction

import pytest

from scout_persist import checksums
from scout_persist.errors import CorruptPayloadError, JobFailed, JobNotFound, UnsafePathError, UnsupportedValueError
from scout_persist.info import dumps_info
from scout_persist.job import Job, JobWriter
from scout_persist.rubyvalues import TSV, Symbol
from scout_persist.store import Store
from test_job_fixtures import same

VOLATILE = ("issued", "pid", "pid_hostname", "start", "end", "time_elapsed", "total_time_elapsed")
TIMING = ("time_elapsed", "total_time_elapsed", "end")


def masked(data: bytes, root: str = "", prefix: str = "") -> bytes:
    """The info bytes with run-specific values masked and our root written as Ruby's prefix."""
    text = data.decode("utf-8")
    if root:
        text = text.replace(json.dumps(root + "/")[1:-1], prefix)
    info = json.loads(text)
    info.pop("payload", None)  # our record of the stored bytes (format, checksum): Ruby ignores unknown keys
    for k in VOLATILE:
        if k in info:
            info[k] = "<masked>"
    return dumps_info(info)


def replay(src: Job, store: Store) -> Job:
    """Rewrite fixture job ``src`` with JobWriter into ``store``, following the lifecycle its info records."""
    info = src.info
    w = JobWriter(store, src.key, workflow=info["workflow"], task=info["task_name"], type=info["type"])
    w.setup(
        inputs=info["inputs"],
        input_names=info["input_names"],
        provided_inputs=info["provided_inputs"],
        non_default_inputs=info["non_default_inputs"],
        dependencies=[Job.at(store, d.key) if not d.external else d.path for d in src.dependencies],
    )
    keys = list(info)
    if "start" in keys:
        w.start()
        after = keys[keys.index("start") + 1 :]
        ends = [k for k in after if k in ("exception", "time_elapsed", "end")]
        stop = keys.index(ends[0]) if ends else len(keys)
        for k in keys[keys.index("start") + 1 : stop]:
            if k == "messages":
                for m in info[k]:
                    w.message(m)
            else:
                w.set_info(k, info[k])
    if info["status"] == "error":
        w.error(src.exception)
        return Job.at(store, src.key)
    for name in src.files():
        w.write_file(name, src.read_file(name))
    if src.done:
        raw = src.store.get(src.key)
        if info["type"] == "path":
            value = src.relocate(raw.decode())  # a path result loads as the job's own path (quirk 21)
            w.save(value.replace(str(src.store.url), str(store.url)))
        elif src.key.endswith("ret_stream/Default"):
            w.save(io.BytesIO(raw))  # a returned stream is stored raw, whatever the type
        else:
            value = src.load()
            if info["type"] == "file":
                value = value.replace(str(src.store.url), str(store.url))
            w.save(value)
    return w.done()


def test_every_fixture_job_rewritten_byte_for_byte(relocated_jobs, manifest, tmp_path):
    prefix = manifest["original_prefix"]
    store = Store(str(tmp_path / "ours" / ".scout"))
    results = infos = 0
    for rel, step in manifest["steps"].items():
        if step["status"] not in ("done", "error"):
            continue
        src = Job(relocated_jobs / rel)
        ours = replay(src, store)
        theirs_info = (relocated_jobs / (rel + ".info")).read_bytes()
        assert masked(store.get(ours.info_key), store.url, prefix) == masked(theirs_info), rel
        infos += 1
        if step["result_file_exists"]:
            mine = store.get(rel).replace(store.url.encode() + b"/", prefix.encode())
            assert mine == (relocated_jobs / rel).read_bytes(), rel
            results += 1
            if "result" in step and step["type"] not in ("path",):
                want = src.load()
                got = ours.load()
                if step["type"] == "file":
                    want = want.replace(str(src.store.url), store.url)
                assert same(got, want), rel
        else:
            assert not store.exists(rel), rel
        assert ours.files() == src.files()
        if step["status"] == "error":
            assert ours.exception == src.exception
            with pytest.raises(JobFailed):
                ours.load()
    print(f"rewrote {infos} jobs: {infos} .info files and {results} results byte for byte")
    assert infos >= 160 and results >= 150


def test_timing_keys_follow_done(tmp_path):
    store = Store(str(tmp_path))
    w = JobWriter(store, "var/jobs/W/t/Default", type="integer")
    w.setup()
    w.start()
    w.save(42)
    job = w.done(custom=Symbol("x"))
    info = job.info
    assert list(info)[-4:] == ["custom", *TIMING]
    assert info["custom"] == "x" and info["status"] == "done" and isinstance(info["time_elapsed"], float)
    assert info["total_time_elapsed"] >= info["time_elapsed"] >= 0
    assert store.get("var/jobs/W/t/Default") == b"42"
    assert job.load() == 42


@pytest.mark.parametrize(
    "type, value, stored",
    [
        ("string", "a plain string", b"a plain string"),
        ("string", Symbol("a_symbol"), b"a_symbol"),
        ("text", "l1\n\n  l3\n", b"l1\n\n  l3\n"),
        ("integer", -12345678901234567890, b"-12345678901234567890"),
        ("float", 1e-7, b"1.0e-07"),
        ("float", 2.0, b"2.0"),
        ("boolean", False, b"false"),
        ("array", ["one", "2", "3.5", "", "last"], b"one\n2\n3.5\n\nlast"),
        ("integer_array", [1, 2, 3], b"1\n2\n3"),
        ("float_array", [0.5, 1e20], b"0.5\n1.0e+20"),
        ("json", {"a": 1, "f": 1e-07, "s": Symbol("v")}, b'{"a":1,"f":1.0e-07,"s":"v"}'),
        ("yaml", {"name": "muffin", Symbol("k"): [1, 2], "y": None}, b'---\nname: muffin\n:k:\n- 1\n- 2\n"y":\n'),
        ("marshal", {Symbol("s"): [1, "x"], "f": 1.5}, None),
        ("binary", bytes(range(256)), bytes(range(256)) + b"\n"),
        (None, b"default type is binary\n", b"default type is binary\n"),
        ("binary", b"ends in a newline\n", b"ends in a newline\n"),
        ("tsv", TSV("ID", ["A"], "list", {"r1": ["x"]}), b"#: :type=:list\n#ID\tA\nr1\tx\n"),
    ],
)
def test_round_trip_per_type(tmp_path, type, value, stored):
    store = Store(str(tmp_path))
    key = "var/jobs/W/t/Default" + (f".{type}" if type in ("json", "yaml", "marshal", "tsv") else "")
    w = JobWriter(store, key, type=type)
    w.setup()
    w.start()
    w.save(value)
    job = w.done()
    if stored is not None:
        assert store.get(key) == stored
    got = job.load()
    if type == "binary" or type is None:
        assert got == value and isinstance(got, bytes)  # the newline Ruby appends is not part of the value
    elif type == "string":
        assert got == str(value)
    elif type in ("json",):
        assert got == {k: (str(v) if isinstance(v, Symbol) else v) for k, v in value.items()}
    elif type == "array":
        assert got == ["one", "2", "3.5", "", "last"]  # Ruby reads every item back as a String
    else:
        assert same(got, value) or got == value


def test_python_values_use_the_pickle_serializer(tmp_path):
    store = Store(str(tmp_path))
    w = JobWriter(store, "var/jobs/W/t/Default")  # no Scout type declared
    w.setup()
    w.start()
    value = {"frac": Fraction(1, 3), "set": {1, 2}, "c": 1 + 2j}
    record = w.save(value)
    job = w.done()
    info = job.info
    assert info["type"] == "binary"  # Ruby sees an opaque byte string, never a wrong value
    assert info["payload"]["format"] == "pickle" and info["payload"]["codec"] == record["codec"]
    assert info["payload"]["stored_size"] == store.size("var/jobs/W/t/Default")
    assert info["payload"]["checksum"] == record["checksum"] == checksums.checksum(store.get("var/jobs/W/t/Default"))
    assert list(info).index("payload") < list(info).index("time_elapsed")
    assert job.load() == value


def test_error_lifecycle_keeps_only_info(tmp_path):
    store = Store(str(tmp_path))
    w = JobWriter(store, "var/jobs/W/t/Default", type="json")
    w.setup()

    def boom():
        raise ValueError("bad input 7")

    with pytest.raises(ValueError):
        w.run(boom)
    job = Job.at(store, "var/jobs/W/t/Default")
    assert job.status == "error" and not job.done
    assert list(job.info)[-4:] == ["exception", "end", "backtrace", "messages"]
    assert job.info["messages"] == ["ValueError: bad input 7"]
    exc = job.exception
    assert (exc.ruby_class, exc.class_name, exc.message) == ("RuntimeError", "ValueError", "bad input 7")
    assert any("boom" in line for line in exc.backtrace)
    assert all(line.count("\n") == 0 for line in job.info["exception"].splitlines())
    assert all(len(line) <= 60 for line in job.info["exception"].split("\n"))
    with pytest.raises(JobFailed, match="ValueError: bad input 7"):
        job.load()


def test_non_recoverable_error_is_a_scout_exception(tmp_path):
    store = Store(str(tmp_path))
    w = JobWriter(store, "var/jobs/W/t/Default", type="string")
    w.setup()
    w.start()
    w.save("partial")
    w.error(RuntimeError("stop"), recoverable=False)
    job = Job.at(store, "var/jobs/W/t/Default")
    assert not job.done  # partial result removed, as Ruby does
    assert job.exception.ruby_class == "ScoutException"


def test_files_and_dependencies_written_by_us(tmp_path):
    store = Store(str(tmp_path / ".scout"))
    dep = JobWriter(store, "var/jobs/W/base/Default", type="integer")
    dep.run(lambda: 3)
    w = JobWriter(store, "var/jobs/W/top/Default", type="path")
    w.setup(dependencies=[Job.at(store, "var/jobs/W/base/Default")])
    w.start()
    loc = w.write_file("sub/out.txt", b"hello")
    w.save(loc)
    job = w.done()
    assert job.info["dependencies"] == [str(tmp_path / ".scout" / "var/jobs/W/base/Default")]
    assert [d.load() for d in job.dependencies] == [3]
    assert job.files() == ["sub/out.txt"]
    assert job.read_file("sub/out.txt") == b"hello"
    assert store.get("var/jobs/W/top/Default") == loc.encode()
    with pytest.raises(UnsafePathError):
        w.write_file("../../escape.txt", b"x")
    with pytest.raises(UnsafePathError):
        JobWriter(store, "var/jobs/W/../../../../x")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "x").exists()


def test_job_on_s3(s3_url):
    store = Store(s3_url)
    base = JobWriter(store, "var/jobs/W/base/Default", type="json")
    base.run(lambda: {"n": 1})
    w = JobWriter(store, "var/jobs/W/top/Default", type="string")
    w.setup(dependencies=[Job.at(store, "var/jobs/W/base/Default")])
    w.start()
    w.write_file("f.txt", b"in s3")
    w.save("top")
    w.done()
    job = Job(f"{s3_url}/var/jobs/W/top/Default")
    assert job.status == "done" and job.load() == "top"
    assert job.files() == ["f.txt"]
    (dep,) = job.dependencies
    assert dep.path == f"{s3_url}/var/jobs/W/base/Default" and dep.load() == {"n": 1}


def test_rerun_keeps_the_old_result_until_the_new_one_is_saved(tmp_path):
    store = Store(str(tmp_path))
    key = "var/jobs/W/t/Default"
    JobWriter(store, key, type="integer").run(lambda: 1)
    reader = Job.at(store, key)
    assert reader.status == "done"  # a reader's snapshot of the info
    w = JobWriter(store, key, type="integer")
    w.setup()
    assert reader.load() == 1  # still a complete result
    assert Job.at(store, key).status == "setup"
    w.run(lambda: 2)
    assert Job.at(store, key).load() == 2


def test_a_reader_with_a_stale_record_retries_with_the_current_info(tmp_path):
    store = Store(str(tmp_path))
    key = "var/jobs/W/t/Default"
    JobWriter(store, key).run(lambda: {"v": 1})
    reader = Job.at(store, key)
    assert reader.info["payload"]["format"] == "pickle"  # snapshot with the first record
    JobWriter(store, key).run(lambda: {"v": 2, "longer": "x" * 100})
    assert reader.load() == {"v": 2, "longer": "x" * 100}
    # a payload damaged under a current record stays an error
    data = bytearray(store.get(key))
    data[-3] ^= 0xFF
    store.put(key, bytes(data))
    with pytest.raises(CorruptPayloadError):
        Job.at(store, key).load()


def test_a_failed_payload_write_names_the_job_and_keeps_the_old_result(tmp_path, monkeypatch):
    from scout_persist.errors import StorageError

    store = Store(str(tmp_path))
    key = "var/jobs/W/t/Default"
    JobWriter(store, key, type="text").run(lambda: "old")
    w = JobWriter(store, key, type="text")
    w.setup()
    w.start()

    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    real_put = store.put
    monkeypatch.setattr(store, "put", lambda k, d, **kw: full_disk() if k == key else real_put(k, d, **kw))
    with pytest.raises(StorageError, match=r"W/t/Default.*No space left.*previous result and its \.info were kept"):
        w.save("new")
    w.error(RuntimeError("the caller records the failure"))  # a no-op: the committed job stays as it was
    monkeypatch.undo()
    job = Job.at(store, key)
    assert job.status == "done" and job.load() == "old"


def test_a_failed_rewrite_that_cannot_restore_says_so(tmp_path, monkeypatch):
    from scout_persist.errors import StorageError

    store = Store(str(tmp_path))
    key = "var/jobs/W/t/Default"
    JobWriter(store, key, type="text").run(lambda: "old")
    w = JobWriter(store, key, type="text").begin()
    monkeypatch.setattr(store, "put", lambda *_a, **_k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(StorageError, match=r"previous result file is kept, but restoring its \.info failed too"):
        w.save("new")
    monkeypatch.undo()
    job = Job.at(store, key)
    assert job.status == "start"
    with pytest.raises(JobNotFound, match="not 'done'"):
        job.load()  # a result file under an unfinished .info is never served


def test_a_value_the_type_cannot_hold_is_refused_before_writing(tmp_path):
    store = Store(str(tmp_path))
    w = JobWriter(store, "var/jobs/W/t/Default", type="array").begin()
    with pytest.raises(UnsupportedValueError, match=r"Scout type 'array'.*cache hit would give.*'2'"):
        w.save(["one", 2])
    assert not store.exists("var/jobs/W/t/Default")
