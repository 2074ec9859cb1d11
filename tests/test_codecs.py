"""codecs: zstd/gzip/plain detection, records, streaming, and damage that must never pass as data."""

from __future__ import annotations

import gzip
import hashlib
import io
import os

import pytest
import zstandard

from scout_persist import codecs
from scout_persist.errors import CorruptPayloadError, InvalidInputError

PAYLOAD = b"".join(b"line %d of a compressible payload\n" % i for i in range(50_000))


def read_stream(data: bytes, where: str = "P", record: dict | None = None, chunk: int = 65536) -> bytes:
    reader = codecs.open_decompressed(io.BytesIO(data), where, record)
    parts = []
    while True:
        part = reader.read(chunk)
        if not part:
            return b"".join(parts)
        parts.append(part)


# -- specs ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, expected",
    [("zstd:3", ("zstd", 3)), ("zstd:19", ("zstd", 19)), ("zstd", ("zstd", 3)), ("none", ("none", None)),
     (" ZSTD:1 ", ("zstd", 1))],
)
def test_parse_spec(spec, expected):
    assert codecs.parse_spec(spec) == expected


def test_parse_spec_default_and_environment(monkeypatch):
    monkeypatch.delenv(codecs.ENV_VAR, raising=False)
    assert codecs.parse_spec(None) == ("zstd", 3)
    monkeypatch.setenv(codecs.ENV_VAR, "zstd:19")
    assert codecs.parse_spec(None) == ("zstd", 19)
    monkeypatch.setenv(codecs.ENV_VAR, "none")
    assert codecs.compress(b"abc") == b"abc"


@pytest.mark.parametrize("spec", ["lz4", "zstd:0", "zstd:23", "zstd:fast", "gzip:9"])
def test_bad_spec_names_value_rule_and_fix(spec):
    with pytest.raises(InvalidInputError) as err:
        codecs.parse_spec(spec)
    assert repr(spec) in str(err.value) and "zstd" in str(err.value)


def test_bad_environment_spec_names_the_variable(monkeypatch):
    monkeypatch.setenv(codecs.ENV_VAR, "brotli")
    with pytest.raises(InvalidInputError, match=codecs.ENV_VAR):
        codecs.compress(b"x")


# -- whole payloads -------------------------------------------------------------------------
def test_zstd_roundtrip_with_content_checksum_and_record():
    stored, record = codecs.compress_with_record(PAYLOAD, "zstd:3")
    assert stored[:4] == codecs.ZSTD_MAGIC
    params = zstandard.get_frame_parameters(stored)
    assert params.has_checksum
    assert record == {
        "codec": "zstd",
        "level": 3,
        "size": len(PAYLOAD),
        "stored_size": len(stored),
        "checksum": "sha256:" + hashlib.sha256(stored).hexdigest(),
    }
    assert len(stored) < len(PAYLOAD) / 5
    assert codecs.decompress(stored, "P", record) == PAYLOAD


def test_higher_level_compresses_smaller():
    assert len(codecs.compress(PAYLOAD, "zstd:19")) < len(codecs.compress(PAYLOAD, "zstd:1"))


def test_large_payload_is_compressed_multithreaded_and_reads_back():
    data = os.urandom(64) * (codecs.MULTITHREAD_MIN // 64 + 1000)
    stored = codecs.compress(data, "zstd:3")
    assert codecs.decompress(stored) == data


@pytest.mark.parametrize(
    "stored",
    [PAYLOAD, gzip.compress(PAYLOAD), codecs.compress(PAYLOAD), b"", codecs.compress(PAYLOAD, "none")],
    ids=["plain", "gzip", "zstd", "empty", "none"],
)
def test_any_codec_reads_back_by_magic_bytes(stored):
    expected = PAYLOAD if stored else b""
    assert codecs.decompress(stored) == expected
    assert read_stream(stored) == expected


def test_concatenated_zstd_frames_read_whole():
    stored = codecs.compress(b"first ") + codecs.compress(b"second")
    assert codecs.decompress(stored) == b"first second"
    assert read_stream(stored) == b"first second"


# -- damage -----------------------------------------------------------------------------------
STORED = codecs.compress(PAYLOAD)


def damaged():
    flip = lambda data, i: data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:]  # noqa: E731
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
        codecs.decompress(bad, where)
    with pytest.raises(CorruptPayloadError, match="var/jobs/W/t/Default"):
        read_stream(bad, where)


