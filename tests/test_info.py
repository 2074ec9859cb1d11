"""The .info sidecar: Ruby's JSON bytes, Marshal/legacy reading, noinfo vs strict, lifecycle key order, merge rule."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from scout_persist import ruby_marshal
from scout_persist.errors import InfoFormatError, UnsupportedValueError
from scout_persist.info import (
    InfoFile,
    decode_exception,
    dumps_info,
    encode_exception,
    loads_info,
    parse_ruby_time,
    read_info,
    ruby_float,
    ruby_time,
    truncate_array,
)
from scout_persist.rubyvalues import RubyException, Symbol
from scout_persist.store import Store


@pytest.mark.parametrize(
    "x, text",
    [
        (2.0, "2.0"),
        (0.0001, "0.0001"),
        (123456789012345.0, "123456789012345.0"),
        (1 / 3, "0.3333333333333333"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1e-7, "1.0e-07"),
        (1e20, "1.0e+20"),
        (1.5e-7, "1.5e-07"),
        (1e15, "1.0e+15"),
        (3.14159, "3.14159"),
        (4.0, "4.0"),
        (2e20, "2.0e+20"),
        (2 / 3, "0.6666666666666666"),
        (-12.75, "-12.75"),
        (1.2345e-5, "1.2345e-05"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5.0e-324"),
        (0.001, "0.001"),
    ],
)
def test_ruby_float(x, text):
    assert ruby_float(x) == text
    assert float(text) == x


@pytest.mark.parametrize("x", [float("nan"), float("inf"), -float("inf")])
def test_ruby_float_refuses_what_ruby_json_refuses(x):
    with pytest.raises(UnsupportedValueError, match="NaN/Infinity"):
        ruby_float(x)


def test_ruby_time_format_and_parse(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        t = dt.datetime(2026, 11, 22, 14, 49, 31)
        assert ruby_time(t) == "2026-11-22 14:49:31 +0000"
        assert parse_ruby_time("2026-11-22 14:49:31 +0000") == t.replace(tzinfo=dt.timezone.utc)
        assert len(ruby_time()) == len("2026-11-22 14:49:31 +0000")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_every_fixture_info_round_trips_byte_for_byte(ruby_fixtures):
    n = blobs = 0
    for f in sorted((ruby_fixtures / "scout-jobs").rglob("*.info")):
        raw = f.read_bytes()
        info = loads_info(raw, str(f), strict=True)
        assert dumps_info(info) == raw, f
        if "exception" in info:
            assert encode_exception(decode_exception(info["exception"], str(f))) == info["exception"], f
            blobs += 1
        n += 1
    for name in ("write_info_before.info.json", "write_info_after.info.json"):
        raw = (ruby_fixtures / "cli" / name).read_bytes()
        assert dumps_info(loads_info(raw, name, strict=True)) == raw
    print(f"{n} .info files and {blobs} exception blobs re-encoded byte for byte")
    assert n >= 160 and blobs >= 4


def test_json_strings_like_ruby():
    info = {"s": 'q"\\\n\t\r\b\f\x01\x1f\x7f/\u2028ñ', Symbol("k"): Symbol("v"), 1: [None, True]}
    assert (
        dumps_info(info) == '{"s":"q\\"\\\\\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/\u2028ñ","k":"v","1":[null,true]}'.encode()
    )


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_empty_info_reads_as_empty(raw):
    assert loads_info(raw, "x.info", strict=True) == {}


@pytest.mark.parametrize(
    "raw", [b'{"status":"done","pid":', b"[1,2]", b"\xff\xfe garbage", b"\x04\x08[\x06i\x06", b"\x04\x08o:\x0bObject"]
)
def test_unreadable_info_is_noinfo_or_strict_error(raw):
    assert loads_info(raw, "/r/var/jobs/W/t/x.info") == {"status": "noinfo"}
    with pytest.raises(InfoFormatError, match=r"/r/var/jobs/W/t/x\.info.*noinfo"):
        loads_info(raw, "/r/var/jobs/W/t/x.info", strict=True)


def test_read_info_of_a_missing_file(tmp_path):
    assert read_info(Store(str(tmp_path)), "var/jobs/W/t/none.info", strict=True) == {}


def test_marshal_info_fallback_and_rbbt_legacy():
    legacy = {
        "status": Symbol("started"),
        "pid": "4242",
        "inputs": {"n": 3, "name": "x"},
        "dependencies": [["base", "Default", "/home/u/.rbbt/var/jobs/W/base/Default"]],
        "exception": {"class": "RuntimeError", "message": "m", "backtrace": ["a:1"]},
        "result_type": Symbol("integer"),
        "name": "Default",
    }
    info = loads_info(ruby_marshal.dumps(legacy), "legacy.info", strict=True)
    assert info["status"] == "start" and info["pid"] == 4242
    assert info["input_names"] == ["n", "name"] and info["inputs"] == [3, "x"]
    assert info["type"] == "integer"
    assert info["dependencies"][0][-1] == "/home/u/.rbbt/var/jobs/W/base/Default"
    # a Scout-era Marshal info (the JSON serializer's fallback) keeps its values
    scout = {Symbol("status"): "done", Symbol("inputs"): [1.5, Symbol("a")]}
    assert loads_info(ruby_marshal.dumps(scout), "m.info", strict=True) == {"status": "done", "inputs": [1.5, "a"]}


def test_truncate_array():
    assert truncate_array(list(range(100))) == list(range(100))
    t = truncate_array(list(range(150)))
    assert len(t) == 102 and t[70] == "..." and t[-1] == "TRUNCATED only 100 out of 150 shown"
    assert t[:70] == list(range(70)) and t[71:101] == list(range(120, 150))
    assert truncate_array(t) == t


def _lifecycle(store, key, case):
    f = InfoFile(store, key)
    f.setup(task_name="t", workflow="W", type="string", inputs=[], input_names=[], dependencies=[])
    keys = case["info_keys"]
    if "start" in keys:
        f.start()
    if "messages" in keys and keys.index("messages") < keys.index("end") and "exception" not in keys:
        f.log("custom_status", "First step message")
        f.message("A plain message")
        f.merge("custom_key", "custom value")
        f.merge("custom_hash", {"a": 1})
    if "task_alias" in keys:
        f.merge("task_alias", True)
    if "exception" in keys:
        f.error(RubyException("ScoutException", "Planned failure", ["x.rb:1:in `y'"]))
    else:
        f.done()
    return f


@pytest.mark.parametrize(
    "case_name", ["baking_normal", "ret_with_messages", "dep_alias", "ret_ret_error", "dep_failing"]
)
def test_lifecycle_key_order_matches_ruby(tmp_path, manifest, case_name):
    case = next(c for c in manifest["cases"] if c["case"] == case_name)
    store = Store(str(tmp_path))
    f = _lifecycle(store, "var/jobs/W/t/Default", case)
    written = json.loads(store.get("var/jobs/W/t/Default.info"))
    assert list(written) == case["info_keys"]
    assert written["status"] == case["status"]
    assert store.get("var/jobs/W/t/Default.info") == dumps_info(written)  # one line, no trailing newline
    assert f.status == case["status"]


def test_error_info_as_ruby_writes_it(tmp_path):
    store = Store(str(tmp_path))
    f = InfoFile(store, "var/jobs/W/t/Default")
    f.setup(task_name="t", workflow="W")
    f.start()
    try:
        raise KeyError("missing")
    except KeyError as exc:
        f.error(exc)
    info = read_info(store, "var/jobs/W/t/Default.info", strict=True)
    exc = decode_exception(info["exception"])
    assert exc.ruby_class == "RuntimeError" and exc.class_name == "KeyError" and exc.message == "'missing'"
    assert info["messages"] == ["KeyError: 'missing'"] and info["backtrace"] == exc.backtrace
    assert "time_elapsed" not in info
    assert info["exception"].endswith("\n") and all(len(x) <= 60 for x in info["exception"].split("\n"))


def test_merge_rule_replays_cli_write_info(tmp_path, ruby_fixtures):
    """The captured write_info sequence, applied to an info re-read from disk, gives Ruby's bytes."""
    store = Store(str(tmp_path))
    key = "var/jobs/Baking/bake_muffin_tray/write info muffin.info"
    store.put(key, (ruby_fixtures / "cli" / "write_info_before.info.json").read_bytes())
    f = InfoFile(store, key)
    f.merge("note", "added by CLI")
    f.merge("status", "forced_status")  # -f: an existing scalar moves to the end
    f.merge("owner", "tester")
    f.merge("note", None)  # DELETE
    assert store.get(key) == (ruby_fixtures / "cli" / "write_info_after.info.json").read_bytes()


