"""The payload codecs (checksums, codec_spec, zstd_codec, zstd_frames, blosc_codec, envelope_parts): zstd/gzip/plain
detection, records, streaming, envelope parts, and damage that must never pass as data."""

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest
import zstandard

from scout_persist import blosc_codec, checksums, codec_spec, envelope_parts, zstd_codec, zstd_frames
from scout_persist.errors import CorruptPayloadError, InvalidInputError

PAYLOAD = b"".join(b"line %d of a compressible payload\n" % i for i in range(50_000))
DEFAULT_BLOSC2_MIN = blosc_codec.BLOSC2_MIN


@pytest.fixture(autouse=True)
def _small_arrays_take_the_blosc2_path(monkeypatch):
    """Test arrays are small: lower the size from which 'auto' uses Blosc2 (32 MiB) so that they exercise it."""
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", 1 << 18)


def read_stream(data: bytes, where: str = "P", record: dict | None = None, chunk: int = 65536) -> bytes:
    reader = zstd_codec.open_decompressed(io.BytesIO(data), where, record)
    parts = []
    while True:
        part = reader.read(chunk)
        if not part:
            return b"".join(parts)
        parts.append(part)


# -- specs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, expected",
    [
        ("zstd:3", ("zstd", 3)),
        ("zstd:19", ("zstd", 19)),
        ("zstd", ("zstd", 3)),
        ("none", ("none", None)),
        (" ZSTD:1 ", ("zstd", 1)),
        ("auto", ("auto", None)),
        (" Auto ", ("auto", None)),
    ],
)
def test_parse_spec(spec, expected):
    assert codec_spec.parse_spec(spec) == expected


def test_parse_spec_default_and_environment(monkeypatch):
    monkeypatch.delenv(codec_spec.ENV_VAR, raising=False)
    assert codec_spec.parse_spec(None) == ("auto", None)
    monkeypatch.setenv(codec_spec.ENV_VAR, "zstd:19")
    assert codec_spec.parse_spec(None) == ("zstd", 19)
    monkeypatch.setenv(codec_spec.ENV_VAR, "none")
    assert zstd_codec.compress(b"abc") == b"abc"


@pytest.mark.parametrize("spec", ["lz4", "zstd:0", "zstd:23", "zstd:fast", "gzip:9", "blosc2", "auto:3", ""])
def test_bad_spec_names_value_rule_and_fix(spec):
    with pytest.raises(InvalidInputError) as err:
        codec_spec.parse_spec(spec or 7)
    message = str(err.value)
    assert repr(spec or 7) in message and "'auto'" in message and "'zstd:<level 1-22>'" in message


@pytest.mark.parametrize("call", ["compress", "encode_parts", "part_codec"])
def test_bad_environment_spec_names_the_variable(monkeypatch, call):
    monkeypatch.setenv(codec_spec.ENV_VAR, "brotli")
    run = {
        "compress": lambda: zstd_codec.compress(b"x"),
        "encode_parts": lambda: envelope_parts.encode_parts([b"x"]),
        "part_codec": lambda: envelope_parts.part_codec(None, 1 << 20, 8),
    }[call]
    with pytest.raises(InvalidInputError) as err:
        run()
    assert codec_spec.ENV_VAR in str(err.value) and "'brotli'" in str(err.value) and "'auto'" in str(err.value)


def test_auto_on_opaque_bytes_is_zstd_3_and_recorded_as_such():
    stored, record = zstd_codec.compress_with_record(PAYLOAD, "auto")
    assert (record["codec"], record["level"]) == ("zstd", 3)
    assert stored == zstd_codec.compress(PAYLOAD, "zstd:3")


# -- whole payloads -------------------------------------------------------------------------
def test_zstd_roundtrip_with_content_checksum_and_record():
    stored, record = zstd_codec.compress_with_record(PAYLOAD, "zstd:3")
    assert stored[:4] == zstd_frames.ZSTD_MAGIC
    params = zstandard.get_frame_parameters(stored)
    assert params.has_checksum
    assert record == {
        "codec": "zstd",
        "level": 3,
        "size": len(PAYLOAD),
        "stored_size": len(stored),
        "checksum": checksums.checksum(stored),
    }
    assert record["checksum"].startswith("blake3:")
    assert len(stored) < len(PAYLOAD) / 5
    assert zstd_codec.decompress(stored, "P", record) == PAYLOAD


