"""Scout result bytes per type (§7.2), .gz reading, and the pickle serializer with its HMAC trust rule."""

from __future__ import annotations

import gzip
import hashlib
import hmac
from fractions import Fraction

import pytest

from scout_persist import serializers as S
from scout_persist.rubydigest import ScoutPath, Symbol
from scout_persist.errors import CorruptPayloadError, UnsupportedValueError, UntrustedPayloadError


def test_every_fixture_result_loads_and_dumps_to_rubys_bytes(manifest, ruby_fixtures):
    """Each Ruby result re-serialises to the very bytes Ruby wrote (path/file hold a path; streams are raw)."""
    root = ruby_fixtures / "scout-jobs"
    n = 0
    for rel, step in manifest["steps"].items():
        if "result" not in step or step["type"] in ("path", "file") or rel.endswith("ret_stream/Default"):
            continue
        data = (root / rel).read_bytes()
        value = S.load(data, step["type"], path=str(root / rel))
        assert S.dump(value, step["type"]) == data, rel
        n += 1
    print(f"{n} fixture results re-serialised byte for byte")
    assert n >= 150


@pytest.mark.parametrize(
    "type, data, value",
    [
        ("string", b"  padded \n", "padded"),
        ("text", b"  padded \n", "  padded \n"),
        ("integer", b" 1_000abc", 1000),
        ("integer", b"abc", 0),
        ("float", b"1e-7", 1e-7),
        ("float", b"x", 0.0),
        ("boolean", b"yes\n", True),
        ("boolean", b"On", False),
        ("array", b"a\n\nb\n\n", ["a", "", "b"]),
        ("array", b"", []),
        ("integer_array", b"1\n2\n", [1, 2]),
        ("boolean_array", b"true\nno", [True, False]),
        ("json", b"", None),
        ("json", b'{"a":[1,2.5]}', {"a": [1, 2.5]}),
        ("serializer", b'{"ser":true}', {"ser": True}),
        ("yaml", b"---\n:sym: :val\n\"y\": 1\nnil:\n", {Symbol("sym"): Symbol("val"), "y": 1, "nil": None}),
        ("binary", b"\x80\xff\n", b"\x80\xff\n"),
        (None, b"raw", b"raw"),
        ("string", "ñandú".encode() + b"\xff", "ñandú"),  # Ruby's fixutf8 drops invalid bytes
    ],
)
def test_load_like_ruby(type, data, value):
    got = S.load(data, type)
    assert got == value and type_of(got) == type_of(value)


def type_of(v):
    return "Symbol" if isinstance(v, Symbol) else type(v).__name__


def test_yaml_symbols_survive_a_round_trip():
    value = {Symbol("k"): [Symbol("a"), ":not a symbol", "y", "yes", None, 1.0e-7], "on": "n"}
    data = S.dump(value, "yaml")
    assert data.startswith(b"---\n:k:\n- :a\n") and b'- ":not a symbol"' in data and b'- "y"' in data
    back = S.load(data, "yaml")
    assert back == value
    assert isinstance(list(back)[0], Symbol) and isinstance(back[Symbol("k")][0], Symbol)
    assert not isinstance(back[Symbol("k")][1], Symbol)


def test_path_and_file_results(tmp_path):
    job = tmp_path / "var/jobs/W/t/Default"
    job.parent.mkdir(parents=True)
    out = tmp_path / "var/jobs/W/t/Default.files/out.txt"
    out.parent.mkdir()
    out.write_text("x")
    data = S.dump(ScoutPath(str(out)), "path")
    assert data == str(out).encode()
    assert S.load(data, "path", path=str(job)) == str(job)  # a path result is the job's own path (quirk 21)
    assert S.load(data, "file", path=str(job)) == str(out)
    assert S.load(b"./Default.files/out.txt", "file", path=str(job)) == str(out)
    assert S.load(b"/gone/elsewhere", "file", path=str(job)) == str(job)  # missing target: the result path
    moved = S.load(b"/old/root/out.txt", "file", path=str(job), relocate=lambda p: str(out))
    assert moved == str(out)
    assert S.load(b"./a\n/b\n", "file_array", path=str(job)) == [str(job.parent) + "/a", "/b"]