def test_damaged_gzip_raises():
    stored = gzip.compress(PAYLOAD)
    for bad in (stored[:-3], stored[: len(stored) // 2], stored[:-6] + bytes([stored[-6] ^ 1]) + stored[-5:]):
        with pytest.raises(CorruptPayloadError, match="G"):
            codecs.decompress(bad, "G")
        with pytest.raises(CorruptPayloadError, match="G"):
            read_stream(bad, "G")


def test_record_catches_damage_the_codec_cannot_see():
    # A plain payload has no inner checksum: only the record tells a changed byte.
    stored, record = codecs.compress_with_record(b"plain text result\n", "none")
    changed = b"plain text resulT\n"
    with pytest.raises(CorruptPayloadError, match="sha256"):
        codecs.decompress(changed, "R", record)
    with pytest.raises(CorruptPayloadError, match="sha256"):
        read_stream(changed, "R", record)
    with pytest.raises(CorruptPayloadError, match="record says"):
        codecs.decompress(stored[:-1], "R", record)


def test_record_codec_mismatch_is_corrupt():
    _, record = codecs.compress_with_record(PAYLOAD, "none")
    record["codec"] = "zstd"  # sizes and checksum match, only the codec disagrees
    with pytest.raises(CorruptPayloadError, match="codec"):
        codecs.decompress(PAYLOAD, "R", record)
    with pytest.raises(CorruptPayloadError, match="codec"):
        read_stream(PAYLOAD, "R", record)


def test_unknown_checksum_algorithm_is_refused():
    stored, record = codecs.compress_with_record(b"x", "none")
    record["checksum"] = "md4:00"
    with pytest.raises(InvalidInputError, match="md4"):
        codecs.decompress(stored, "R", record)


def test_stream_reader_names_the_file_by_default(tmp_path):
    path = tmp_path / "result"
    path.write_bytes(STORED[:-1])
    with open(path, "rb") as fh, pytest.raises(CorruptPayloadError, match=str(path)):
        codecs.open_decompressed(fh).read()


# -- streaming -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["zstd:3", "zstd:19", "none"])
def test_compress_stream_record_matches_bytes_written(spec):
    dst = io.BytesIO()
    record = codecs.compress_stream(io.BytesIO(PAYLOAD), dst, spec)
    stored = dst.getvalue()
    assert record["size"] == len(PAYLOAD)
    assert record["stored_size"] == len(stored)
    assert record["checksum"] == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert record["codec"] == codecs.parse_spec(spec)[0]
    assert read_stream(stored, "S", record) == PAYLOAD
    assert codecs.decompress(stored, "S", record) == PAYLOAD


def test_compress_stream_large_input_multithreaded():
    data = (b"0123456789abcdef" * 4096) * 300  # ~19 MiB, several chunks
    dst = io.BytesIO()
    record = codecs.compress_stream(io.BytesIO(data), dst, "zstd:3")
    assert record["stored_size"] < len(data) / 100
    assert read_stream(dst.getvalue(), "L", record, chunk=1 << 20) == data


def test_compress_stream_empty_input():
    dst = io.BytesIO()
    record = codecs.compress_stream(io.BytesIO(b""), dst, "zstd:3")
    assert record["size"] == 0
    assert codecs.decompress(dst.getvalue(), "E", record) == b""


# -- properties ------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4000), level=st.integers(1, 19), cut=st.floats(0, 1, exclude_max=True))
def test_any_zstd_payload_roundtrips_and_any_truncation_is_detected(data, level, cut):
    stored, record = codecs.compress_with_record(data, f"zstd:{level}")
    assert codecs.decompress(stored, "H", record) == data
    assert read_stream(stored, "H", record) == data
    bad = stored[: max(2, int(len(stored) * cut))]
    with pytest.raises(CorruptPayloadError):
        codecs.decompress(bad, "H")
    with pytest.raises(CorruptPayloadError):
        read_stream(bad, "H")


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=4000), position=st.floats(0, 1, exclude_max=True),
       bit=st.integers(0, 7))
def test_any_flipped_bit_never_returns_wrong_data(data, position, bit):
    stored, record = codecs.compress_with_record(data, "zstd:3")
    i = int(len(stored) * position)
    bad = stored[:i] + bytes([stored[i] ^ (1 << bit)]) + stored[i + 1:]
    # With the record every flip is caught; without it the codec must either refuse or return the truth.
    with pytest.raises(CorruptPayloadError):
        codecs.decompress(bad, "H", record)
    with pytest.raises(CorruptPayloadError):
        read_stream(bad, "H", record)
    try:
        assert read_stream(bad, "H") == data
    except CorruptPayloadError:
        pass
    try:
        assert codecs.decompress(bad, "H") == data
    except CorruptPayloadError:
        pass


def test_short_truncation_and_empty_file_need_the_record():
    stored, record = codecs.compress_with_record(PAYLOAD, "zstd:3")
    for cut in (2, 3):
        with pytest.raises(CorruptPayloadError, match="truncated"):
            codecs.decompress(stored[:cut], "T")
    # An empty file is a valid empty plain payload on its own; the record says otherwise.
    assert codecs.decompress(b"", "T") == b""
    with pytest.raises(CorruptPayloadError, match="record says"):
        codecs.decompress(b"", "T", record)