def test_higher_level_compresses_smaller():
    assert len(zstd_codec.compress(PAYLOAD, "zstd:19")) < len(zstd_codec.compress(PAYLOAD, "zstd:1"))


def test_large_payload_is_compressed_multithreaded_and_reads_back():
    data = os.urandom(64) * (zstd_codec.MULTITHREAD_MIN // 64 + 1000)
    stored = zstd_codec.compress(data, "zstd:3")
    assert zstd_codec.decompress(stored) == data


@pytest.mark.parametrize(
    "stored",
    [PAYLOAD, gzip.compress(PAYLOAD), zstd_codec.compress(PAYLOAD), b"", zstd_codec.compress(PAYLOAD, "none")],
    ids=["plain", "gzip", "zstd", "empty", "none"],
)
def test_any_codec_reads_back_by_magic_bytes(stored):
    expected = PAYLOAD if stored else b""
    assert zstd_codec.decompress(stored) == expected
    assert read_stream(stored) == expected


def test_concatenated_zstd_frames_read_whole():
    stored = zstd_codec.compress(b"first ") + zstd_codec.compress(b"second")
    assert zstd_codec.decompress(stored) == b"first second"
    assert read_stream(stored) == b"first second"


# -- damage -----------------------------------------------------------------------------------
STORED = zstd_codec.compress(PAYLOAD)


def damaged():
    flip = lambda data, i: data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :]  # noqa: E731
    return {
        "truncated by 1": STORED[:-1],
        "truncated checksum": STORED[:-4],
        "truncated half": STORED[: len(STORED) // 2],
        "header only": STORED[:6],
        "flipped in a block": flip(STORED, len(STORED) // 2),
        "flipped in checksum": flip(STORED, len(STORED) - 2),
        "trailing garbage": STORED + b"garbage!",
    }


@pytest.mark.parametrize("case", list(damaged()))
def test_damaged_zstd_raises_naming_the_path(case):
    bad = damaged()[case]
    where = "s3://bucket/var/jobs/W/t/Default"
    with pytest.raises(CorruptPayloadError, match="s3://bucket/var/jobs/W/t/Default"):
        zstd_codec.decompress(bad, where)
    with pytest.raises(CorruptPayloadError, match="var/jobs/W/t/Default"):
        read_stream(bad, where)


def test_damaged_gzip_raises():
    stored = gzip.compress(PAYLOAD)
    for bad in (stored[:-3], stored[: len(stored) // 2], stored[:-6] + bytes([stored[-6] ^ 1]) + stored[-5:]):
        with pytest.raises(CorruptPayloadError, match="G"):
            zstd_codec.decompress(bad, "G")
        with pytest.raises(CorruptPayloadError, match="G"):
            read_stream(bad, "G")


def test_record_catches_damage_the_codec_cannot_see():
    # A plain payload has no inner checksum: only the record tells a changed byte.
    stored, record = zstd_codec.compress_with_record(b"plain text result\n", "none")
    changed = b"plain text resulT\n"
    with pytest.raises(CorruptPayloadError, match="blake3"):
        zstd_codec.decompress(changed, "R", record)
    with pytest.raises(CorruptPayloadError, match="blake3"):
        read_stream(changed, "R", record)
    with pytest.raises(CorruptPayloadError, match="record says"):
        zstd_codec.decompress(stored[:-1], "R", record)


def test_record_codec_mismatch_is_corrupt():
    _, record = zstd_codec.compress_with_record(PAYLOAD, "none")
    record["codec"] = "zstd"  # sizes and checksum match, only the codec disagrees
    with pytest.raises(CorruptPayloadError, match="codec"):
        zstd_codec.decompress(PAYLOAD, "R", record)
    with pytest.raises(CorruptPayloadError, match="codec"):
        read_stream(PAYLOAD, "R", record)


def test_unknown_checksum_algorithm_is_refused():
    stored, record = zstd_codec.compress_with_record(b"x", "none")
    record["checksum"] = "md4:00"
    with pytest.raises(InvalidInputError, match="md4"):
        zstd_codec.decompress(stored, "R", record)


def test_stream_reader_names_the_file_by_default(tmp_path):
    path = tmp_path / "result"
    path.write_bytes(STORED[:-1])
    with open(path, "rb") as fh, pytest.raises(CorruptPayloadError, match=str(path)):
        zstd_codec.open_decompressed(fh).read()


# -- streaming -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["zstd:3", "zstd:19", "none"])
def test_compress_stream_record_matches_bytes_written(spec):
    dst = io.BytesIO()
    record = zstd_codec.compress_stream(io.BytesIO(PAYLOAD), dst, spec)
    stored = dst.getvalue()
    assert record["size"] == len(PAYLOAD)
    assert record["stored_size"] == len(stored)
    assert record["checksum"] == checksums.checksum(stored)
    assert record["codec"] == codec_spec.parse_spec(spec)[0]
    assert read_stream(stored, "S", record) == PAYLOAD
    assert zstd_codec.decompress(stored, "S", record) == PAYLOAD


def test_compress_stream_large_input_multithreaded():
    data = (b"0123456789abcdef" * 4096) * 300  # ~19 MiB, several chunks
    dst = io.BytesIO()
    record = zstd_codec.compress_stream(io.BytesIO(data), dst, "zstd:3")
    assert record["stored_size"] < len(data) / 100
    assert read_stream(dst.getvalue(), "L", record, chunk=1 << 20) == data


def test_compress_stream_empty_input():
    dst = io.BytesIO()
    record = zstd_codec.compress_stream(io.BytesIO(b""), dst, "zstd:3")
    assert record["size"] == 0
    assert zstd_codec.decompress(dst.getvalue(), "E", record) == b""


# -- properties ------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4000), level=st.integers(1, 19), cut=st.floats(0, 1, exclude_max=True))
def test_any_zstd_payload_roundtrips_and_any_truncation_is_detected(data, level, cut):
    stored, record = zstd_codec.compress_with_record(data, f"zstd:{level}")
    assert zstd_codec.decompress(stored, "H", record) == data
    assert read_stream(stored, "H", record) == data
    bad = stored[: max(2, int(len(stored) * cut))]
    with pytest.raises(CorruptPayloadError):
        zstd_codec.decompress(bad, "H")
    with pytest.raises(CorruptPayloadError):
        read_stream(bad, "H")


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=4000), position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_never_returns_wrong_data(data, position, bit):
    stored, record = zstd_codec.compress_with_record(data, "zstd:3")
    i = int(len(stored) * position)
    bad = stored[:i] + bytes([stored[i] ^ (1 << bit)]) + stored[i + 1 :]
    # With the record every flip is caught; without it the codec must either refuse or return the truth.
    with pytest.raises(CorruptPayloadError):
        zstd_codec.decompress(bad, "H", record)
    with pytest.raises(CorruptPayloadError):
        read_stream(bad, "H", record)
    try:
        assert read_stream(bad, "H") == data
    except CorruptPayloadError:
        pass
    try:
        assert zstd_codec.decompress(bad, "H") == data
    except CorruptPayloadError:
        pass


def test_short_truncation_and_empty_file_need_the_record():
    stored, record = zstd_codec.compress_with_record(PAYLOAD, "zstd:3")
    for cut in (2, 3):
        with pytest.raises(CorruptPayloadError, match="truncated"):
            zstd_codec.decompress(stored[:cut], "T")
    # An empty file is a valid empty plain payload on its own; the record says otherwise.
    assert zstd_codec.decompress(b"", "T") == b""
    with pytest.raises(CorruptPayloadError, match="record says"):
        zstd_codec.decompress(b"", "T", record)


# -- checksums --------------------------------------------------------------------------------
def test_checksum_is_blake3_of_the_bytes_for_every_buffer_type():
    import blake3

    data = PAYLOAD[:100_000]
    expected = "blake3:" + blake3.blake3(data).hexdigest()
    assert checksums.checksum(data) == expected
    assert checksums.checksum(bytearray(data)) == expected
    assert checksums.checksum(memoryview(data)) == expected
    assert checksums.checksum(memoryview(b"xx" + data)[2:]) == expected  # a slice, hashed in place
    assert checksums.checksum(b"") == "blake3:" + blake3.blake3(b"").hexdigest()
    with pytest.raises(TypeError, match="encode"):
        checksums.checksum("text")


def test_checksum_of_typed_and_strided_buffers():
    np = pytest.importorskip("numpy")
    a = np.arange(1000.0)
    assert checksums.checksum(memoryview(a)) == checksums.checksum(a.tobytes())  # float items, hashed as their bytes
    assert checksums.checksum_matches(checksums.checksum(a.tobytes()), a)
    with pytest.raises(TypeError, match="contiguous"):
        checksums.checksum(memoryview(b"abcdef")[::2])


def test_checksum_of_a_large_buffer_uses_threads_and_still_agrees():
    import blake3

    data = os.urandom(1 << 16) * ((checksums.THREADED_HASH_MIN >> 16) + 3)
    assert checksums.checksum(data) == "blake3:" + blake3.blake3(data).hexdigest()
    assert checksums.checksum_matches(checksums.checksum(data), data)


def test_checksum_does_not_copy_its_input():
    import tracemalloc

    data = bytearray(32 << 20)
    view = memoryview(data)[1:]
    tracemalloc.start()
    try:
        checksums.checksum(view)
        checksums.checksum_matches(checksums.checksum(view), view)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_checksum_matches_new_and_old_records():
    data = PAYLOAD[:5000]
    assert checksums.checksum_matches(checksums.checksum(data), data)
    assert checksums.checksum_matches("sha256:" + hashlib.sha256(data).hexdigest(), data)
    assert checksums.checksum_matches("sha256:" + hashlib.sha256(data).hexdigest().upper(), data)
    changed = data[:-1] + b"?"
    assert not checksums.checksum_matches(checksums.checksum(data), changed)
    assert not checksums.checksum_matches("sha256:" + hashlib.sha256(data).hexdigest(), changed)


@pytest.mark.parametrize(
    "expected",
    ["md5:" + "0" * 64, "blake3:" + "0" * 63, "blake3:" + "g" * 64, "blake3", "", None, 12, "sha256:" + "0" * 128],
)
def test_checksum_matches_refuses_what_it_cannot_check(expected):
    with pytest.raises(InvalidInputError) as err:
        checksums.checksum_matches(expected, b"data")
    assert repr(expected)[:40] in str(err.value) and "blake3" in str(err.value)


def test_without_blake3_checksums_are_sha256_and_blake3_records_ask_for_it(monkeypatch):
    from scout_persist.errors import MissingDependencyError

    data = b"some stored bytes"
    new = checksums.checksum(data)
    monkeypatch.setitem(__import__("sys").modules, "blake3", None)  # import blake3 -> ImportError
    assert checksums.checksum_algorithm() == "sha256"
    assert checksums.checksum(data) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert zstd_codec.compress_with_record(data, "none")[1]["checksum"].startswith("sha256:")
    assert checksums.checksum_matches("sha256:" + hashlib.sha256(data).hexdigest(), data)
    with pytest.raises(MissingDependencyError, match="pip install blake3") as err:
        checksums.checksum_matches(new, data)
    assert isinstance(err.value, ImportError)


def test_unknown_algorithm_of_a_stream_record_is_refused_before_reading():
    _, record = zstd_codec.compress_with_record(PAYLOAD, "zstd:3")
    record["checksum"] = "crc32:1234"
    with pytest.raises(InvalidInputError, match="crc32"):
        zstd_codec.open_decompressed(io.BytesIO(zstd_codec.compress(PAYLOAD)), "R", record)


# -- golden payloads written by the previous code (sha256 records) ----------------------------------
GOLDEN = __import__("pathlib").Path(__file__).parent / "data" / "pickle-envelopes"


def test_stream_payload_with_a_sha256_record_still_reads():
    import json

    stored = (GOLDEN / "stream-zstd3.bin").read_bytes()
    record = json.loads((GOLDEN / "stream-zstd3.record.json").read_text())
    assert record["checksum"].startswith("sha256:")
    expected = b"".join(b"line %d of a stream payload\n" % i for i in range(2000))
    assert zstd_codec.decompress(stored, "G", record) == expected
    assert read_stream(stored, "G", record) == expected
    with pytest.raises(CorruptPayloadError, match="sha256"):
        zstd_codec.decompress(stored[:-1] + bytes([stored[-1] ^ 1]), "G", dict(record))


# -- parts (pickle envelope version 3) --------------------------------------------------------------
def test_blosc2_starts_at_32_mib_by_default(monkeypatch):
    # below it, importing Blosc2 in the writer's and the reader's process costs more than it saves
    assert DEFAULT_BLOSC2_MIN == 32 << 20
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", DEFAULT_BLOSC2_MIN)
    assert envelope_parts.part_codec("auto", (32 << 20) - 8, 8) == "zstd:3"
    assert envelope_parts.part_codec("auto", 32 << 20, 8) == "blosc2:lz4:5:bitshuffle:8"


def test_part_codec_by_spec_size_and_item_size(monkeypatch):
    big = blosc_codec.BLOSC2_MIN
    assert envelope_parts.part_codec("auto", big, 8) == "blosc2:lz4:5:bitshuffle:8"
    assert envelope_parts.part_codec("auto", big, 2) == "blosc2:lz4:5:bitshuffle:2"
    assert envelope_parts.part_codec("auto", big - 1, 8) == "zstd:3"  # small: not worth importing blosc2
    assert envelope_parts.part_codec("auto", big, 1) == "zstd:3"  # opaque bytes: nothing to shuffle
    assert envelope_parts.part_codec("auto", big, 256) == "zstd:3"  # Blosc2's type size stops at 255
    assert envelope_parts.part_codec("auto", envelope_parts.AUTO_MIN - 1, 8) == "none"  # less than a block to gain
    assert envelope_parts.part_codec("auto", envelope_parts.AUTO_MIN, 1) == "zstd:3"
    assert envelope_parts.part_codec("zstd:3", 10, 1) == "zstd:3"  # an explicit codec applies to every part
    assert envelope_parts.part_codec("zstd:19", big, 8) == "zstd:19"
    assert envelope_parts.part_codec("none", big, 8) == "none"
    monkeypatch.delenv(codec_spec.ENV_VAR, raising=False)
    assert envelope_parts.part_codec(None, big, 4) == "blosc2:lz4:5:bitshuffle:4"  # auto is the default
    monkeypatch.setenv(codec_spec.ENV_VAR, "zstd:5")
    assert envelope_parts.part_codec(None, big, 4) == "zstd:5"


def test_auto_without_blosc2_falls_back_to_zstd_and_says_so(monkeypatch):
    np = pytest.importorskip("numpy")
    a = np.arange(blosc_codec.BLOSC2_MIN, dtype=np.int32)
    monkeypatch.setitem(__import__("sys").modules, "blosc2", None)
    assert envelope_parts.part_codec("auto", a.nbytes, 4) == "zstd:3"
    encoded = envelope_parts.encode_parts([a], [4], "auto")
    assert encoded.codec == "zstd:3"
    assert bytes(envelope_parts.decode_parts(encoded.header, b"".join(encoded.pieces), "P")[0]) == a.tobytes()


def _parts_values():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    return [
        b"a pickle stream " * 500,
        (np.arange(700_001, dtype=np.int64) // 64) % 5000,  # several chunks, last one short
        rng.standard_normal(90_001),  # noise
        np.zeros(5, np.dtype([("a", "u1"), ("b", "u2")])),  # item size 3
        np.arange(150_001, dtype=np.uint8).astype(np.dtype("V3")),  # item size 3, does not divide the chunk
        b"",
    ]


@pytest.mark.parametrize("spec", ["auto", "zstd:3", "zstd:1", "none"])
def test_parts_round_trip_in_chunks_into_writable_buffers(spec, monkeypatch):
    monkeypatch.setattr(envelope_parts, "ZSTD_FRAME", 1 << 18)  # several frames and chunks without big test data
    monkeypatch.setattr(blosc_codec, "BLOSC2_CHUNK", 1 << 20)
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", 1 << 12)
    values = _parts_values()
    itemsizes = [memoryview(v).itemsize for v in values]
    encoded = envelope_parts.encode_parts(values, itemsizes, spec)
    assert len(encoded.header) == len(values)
    assert encoded.size == sum(memoryview(v).nbytes for v in values)
    codecs_used = encoded.codec.split(",")
    if spec == "auto":
        assert codecs_used[1] == "blosc2:lz4:5:bitshuffle:8" and codecs_used[0] == "zstd:3"
        assert codecs_used[4] == "blosc2:lz4:5:bitshuffle:3" and encoded.header[4]["chunk"] % 3 == 0
    else:
        assert set(codecs_used) == {spec}
    big = encoded.header[1]
    assert len(big["stored"]) == -(-big["size"] // big["chunk"])
    assert (
        len(big["stored"])
        == (
            1
            if spec == "none"
            else -(-big["size"] // envelope_parts.ZSTD_FRAME)
            if "zstd:" in spec
            else -(-big["size"] // blosc_codec.BLOSC2_CHUNK)
        )
        > (spec != "none")
    )
    payload = b"".join(encoded.pieces)
    assert len(payload) == sum(sum(p["stored"]) for p in encoded.header)
    outs = envelope_parts.decode_parts(encoded.header, payload, "P")
    for value, out in zip(values, outs):
        assert bytes(out) == bytes(memoryview(value).cast("B"))
        assert not out.readonly
    assert len({id(out.obj) for out in outs}) == len(outs)  # a buffer of its own per part


def test_plain_parts_are_stored_straight_from_the_value():
    data = bytearray(b"array bytes" * 1000)
    encoded = envelope_parts.encode_parts([data], [1], "none")
    assert encoded.pieces[0].obj is data  # a view: no copy before the final write


def _codes(n: int):
    """The benchmark's kind of data: sorted-ish int64 codes plus noise in 0..15."""
    np = pytest.importorskip("numpy")
    return (np.arange(n, dtype=np.int64) // 64) % 50_000 + np.random.default_rng(0).integers(0, 16, n)


def test_blosc2_compresses_fixed_width_data_better_than_zstd():
    a = _codes(1 << 20)
    sizes = {
        spec: sum(len(p) for p in envelope_parts.encode_parts([a], [8], spec).pieces) for spec in ("auto", "zstd:3")
    }
    assert sizes["auto"] < 0.8 * sizes["zstd:3"]


def _encoded(spec="auto"):
    encoded = envelope_parts.encode_parts([b"stream " * 1000, _codes(1 << 16)], [1, 8], spec)
    assert encoded.codec == "zstd:3,blosc2:lz4:5:bitshuffle:8"
    return encoded.header, bytearray(b"".join(encoded.pieces))


def _header_damage():
    import copy

    def edit(fn):
        def make(header):
            header = copy.deepcopy(header)
            fn(header)
            return header

        return make

    return {
        "no parts": lambda h: [],
        "not a list": lambda h: {"parts": h},
        "part not a map": edit(lambda h: h.__setitem__(0, "zstd:3")),
        "negative size": edit(lambda h: h[0].__setitem__("size", -1)),
        "size not an int": edit(lambda h: h[0].__setitem__("size", "700")),
        "zero chunk": edit(lambda h: h[0].__setitem__("chunk", 0)),
        "chunk count": edit(lambda h: h[1].__setitem__("chunk", 1 << 10)),
        "stored sum (truncated)": edit(lambda h: h[1]["stored"].__setitem__(0, h[1]["stored"][0] + 1)),
        "unknown codec": edit(lambda h: h[0].__setitem__("codec", "brotli:5")),
        "zstd level": edit(lambda h: h[0].__setitem__("codec", "zstd:99")),
        "blosc2 filter": edit(lambda h: h[1].__setitem__("codec", "blosc2:zstd:1:delta:8")),
        "plain sizes": edit(lambda h: h[0].update(codec="none")),
    }


@pytest.mark.parametrize("case", list(_header_damage()))
def test_damaged_part_header_is_corrupt_naming_the_payload(case):
    header, payload = _encoded()
    with pytest.raises(CorruptPayloadError, match="var/jobs/W/t/P"):
        envelope_parts.decode_parts(_header_damage()[case](header), payload, "var/jobs/W/t/P")


def test_blosc2_chunk_that_disagrees_with_the_header_is_refused_before_decoding():
    # Blosc2 writes as many bytes as its chunk header says, whatever the destination holds: never trust it.
    header, payload = _encoded()
    assert header[1]["codec"].startswith("blosc2:")
    header[1]["size"] -= 8  # the chunk still says the full size
    with pytest.raises(CorruptPayloadError, match="blosc2 chunk says"):
        envelope_parts.decode_parts(header, payload, "P")


def test_damaged_blosc2_and_zstd_chunks_never_decode_silently_to_other_sizes():
    header, payload = _encoded()
    first = header[0]["stored"][0]
    blosc_start = first
    bad = bytearray(payload)
    bad[blosc_start : blosc_start + 16] = bytes(16)  # the blosc2 chunk header
    with pytest.raises(CorruptPayloadError, match="blosc2"):
        envelope_parts.decode_parts(header, bad, "P")
    bad = bytearray(payload)
    bad[first - 2] ^= 0x40  # inside the zstd frame's content checksum
    with pytest.raises(CorruptPayloadError, match="zstd"):
        envelope_parts.decode_parts(header, bad, "P")


def test_blosc2_part_without_blosc2_installed_names_the_extra(monkeypatch):
    from scout_persist.errors import MissingDependencyError

    header, payload = _encoded()
    monkeypatch.setitem(__import__("sys").modules, "blosc2", None)
    with pytest.raises(MissingDependencyError) as err:
        envelope_parts.decode_parts(header, payload, "var/jobs/W/t/arr")
    message = str(err.value)
    assert "var/jobs/W/t/arr" in message and "blosc2" in message and "pip install 'scout-persist[arrays]'" in message
    assert isinstance(err.value, ImportError)


def test_importing_the_codecs_loads_no_codec_library():
    import subprocess
    import sys

    code = (
        "import sys, scout_persist, scout_persist.checksums, scout_persist.zstd_codec, scout_persist.blosc_codec, "
        "scout_persist.envelope_parts, scout_persist.pickle_envelope, scout_persist.scout_types; "
        "print(sorted(m for m in ('numpy', 'blosc2', 'blake3', 'zstandard') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_auto_stores_a_part_plain_when_its_first_chunk_barely_shrinks():
    np = pytest.importorskip("numpy")
    noise = np.random.default_rng(2).standard_normal(blosc_codec.BLOSC2_CHUNK // 8 + 1000)  # float64: shrinks ~8%
    text = PAYLOAD * 3
    encoded = envelope_parts.encode_parts([text, noise, os.urandom(5000)], [1, 8, 1], "auto")
    assert encoded.codec == "zstd:3,none,none"
    assert encoded.header[1]["stored"] == [noise.nbytes] and encoded.pieces[-2].obj is not None  # a view
    outs = envelope_parts.decode_parts(encoded.header, b"".join(encoded.pieces), "P")
    assert bytes(outs[1]) == noise.tobytes() and bytes(outs[0]) == text
    # an explicit codec is never second-guessed
    assert envelope_parts.encode_parts([noise], [8], "zstd:1").codec == "zstd:1"


@pytest.mark.parametrize("inner, level", [("zstd", 1), ("lz4", 5), ("blosclz", 5)])
def test_blosc2_parts_decode_whatever_inner_codec_the_record_names(inner, level, monkeypatch):
    monkeypatch.setattr(blosc_codec, "BLOSC2_INNER", inner)
    monkeypatch.setattr(blosc_codec, "BLOSC2_LEVEL", level)
    a = _codes(1 << 16)
    encoded = envelope_parts.encode_parts([a], [8], "auto")
    assert encoded.codec == f"blosc2:{inner}:{level}:bitshuffle:8"
    assert bytes(envelope_parts.decode_parts(encoded.header, b"".join(encoded.pieces), "P")[0]) == a.tobytes()