def test_gz_results_are_read_transparently():
    data = gzip.compress(b"1\n2\n3")
    assert S.load(data, "integer_array", path="/r/var/jobs/W/t/Default.gz") == [1, 2, 3]
    with pytest.raises(CorruptPayloadError, match="gzip"):
        S.load(b"not gzip", "text", path="/r/x.gz")


def test_tsv_types():
    for t in (
        S.TSV("ID", ["A", "B"], "double", {"k": [["a", "b"], ["c"]]}),
        S.TSV("ID", ["A"], "single", {"k": "v", "k2": "w"}),
        S.TSV("Gene", ["A", "B"], "list", {"g": ["1", "2"]}, {"cast": Symbol("to_i"), "sep": "x"}),
    ):
        data = S.dump(t, "tsv")
        back = S.load(data, "tsv")
        assert (back.key_field, back.fields, back.type, back.data, back.options) == (
            t.key_field, t.fields, t.type, t.data, t.options)
    assert S.dump(S.TSV("ID", ["A"], "double", {"k": [["a", "b"]]}), "tsv") == b"#: :type=:double\n#ID\tA\nk\ta|b\n"


@pytest.mark.parametrize(
    "value, type, match",
    [
        ([1], "string", "scalar"),
        ({"a": 1}, "integer", "scalar"),
        ("x", "array", "needs a list"),
        (float("nan"), "json", "NaN"),
        (object(), "json", "no Scout JSON form"),
        ({"a": 1}, "tsv", "TSV"),
        ("x", "hash", "unknown"),
        (object(), "marshal", "Marshal"),
    ],
)
def test_values_a_type_cannot_hold_are_refused(value, type, match):
    with pytest.raises(UnsupportedValueError, match=match):
        S.dump(value, type)


def test_unknown_type_on_load():
    with pytest.raises(UnsupportedValueError, match="unknown"):
        S.load(b"x", "hash")


def test_corrupt_json_and_yaml_are_errors_not_values():
    with pytest.raises(CorruptPayloadError, match="JSON"):
        S.load(b'{"a":', "json", path="/r/x.json")
    with pytest.raises(CorruptPayloadError, match="YAML"):
        S.load(b"a: [1\n", "yaml", path="/r/x.yaml")


# ----------------------------------------------------------------------------------------------- pickle
VALUE = {"frac": Fraction(2, 7), "set": {1, 2}, "bytes": b"\x00" * 1000}