def test_merge_rule_lists_and_maps(tmp_path):
    store = Store(str(tmp_path))
    f = InfoFile(store, "k.info")
    f.update({"l": [1], "m": {"a": 1}, "s": "x"})
    f.merge("l", 2)
    f.merge("l", [3, 4])
    f.merge("l", None)
    f.merge("m", {"b": 2})
    assert f.reload() == {"s": "x", "l": [1, 2, 3, 4, None], "m": {"a": 1, "b": 2}}
    with pytest.raises(InfoFormatError, match="holds a map"):
        f.merge("m", "scalar")
    assert f.reload()["m"] == {"a": 1, "b": 2}  # nothing written on failure
    f.set("l", "replaced")
    assert list(f.reload()) == ["s", "m", "l"]


def test_inputs_over_100_items_are_truncated_in_the_info(tmp_path):
    store = Store(str(tmp_path))
    f = InfoFile(store, "var/jobs/W/t/x")
    f.setup(
        task_name="t",
        workflow="W",
        inputs=["a", list(range(150))],
        input_names=["s", "l"],
        provided_inputs={"l": list(range(150))},
        non_default_inputs=["l"],
    )
    info = read_info(store, "var/jobs/W/t/x.info")
    assert info["inputs"][1][-1] == "TRUNCATED only 100 out of 150 shown"
    assert info["provided_inputs"]["l"][70] == "..."


def test_setup_without_save_then_start_is_one_write_of_the_same_content(tmp_path):
    store = Store(str(tmp_path))
    args = dict(task_name="t", workflow="W", type="integer", inputs=[1], input_names=["x"], issued="2024-01-01")
    two = InfoFile(store, "var/jobs/W/t/two")
    two.setup(**args)
    two.start()
    one = InfoFile(store, "var/jobs/W/t/one")
    one.setup(**args, save=False)
    assert not store.exists("var/jobs/W/t/one.info")  # nothing written until start
    one.start()
    first, second = json.loads(store.get("var/jobs/W/t/one.info")), json.loads(store.get("var/jobs/W/t/two.info"))
    assert first["status"] == "start" and list(first) == list(second)
    assert {k: v for k, v in first.items() if k != "start"} == {k: v for k, v in second.items() if k != "start"}
