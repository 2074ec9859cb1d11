"""Scout result bytes per type (§7.2), .gz reading, and the pickle serializer with its HMAC trust rule."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
from fractions import Fraction

import pytest

from scout_persist import (
    blosc_codec,
    checksums,
    codec_spec,
    envelope_parts,
    pickle_envelope as P,
    pickle_key,
    scout_types as S,
)
from scout_persist.errors import CorruptPayloadError, InvalidInputError, UnsupportedValueError, UntrustedPayloadError
from scout_persist.pickle_key import HMAC_ENV
from scout_persist.rubyvalues import ScoutPath, Symbol


@pytest.fixture(autouse=True)
def _small_arrays_take_the_blosc2_path(monkeypatch):
    """Test arrays are small: lower the size from which 'auto' uses Blosc2 (32 MiB) so that they exercise it."""
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", 1 << 18)


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
        ("yaml", b'---\n:sym: :val\n"y": 1\nnil:\n', {Symbol("sym"): Symbol("val"), "y": 1, "nil": None}),
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
    assert isinstance(next(iter(back)), Symbol) and isinstance(back[Symbol("k")][0], Symbol)
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
            t.key_field,
            t.fields,
            t.type,
            t.data,
            t.options,
        )
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
def _without_a_key(monkeypatch):
    """The serializer's own rules without a key (pickle_key itself never hands out none: a key that cannot be had is
    a PickleKeyError): the key is $SCOUT_PERSIST_HMAC_KEY when set, else pickles are unsigned."""
    monkeypatch.delenv(HMAC_ENV, raising=False)
    monkeypatch.setattr(pickle_key, "current", lambda: os.environ.get(HMAC_ENV, "").encode() or None)


VALUE = {"frac": Fraction(2, 7), "set": {1, 2}, "bytes": b"\x00" * 1000}


def test_pickle_round_trip_and_record(monkeypatch):
    _without_a_key(monkeypatch)
    data, record = P.dump_pickle_with_record(VALUE, "zstd:3")
    assert data.startswith(P.PICKLE_MAGIC)
    assert record["serializer"] == "pickle" and record["codec"] == "zstd:3" and record["hmac"] is False
    assert record["stored_size"] == len(data) < record["size"]
    assert record["checksum"] == checksums.checksum(data) and record["checksum"].startswith("blake3:")
    assert S.load(data, "pickle", record=record) == VALUE
    assert S.load(data, "binary", record=record) == VALUE  # the record, not the Ruby type, decides
    plain = P.dump_pickle(VALUE, "none")
    assert S.load(plain, "pickle") == VALUE


def test_hmac_trust_rule(monkeypatch):
    monkeypatch.setenv(HMAC_ENV, "s3cret team key of 32 bytes or more")
    signed = S.dump(VALUE, "pickle")
    assert signed[len(P.PICKLE_MAGIC)] == 32
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
    _without_a_key(monkeypatch)
    unsigned = S.dump(VALUE, "pickle")
    monkeypatch.setenv(HMAC_ENV, "s3cret team key of 32 bytes or more")
    with pytest.raises(UntrustedPayloadError, match="no HMAC"):
        S.load(unsigned, "pickle")
    # no key: pickles load (documented: the store is trusted)
    _without_a_key(monkeypatch)
    assert S.load(signed, "pickle") == VALUE


def test_hmac_refusal_happens_before_unpickling(monkeypatch, tmp_path):
    """A hostile pickle with a forged-looking envelope never runs."""
    import pickle

    from scout_persist.zstd_codec import compress

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    body = compress(pickle.dumps(Evil(), protocol=5), "zstd:3")
    forged = P.PICKLE_MAGIC + bytes([32]) + hmac.new(b"guess", body, hashlib.sha256).digest() + body
    monkeypatch.setenv(HMAC_ENV, "the real team key, 32 bytes or more")
    with pytest.raises(UntrustedPayloadError):
        S.load(forged, "pickle")
    assert not marker.exists()


def test_damaged_pickles(monkeypatch):
    _without_a_key(monkeypatch)
    data, record = P.dump_pickle_with_record(VALUE)
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
    _without_a_key(monkeypatch)
    data = S.dump(VALUE, "pickle")
    assert S.load(data, "binary") == data
    assert S.load(data, None) == data
    assert S.load(b"SCOUTPY but not ours\n", "binary") == b"SCOUTPY but not ours\n"
    assert S.load(data, "pickle") == VALUE


GOLDEN = __import__("pathlib").Path(__file__).parent / "data" / "pickle-envelopes"


def _golden(name: str) -> tuple[bytes, dict | None]:
    import json

    record = GOLDEN / f"{name}.record.json"
    return (GOLDEN / f"{name}.bin").read_bytes(), json.loads(record.read_text()) if record.exists() else None


def _golden_value():
    import numpy as np

    return {
        "codes": (np.arange(4096, dtype=np.int64) // 7) % 100,
        "floats": np.linspace(0.0, 1.0, 257),
        "frac": Fraction(2, 7),
        "text": "golden payload " * 20,
    }


def _same(a, b) -> bool:
    import numpy as np

    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


@pytest.mark.parametrize("name", ["v2-zstd3", "v2-none", "v2-zstd3-hmac"])
def test_version_2_payloads_written_by_the_previous_code_still_load(name, monkeypatch):
    """Golden files written by scout-persist 84ac831 (envelope v2, sha256 records), read as they are."""
    _without_a_key(monkeypatch)
    data, record = _golden(name)
    assert data.startswith(P.PICKLE_MAGIC_V2) and record["checksum"].startswith("sha256:")
    key = b"golden-key" if record["hmac"] else None
    assert _same(P.load_pickle(data, name, record, hmac_key=key), _golden_value())
    assert _same(P.load_pickle(data, name, hmac_key=key), _golden_value())  # without its record
    assert _same(S.load(data, "binary", record=record, hmac_key=key), _golden_value())
    value = P.load_pickle(data, name, record, hmac_key=key)
    assert value["codes"].flags.writeable
    bad = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CorruptPayloadError, match="checksum"):
        P.load_pickle(bad, name, record, hmac_key=key)
    if record["hmac"]:
        with pytest.raises(UntrustedPayloadError):
            P.load_pickle(data, name, record, hmac_key=b"another key")


def test_version_1_golden_payload_still_loads(monkeypatch):
    _without_a_key(monkeypatch)
    data, _ = _golden("v1-zstd3")
    assert P.load_pickle(data, "old") == {"legacy": True}


# -- pickle layout version 3: a codec per part, checksum trailer ---------------------------------------
def _array_value():
    import numpy as np

    n = 400_000
    codes = (np.arange(n, dtype=np.int64) // 64) % 50_000 + np.random.default_rng(0).integers(0, 16, n)
    return {
        "codes": codes,
        "noise": np.random.default_rng(1).standard_normal(n // 4),
        "label": "x" * 100,
        "small": np.arange(10, dtype=np.int16),
    }


def test_auto_stores_arrays_with_blosc2_and_the_rest_with_zstd(monkeypatch):
    import numpy as np

    _without_a_key(monkeypatch)
    monkeypatch.delenv(codec_spec.ENV_VAR, raising=False)
    value = _array_value()
    data, record = P.dump_pickle_with_record(value)  # auto is the default
    assert data.startswith(P.PICKLE_MAGIC)
    # a short pickle stream and a 20-byte array (under 4 KiB), codes (blosc2), noise (barely shrinks): plain but codes
    assert record["codec"] == "none,blosc2:lz4:5:bitshuffle:8,none,none"
    assert record["checksum"] == checksums.checksum(data) and record["stored_size"] == len(data)
    arrays = value["codes"].nbytes + value["noise"].nbytes + value["small"].nbytes
    assert arrays < record["size"] < arrays + 2000  # the arrays' bytes and a short pickle stream
    zstd_size = len(P.dump_pickle(value, "zstd:3"))
    assert len(data) < zstd_size
    for loaded in (P.load_pickle(data, "A", record), P.load_pickle(data, "A")):
        assert loaded["label"] == value["label"]
        for k in ("codes", "noise", "small"):
            assert loaded[k].dtype == value[k].dtype and np.array_equal(loaded[k], value[k])
            assert loaded[k].flags.writeable and loaded[k].flags.aligned


@pytest.mark.parametrize("spec", ["auto", "zstd:3", "zstd:19", "none"])
def test_every_spec_round_trips_arrays_of_every_layout(spec, monkeypatch):
    import numpy as np

    _without_a_key(monkeypatch)
    rng = np.random.default_rng(5)
    value = [
        rng.standard_normal((300, 200)).astype(np.float16),
        np.asfortranarray(rng.integers(0, 9, (400, 300))),
        (rng.standard_normal(40_000) + 1j).astype(np.complex128),
        rng.integers(0, 2, 300_000).astype(bool),
        np.arange(100_000, dtype=np.uint8),
        np.zeros(30_000, np.dtype([("a", "u1"), ("b", "<f8"), ("c", "S3")])),
        np.arange(50_000).astype("datetime64[s]"),
        np.arange(90_000, dtype=np.int32)[::3],  # not contiguous: pickled in-band
        np.array([], dtype=np.float64),
        bytearray(b"raw " * 70_000),
    ]
    data, record = P.dump_pickle_with_record(value, spec)
    assert all(c == spec for c in record["codec"].split(",")) or spec == "auto"
    loaded = P.load_pickle(data, "L", record)
    for a, b in zip(value, loaded):
        assert type(a) is type(b)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            assert b.flags.f_contiguous or not a.flags.f_contiguous  # Fortran order kept
        else:
            assert a == b


def test_compression_variable_is_followed_and_a_bad_value_is_named(monkeypatch):
    _without_a_key(monkeypatch)
    monkeypatch.setenv(codec_spec.ENV_VAR, "none")
    data, record = P.dump_pickle_with_record(VALUE)
    assert record["codec"] == "none" and P.load_pickle(data, "E", record) == VALUE
    monkeypatch.setenv(codec_spec.ENV_VAR, "zstd:19")
    assert P.dump_pickle_with_record(VALUE)[1]["codec"] == "zstd:19"
    monkeypatch.setenv(codec_spec.ENV_VAR, "blosc")
    with pytest.raises(InvalidInputError) as err:
        P.dump_pickle_with_record(VALUE)
    assert codec_spec.ENV_VAR in str(err.value) and "'blosc'" in str(err.value) and "'auto'" in str(err.value)


def test_without_blosc2_writing_falls_back_to_zstd_and_reading_names_the_install(monkeypatch):
    import sys

    import numpy as np

    from scout_persist.errors import MissingDependencyError

    _without_a_key(monkeypatch)
    value = _array_value()
    with_blosc2 = P.dump_pickle(value, "auto")
    monkeypatch.setitem(sys.modules, "blosc2", None)  # import blosc2 -> ImportError
    data, record = P.dump_pickle_with_record(value, "auto")
    assert record["codec"] == "none,zstd:3,none,none"
    assert np.array_equal(P.load_pickle(data, "F", record)["codes"], value["codes"])
    with pytest.raises(MissingDependencyError, match=r"pip install 'scout-persist\[arrays\]'") as err:
        P.load_pickle(with_blosc2, "var/jobs/W/t/arrays")
    assert "var/jobs/W/t/arrays" in str(err.value)


def test_without_blake3_the_envelope_and_record_use_sha256(monkeypatch):
    import sys

    _without_a_key(monkeypatch)
    written = P.dump_pickle(VALUE, "zstd:3")
    monkeypatch.setitem(sys.modules, "blake3", None)
    data, record = P.dump_pickle_with_record(VALUE, "zstd:3")
    assert record["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert P.load_pickle(data, "S", record) == VALUE and P.load_pickle(data, "S") == VALUE
    from scout_persist.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="blake3"):
        P.load_pickle(written, "S")


def _with_trailer(data) -> bytes:
    """An unsigned version-3 ``data`` with its checksum trailer recomputed, as anyone (no key needed) can."""
    data = bytes(data)
    assert data[len(P.PICKLE_MAGIC)] == 0, "signed envelopes end with their HMAC, not the trailer"
    h = checksums.new_checksum("blake3")
    h.update(data[: -checksums.CHECKSUM_SIZE])
    return data[: -checksums.CHECKSUM_SIZE] + h.digest()


@pytest.mark.parametrize("where", ["chunk", "trailer", "hmac", "header length"])
def test_version_3_hmac_signs_every_byte_and_is_checked_first(where, monkeypatch):
    monkeypatch.setenv(HMAC_ENV, "a team key of 32 bytes or more, ok")
    data, record = P.dump_pickle_with_record(_array_value(), "auto")
    data = bytearray(data)
    assert data[len(P.PICKLE_MAGIC)] == 32  # the HMAC is last: it signs the header, the chunks and the trailer
    assert P.load_pickle(bytes(data), "K")["label"] == "x" * 100
    at = {
        "chunk": len(data) // 2,
        "trailer": len(data) - 40,
        "hmac": len(data) - 1,
        "header length": len(P.PICKLE_MAGIC) + 2,
    }[where]
    data[at] ^= 0x20
    with pytest.raises(UntrustedPayloadError, match="does not verify"):  # not parsed before the HMAC passes
        P.load_pickle(bytes(data), "K")
    _without_a_key(monkeypatch)
    with pytest.raises(CorruptPayloadError, match="checksum"):  # without a key: the record's checksum catches it
        P.load_pickle(bytes(data), "K", record)
    if where == "hmac":  # without key nor record: the trailer covers the content, intact here
        assert P.load_pickle(bytes(data), "K")["label"] == "x" * 100
    else:
        with pytest.raises(CorruptPayloadError):  # the trailer (or the header) catches it
            P.load_pickle(bytes(data), "K")


def test_an_unsigned_version_3_payload_is_refused_when_a_key_is_set(monkeypatch):
    _without_a_key(monkeypatch)
    data = P.dump_pickle({"a": 1})
    monkeypatch.setenv(HMAC_ENV, "a team key of 32 bytes or more, ok")
    with pytest.raises(UntrustedPayloadError, match="no HMAC"):
        P.load_pickle(data, "N")


def _damage(data: bytes, how: str) -> bytes:
    import struct

    header_end = len(P.PICKLE_MAGIC) + 1 + 4 + struct.unpack_from("<I", data, len(P.PICKLE_MAGIC) + 1)[0]
    flip = lambda b, i: b[:i] + bytes([b[i] ^ 0x04]) + b[i + 1 :]  # noqa: E731
    return {
        "truncated": lambda: data[:-100],
        "truncated to the header": lambda: data[:header_end],
        "extended": lambda: data + b"\0",
        "flip in magic": lambda: flip(data, 7),
        "flip in HMAC length": lambda: flip(data, len(P.PICKLE_MAGIC)),
        "flip in header": lambda: flip(data, header_end - 3),
        "flip in first chunk": lambda: flip(data, header_end + 20),
        "flip in middle": lambda: flip(data, len(data) // 2),
        "flip in trailer": lambda: flip(data, len(data) - 1),
    }[how]()


DAMAGE = [
    "truncated",
    "truncated to the header",
    "extended",
    "flip in magic",
    "flip in HMAC length",
    "flip in header",
    "flip in first chunk",
    "flip in middle",
    "flip in trailer",
]


@pytest.mark.parametrize("spec", ["auto", "zstd:3", "none"])
@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_version_3_payload_is_corrupt_with_and_without_its_record(spec, how, monkeypatch):
    _without_a_key(monkeypatch)
    data, record = P.dump_pickle_with_record(_array_value(), spec)
    bad = _damage(data, how)
    where = "var/jobs/W/t/damaged"
    with pytest.raises(CorruptPayloadError, match=where):
        P.load_pickle(bad, where, record)
    with pytest.raises(CorruptPayloadError, match=where):
        P.load_pickle(bad, where)


@pytest.mark.parametrize("field", ["checksum", "stored_size", "codec", "size", "other payload"])
def test_a_wrong_record_is_corrupt(field, monkeypatch):
    _without_a_key(monkeypatch)
    data, record = P.dump_pickle_with_record(_array_value(), "auto")
    other, other_record = P.dump_pickle_with_record({"other": 1}, "auto")
    wrong = dict(record)
    if field == "other payload":
        wrong = other_record
    elif field == "checksum":
        wrong["checksum"] = checksums.checksum(other)
    elif field == "stored_size":
        wrong["stored_size"] += 1
    elif field == "codec":
        wrong["codec"] = "zstd:3"  # checksum and sizes still match: only the codec disagrees
    else:
        wrong["size"] += 8
    with pytest.raises(CorruptPayloadError, match="var/jobs/W/t/R"):
        P.load_pickle(data, "var/jobs/W/t/R", wrong)


def test_the_record_checksum_or_the_trailer_is_checked_never_the_bytes_taken_on_trust(monkeypatch):
    """A payload whose chunk bytes and trailer were both rewritten: the record still catches it."""
    _without_a_key(monkeypatch)
    data, record = P.dump_pickle_with_record(list(range(1000)), "none")
    changed = bytearray(data)
    i = changed.index(bytes([231, 3]))  # a pickled 999, BININT2
    changed[i] = 230
    rewritten = _with_trailer(changed)
    assert P.load_pickle(rewritten, "T")[-1] == 998  # self-consistent without a record: it is what it says
    with pytest.raises(CorruptPayloadError, match="checksum"):
        P.load_pickle(rewritten, "T", record)


def _with_header(data: bytes, edit) -> bytes:
    """An unsigned version-3 ``data`` whose JSON header was changed by ``edit`` (trailer recomputed)."""
    import json
    import struct

    start = len(P.PICKLE_MAGIC) + 1
    (n,) = struct.unpack_from("<I", data, start)
    header = json.loads(data[start + 4 : start + 4 + n])
    header = edit(header) or header
    new = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return _with_trailer(data[:start] + struct.pack("<I", len(new)) + new + data[start + 4 + n :])


HEADER_EDITS = {
    "unknown part codec": (lambda h: h["parts"][0].__setitem__("codec", "zstd:3:future"), "newer"),
    "no checksum algorithm": (lambda h: h.pop("checksum") and None, "no checksum algorithm"),
    "unknown checksum algorithm": (lambda h: h.__setitem__("checksum", "md5"), "md5"),
    "no parts": (lambda h: h.pop("parts") and None, "no parts"),
    "not JSON": (lambda h: b"{not json", "header"),
    "not UTF-8": (lambda h: b'{"parts": "\xff"}', "header"),
    "a list": (lambda h: h["parts"], "no parts"),
}


@pytest.mark.parametrize("case", list(HEADER_EDITS))
def test_a_consistent_envelope_with_a_bad_header_is_corrupt(case, monkeypatch):
    """Even with a trailer that matches (someone rewrote it), a header this version cannot follow is refused."""
    _without_a_key(monkeypatch)
    edit, message = HEADER_EDITS[case]
    forged = _with_header(P.dump_pickle({"a": 1}, "zstd:3"), edit)
    with pytest.raises(CorruptPayloadError, match=message) as err:
        P.load_pickle(forged, "var/jobs/W/t/H")
    assert "var/jobs/W/t/H" in str(err.value)


# -- pickle layout version 2: out-of-band buffers -----------------------------------------------------
def test_arrays_travel_out_of_band_and_load_writable():
    import numpy as np

    a = np.arange(300_000, dtype=np.int64) % 1000
    data, record = P.dump_pickle_with_record(a, "zstd:3")
    assert data.startswith(P.PICKLE_MAGIC) and record["size"] >= a.nbytes
    b = P.load_pickle(data, "var/jobs/W/t/arr", record)
    assert np.array_equal(a, b) and b.flags.writeable
    strided = P.load_pickle(P.dump_pickle(a[::3], "none"), "strided")  # not contiguous: pickled in-band
    assert np.array_equal(strided, a[::3])


def test_version_1_pickles_still_load(monkeypatch):
    _without_a_key(monkeypatch)  # version 1 envelopes of unsigned stores
    import pickle

    from scout_persist.zstd_codec import compress

    body = compress(pickle.dumps({"legacy": True}, protocol=5), "zstd:3")
    assert P.load_pickle(P.PICKLE_MAGIC_V1 + bytes([0]) + body, "old") == {"legacy": True}


@pytest.mark.parametrize("damage", ["truncate", "flip", "table"])
def test_damaged_version_2_payload_is_detected_without_a_record(damage, monkeypatch):
    _without_a_key(monkeypatch)
    data = bytearray((GOLDEN / "v2-zstd3.bin").read_bytes())
    if damage == "truncate":
        data = data[:-40]
    elif damage == "flip":
        data[-30] ^= 0x10
    else:
        data[len(P.PICKLE_MAGIC) + 1 + 4] ^= 0x01  # a part length in the table
    with pytest.raises(CorruptPayloadError) as err:
        P.load_pickle(bytes(data), "var/jobs/W/t/damaged")
    assert "var/jobs/W/t/damaged" in str(err.value)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_large_decoded_arrays_are_private_memory_across_fork(monkeypatch):
    """Big parts decode into anonymous mappings: they must be private (copy-on-write) like heap memory, or a
    forked worker writing to its copy of an array would change the parent's."""
    import os

    import numpy as np

    _without_a_key(monkeypatch)
    a = np.arange(envelope_parts.MAPPED_MIN, dtype=np.int64)
    loaded = P.load_pickle(P.dump_pickle(a, "auto"), "M")
    assert loaded.nbytes >= envelope_parts.MAPPED_MIN
    pid = os.fork()
    if pid == 0:  # the child writes to its copy and leaves at once
        loaded[0] = -1
        os._exit(0 if loaded[0] == -1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert loaded[0] == 0 and np.array_equal(loaded, a)


def test_yaml_text_pyyaml_scans_but_cannot_build_is_corrupt_not_a_crash():
    with pytest.raises(CorruptPayloadError, match="should hold YAML"):
        S.load(b"---\n- !!timestamp '1924-01-01 00:00:00+04:14:28'\n", "yaml")