def test_pickle_round_trip_and_record(monkeypatch):
    monkeypatch.delenv(S.HMAC_ENV, raising=False)
    data, record = S.dump_pickle_with_record(VALUE, "zstd:3")
    assert data.startswith(S.PICKLE_MAGIC)
    assert record["serializer"] == "pickle" and record["codec"] == "zstd" and record["hmac"] is False
    assert record["stored_size"] == len(data) < record["size"]
    assert record["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert S.load(data, "pickle", record=record) == VALUE
    assert S.load(data, "binary", record=record) == VALUE  # the record, not the Ruby type, decides
    plain = S.dump_pickle(VALUE, "none")
    assert S.load(plain, "pickle") == VALUE


def test_hmac_trust_rule(monkeypatch):
    monkeypatch.setenv(S.HMAC_ENV, "s3cret")
    signed = S.dump(VALUE, "pickle")
    assert signed[len(S.PICKLE_MAGIC)] == 32
    assert S.load(signed, "pickle") == VALUE
    # another writer's key
    with pytest.raises(UntrustedPayloadError, match="does not verify"):
        S.load(signed, "pickle", hmac_key=b"other")
    # tampered payload, same length
    body = bytearray(signed)
    body[-5] ^= 0xFF
    with pytest.raises(UntrustedPayloadError, match="does not verify"):
        S.load(bytes(body), "pickle")
    # an unsigned pickle when a key is set
    monkeypatch.delenv(S.HMAC_ENV)
    unsigned = S.dump(VALUE, "pickle")
    monkeypatch.setenv(S.HMAC_ENV, "s3cret")
    with pytest.raises(UntrustedPayloadError, match="no HMAC"):
        S.load(unsigned, "pickle")
    # no key: pickles load (documented: the store is trusted)
    monkeypatch.delenv(S.HMAC_ENV)
    assert S.load(signed, "pickle") == VALUE


def test_hmac_refusal_happens_before_unpickling(monkeypatch, tmp_path):
    """A hostile pickle with a forged-looking envelope never runs."""
    import pickle

    from scout_persist.codecs import compress

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    body = compress(pickle.dumps(Evil(), protocol=5), "zstd:3")
    forged = S.PICKLE_MAGIC + bytes([32]) + hmac.new(b"guess", body, hashlib.sha256).digest() + body
    monkeypatch.setenv(S.HMAC_ENV, "real-key")
    with pytest.raises(UntrustedPayloadError):
        S.load(forged, "pickle")
    assert not marker.exists()


def test_damaged_pickles(monkeypatch):
    monkeypatch.delenv(S.HMAC_ENV, raising=False)
    data, record = S.dump_pickle_with_record(VALUE)
    with pytest.raises(CorruptPayloadError, match="checksum"):
        S.load(data[:-1] + bytes([data[-1] ^ 1]), "pickle", record=record)
    with pytest.raises(CorruptPayloadError, match="truncated"):
        S.load(data[:-10], "pickle", record=record)
    with pytest.raises(CorruptPayloadError):
        S.load(data[:-10], "pickle")
    with pytest.raises(CorruptPayloadError, match="not a scout-persist pickle"):
        S.load(b"\x80\x05K\x01.", "pickle")
    with pytest.raises(UnsupportedValueError, match="cannot be pickled"):
        S.dump(lambda: 1, "pickle")


def test_binary_bytes_are_never_unpickled_whatever_they_start_with(monkeypatch):
    """Bytes cached from anywhere (a download) may carry our envelope: type binary returns them raw; only a record
    (or an explicit type pickle) unpickles."""
    monkeypatch.delenv(S.HMAC_ENV, raising=False)
    data = S.dump(VALUE, "pickle")
    assert S.load(data, "binary") == data
    assert S.load(data, None) == data
    assert S.load(b"SCOUTPY but not ours\n", "binary") == b"SCOUTPY but not ours\n"
    assert S.load(data, "pickle") == VALUE


# -- pickle layout version 2: out-of-band buffers -----------------------------------------------------
def test_arrays_travel_out_of_band_and_load_writable():
    import numpy as np
    a = np.arange(300_000, dtype=np.int64) % 1000
    data, record = S.dump_pickle_with_record(a, "zstd:3")
    assert data.startswith(S.PICKLE_MAGIC) and record["size"] >= a.nbytes
    b = S.load_pickle(data, "var/jobs/W/t/arr", record)
    assert np.array_equal(a, b) and b.flags.writeable
    strided = S.load_pickle(S.dump_pickle(a[::3], "none"), "strided")  # not contiguous: pickled in-band
    assert np.array_equal(strided, a[::3])


def test_version_1_pickles_still_load():
    import pickle

    from scout_persist.codecs import compress

    body = compress(pickle.dumps({"legacy": True}, protocol=5), "zstd:3")
    assert S.load_pickle(S.PICKLE_MAGIC_V1 + bytes([0]) + body, "old") == {"legacy": True}


@pytest.mark.parametrize("damage", ["truncate", "flip", "table"])
def test_damaged_version_2_payload_is_detected_without_a_record(damage):
    data = bytearray(S.dump_pickle(list(range(50_000)), "zstd:3"))
    if damage == "truncate":
        data = data[:-40]
    elif damage == "flip":
        data[-30] ^= 0x10
    else:
        data[len(S.PICKLE_MAGIC) + 1 + 4] ^= 0x01  # a part length in the table
    with pytest.raises(CorruptPayloadError) as err:
        S.load_pickle(bytes(data), "var/jobs/W/t/damaged")
    assert "var/jobs/W/t/damaged" in str(err.value)
