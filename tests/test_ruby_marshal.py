"""Ruby Marshal through rubymarshal: Symbols vs Strings, binary Strings, exceptions, hostile bytes."""

from __future__ import annotations

import base64
import json

import pytest

from scout_persist import ruby_marshal as M
from scout_persist.errors import CorruptPayloadError, UnsupportedValueError
from scout_persist.rubyvalues import Symbol


def test_fixture_marshal_results(ruby_fixtures):
    data = (ruby_fixtures / "scout-jobs/var/jobs/ReturnCases/ret_marshal/Default.marshal").read_bytes()
    value = M.loads(data)
    keys = list(value)
    assert [type(k) is Symbol for k in keys] == [True, False, True, True]
    assert value["str"] == "val" and isinstance(value["str"], Symbol)
    assert value[Symbol("nested")] == {Symbol("a"): [None, True, "x"]}
    assert M.dumps(value) == data  # Ruby's bytes, symbol links included


def test_round_trip_values():
    value = [
        1,
        -(2**70),
        2**40,
        1.5,
        "ñ",
        b"\x00\xff",
        None,
        True,
        False,
        Symbol("s"),
        Symbol("s"),
        {"a": [Symbol("s")]},
    ]
    back = M.loads(M.dumps(value))
    assert back == value
    assert isinstance(back[9], Symbol) and isinstance(back[5], bytes) and type(back[4]) is str


def test_exceptions_decode_and_reencode_exactly(ruby_fixtures):
    n = 0
    for f in (ruby_fixtures / "scout-jobs/var/jobs").rglob("*.info"):
        info = json.loads(f.read_bytes())
        if "exception" not in info:
            continue
        raw = base64.b64decode(info["exception"])
        exc = M.loads(raw)
        assert isinstance(exc, M.RubyException)
        assert exc.backtrace == info["backtrace"]
        assert info["messages"][-1] == f"{exc.ruby_class}: {exc.message}"
        assert M.dump_exception(exc) == raw
        n += 1
    assert n >= 4


def test_python_class_travels_as_an_ivar():
    exc = M.RubyException("RuntimeError", "boom", ["a.py:1:in `f'"], {"@python_class": "ValueError"})
    back = M.loads(M.dump_exception(exc))
    assert back.class_name == "ValueError" and back.ruby_class == "RuntimeError"
    assert back.python_class == "ValueError"


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b"\x04\x09[\x00", b"\x04\x08", b"\x04\x08[\x07i\x06", b'\x04\x08I"\x7fabc', b"\x04\x08\xfe"],
)
def test_hostile_bytes_are_corrupt_payloads(data):
    with pytest.raises(CorruptPayloadError, match=r"payload|Marshal"):
        M.loads(data, "where.marshal")


def test_deep_nesting_is_refused_cleanly():
    data = b"\x04\x08" + b"[\x06" * 100000 + b"0"
    with pytest.raises(CorruptPayloadError):
        M.loads(data, "deep")


def test_unsupported_values():
    with pytest.raises(UnsupportedValueError, match="Marshal"):
        M.dumps({1, 2})


@pytest.mark.parametrize(
    "data, value",
    [
        (b"\x04\x08}\x06:\x06ai\x06i\x00", {Symbol("a"): 1}),  # Hash.new(0).merge(a: 1): pairs kept
        (b'\x04\x08C:\x13IndiferentHash{\x06I"\x06a\x06:\x06ETi\x06', {"a": 1}),  # a Hash subclass (rbbt infos)
        (b"\x04\x08[\x07}\x00i\x00@\x06", [{}, {}]),  # a link back to a Hash with default
        (b'\x04\x08[\x07"\x08abcI"\x06x\x06:\x06EF', [b"abc", "x"]),  # binary vs US-ASCII strings
    ],
)
def test_ruby_shapes_rubymarshal_lacks(data, value):
    assert M.loads(data) == value


def test_struct_is_kept_as_an_object():
    obj = M.loads(b"\x04\x08S:\x08Foo\x06:\x06ai\x07")
    assert obj.ruby_class_name == "Foo" and obj.attributes == {"a": 2}
