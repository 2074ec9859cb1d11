"""Array payloads as envelope parts (issue 24): NPY and safetensors compressed through the codecs of the pickle
path's buffers (Blosc2 above its break-even size, zstd frames below it), decoded straight into ``numpy.empty``
memory, the checksum taken of the stored chunks while they are encoded; version 1 entries (one zstd frame) still
load, damage is never decoded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scout_persist import blosc_codec, checksums, envelope_parts, payload
from scout_persist.equality import difference
from scout_persist.errors import CorruptPayloadError
from scout_persist.formats import npy
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store

KEY = "var/jobs/W/arrays/Default"
GOLDEN = Path(__file__).parent / "data" / "array-payloads"
SMALL_BREAK_EVEN = 1 << 16  # Blosc2's break-even size in these tests (32 MiB by default): small test arrays reach it
BLOSC2 = f"blosc2:{blosc_codec.BLOSC2_INNER}:{blosc_codec.BLOSC2_LEVEL}:bitshuffle"


@pytest.fixture
def small_break_even(monkeypatch):
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", SMALL_BREAK_EVEN)


def _codes(n: int, dtype=np.int64) -> np.ndarray:
    return ((np.arange(n, dtype=np.int64) // 64) % 500).astype(dtype)


def _hit(enc: payload.Encoded):
    return payload.decode(bytes(payload.joined(enc.data)), enc.record, key=KEY)


# ------------------------------------------------------------------------------------------------ the codec chosen
def test_npy_takes_blosc2_from_its_break_even_size_and_zstd_frames_below(small_break_even):
    below = _codes(SMALL_BREAK_EVEN // 8 - 1)
    at = _codes(SMALL_BREAK_EVEN // 8)
    enc_below = payload.encode(below, None, key=KEY, compression="auto")
    enc_at = payload.encode(at, None, key=KEY, compression="auto")
    assert enc_below.record["codec"] == "zstd:3" and enc_below.record["version"] == 2
    assert enc_at.record["codec"] == f"{BLOSC2}:8" and enc_at.record["version"] == 2
    assert enc_at.record["parts"][0]["size"] == at.nbytes and enc_at.record["stored_size"] < at.nbytes // 10
    for value, enc in ((below, enc_below), (at, enc_at)):
        assert enc.value is value and difference(value, _hit(enc)) is None


def test_npy_an_explicit_codec_applies_and_none_or_nothing_to_gain_is_the_plain_npy_file(small_break_even):
    big = _codes(SMALL_BREAK_EVEN)
    assert payload.encode(big, None, key=KEY, compression="zstd:1").record["codec"] == "zstd:1"
    random = np.random.default_rng(0).integers(0, 2**63, 50_000)
    for value, spec in ((big, "none"), (np.arange(10), "auto"), (random, "auto")):
        enc = payload.encode(value, None, key=KEY, compression=spec)  # "none", tiny, or random: nothing to gain
        assert (enc.record["version"], enc.record["codec"]) == (1, "none") and "parts" not in enc.record
        data = bytes(payload.joined(enc.data))
        assert np.array_equal(np.load(__import__("io").BytesIO(data)), value)  # a .npy file, as before
        assert difference(value, _hit(enc)) is None


def test_safetensors_codes_each_array_by_its_own_size_and_item_size(small_break_even):
    value = {"big": _codes(SMALL_BREAK_EVEN // 4, np.float32), "mid": _codes(5000, np.int16), "tiny": np.ones(3)}
    enc = payload.encode(value, None, key=KEY, compression="auto")
    assert enc.record["format"] == "safetensors" and enc.record["version"] == 2
    # the header (small, stored plain), then the arrays in the dict's order
    assert enc.record["codec"] == f"none,{BLOSC2}:4,zstd:3,none"
    assert [p["size"] for p in enc.record["parts"][1:]] == [v.nbytes for v in value.values()]
    hit = _hit(enc)
    assert list(hit) == list(value) and difference(enc.value, hit) is None


def test_safetensors_parts_decoded_back_to_back_are_a_safetensors_file(small_break_even):
    st = pytest.importorskip("safetensors.numpy")
    value = {"z": _codes(20_000, np.float64).reshape(100, 200), "a": np.arange(6, dtype=np.uint8), "e": np.zeros(0)}
    enc = payload.encode(value, None, key=KEY, compression="auto")
    plain = b"".join(bytes(p) for p in envelope_parts.decode_parts(enc.record["parts"], payload.joined(enc.data)))
    loaded = st.load(plain)
    assert sorted(loaded) == sorted(value) and all(np.array_equal(loaded[k], value[k]) for k in value)


def test_safetensors_names_its_header_cannot_hold_are_refused_and_pickled():
    value = {"lone \ud800": np.ones(3)}
    with pytest.raises(Exception, match=r"cannot be stored as safetensors.*cannot hold the names"):
        payload.encode(value, None, key=KEY, format="safetensors", compression="zstd:3")
    enc = payload.encode(value, None, key=KEY, compression="zstd:3")
    assert enc.record["format"] == "pickle" and difference(value, _hit(enc)) is None


def test_blosc2_is_imported_only_for_an_array_of_its_break_even_size():
    code = (
        "import sys, numpy as np\n"
        "from scout_persist import blosc_codec, payload\n"
        "blosc_codec.BLOSC2_MIN = 1 << 16\n"
        "a = (np.arange(8191) // 64) % 500\n"
        "for value in (a, {'w': a}):\n"
        "    enc = payload.encode(value, None, key='k', compression='auto')\n"
        "    payload.decode(bytes(payload.joined(enc.data)), enc.record, key='k')\n"
        "print('blosc2' in sys.modules)\n"
        "enc = payload.encode(np.tile(a, 2), None, key='k', compression='auto')\n"
        "print('blosc2' in sys.modules, enc.record['codec'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False"  # below the break-even size, written and read: zstd frames, no Blosc2 import
    assert out[1] == f"True {BLOSC2}:8"


# ------------------------------------------------------------------------------------------ decoding into place
@pytest.mark.parametrize("layout", ["C", "F", "0-d", "empty", "big-endian", "struct"])
def test_a_compressed_array_is_decoded_into_memory_it_owns(layout, small_break_even):
    base = _codes(SMALL_BREAK_EVEN // 8 * 2).reshape(-1, 64)
    value = {
        "C": base,
        "F": np.asfortranarray(base),
        "0-d": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "big-endian": base.astype(">i4"),
        "struct": np.zeros(40_000, dtype=[("a", "<i4"), ("b", "<f8")]),
    }[layout]
    enc = payload.encode(value, None, key=KEY, compression="zstd:3")
    hit = _hit(enc)
    assert hit.base is None and hit.flags.owndata and hit.flags.writeable  # np.empty's memory, nothing after it
    assert hit.flags.f_contiguous == value.flags.f_contiguous and difference(value, hit) is None


def test_decode_parts_writes_into_the_buffers_it_is_given():
    a = _codes(300_000)
    enc = envelope_parts.encode_parts([a, b"stream" * 1000], [8, 1], "zstd:3")
    dst = np.empty_like(a)
    outs = envelope_parts.decode_parts(enc.header, b"".join(enc.pieces), "P", into=[dst, None])
    assert np.array_equal(dst, a) and np.shares_memory(np.frombuffer(outs[0], dtype=np.int64), dst)
    assert bytes(outs[1]) == b"stream" * 1000
    with pytest.raises(CorruptPayloadError, match=r"a part holds 2400000 plain bytes where 2399992 were recorded"):
        envelope_parts.decode_parts(enc.header, b"".join(enc.pieces), "P", into=[dst[1:], None])
    with pytest.raises(CorruptPayloadError, match=r"2 parts are stored where 1 were expected"):
        envelope_parts.decode_parts(enc.header, b"".join(enc.pieces), "P", into=[dst])
    frozen = dst.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="pass writable ones"):
        envelope_parts.decode_parts(enc.header, b"".join(enc.pieces), "P", into=[frozen, None])


# ------------------------------------------------------------------------------------------------- checksums
class _Counting:
    """A checksum hasher that counts the bytes it is fed."""

    def __init__(self, inner):
        self.inner, self.fed = inner, 0

    def update(self, data):
        self.fed += memoryview(data).nbytes
        self.inner.update(data)

    def hexdigest(self):
        return self.inner.hexdigest()


@pytest.mark.parametrize("spec", ["auto", "zstd:3"])
def test_the_checksum_covers_only_the_stored_chunks_hashed_while_they_are_encoded(spec, monkeypatch, small_break_even):
    hashers: list[_Counting] = []

    def counting(algorithm=None, size_hint=0):
        hashers.append(_Counting(checksums.new_checksum(algorithm, size_hint)))
        return hashers[-1]

    monkeypatch.setattr(npy, "new_checksum", counting)
    value = _codes(SMALL_BREAK_EVEN // 8 * 4)
    enc = payload.encode(value, None, key=KEY, compression=spec)
    stored = bytes(payload.joined(enc.data))
    assert len(hashers) == 1 and hashers[0].fed == len(stored) == enc.record["stored_size"] < value.nbytes // 10
    assert enc.record["checksum"] == checksums.checksum(stored)


def test_encode_parts_feeds_the_digest_the_stored_bytes_in_order_around_pending_zstd_frames(monkeypatch):
    monkeypatch.setattr(envelope_parts, "ZSTD_FRAME", 1 << 16)
    monkeypatch.setattr(blosc_codec, "BLOSC2_MIN", 1 << 12)
    monkeypatch.setattr(blosc_codec, "BLOSC2_CHUNK", 1 << 16)
    values = [_codes(100_000), b"opaque stream " * 20_000, _codes(50_000, np.int32), b"x" * 100]
    digest = checksums.new_checksum()
    enc = envelope_parts.encode_parts(values, [8, 1, 4, 1], "auto", digest)
    assert enc.codec == f"{BLOSC2}:8,zstd:3,{BLOSC2}:4,none"
    assert f"{checksums.checksum_algorithm()}:{digest.hexdigest()}" == checksums.checksum(b"".join(enc.pieces))


def test_a_damaged_blosc2_payload_fails_its_checksum_and_is_never_decoded(tmp_path, small_break_even):
    value = _codes(SMALL_BREAK_EVEN // 8 * 3)
    writer = JobWriter(Store(str(tmp_path)), KEY)
    writer.setup()
    record = writer.save(value, compression="auto")
    job = writer.done()
    assert record["codec"] == f"{BLOSC2}:8"
    path = tmp_path / KEY
    stored = bytearray(path.read_bytes())
    stored[len(stored) // 2] ^= 0x10
    path.write_bytes(bytes(stored))
    with pytest.raises(CorruptPayloadError, match=r"does not match the checksum in its \.info"):
        Job(job.path).load()
    with pytest.raises(CorruptPayloadError, match=r"does not match the checksum"):
        payload.decode(bytes(stored), record, key=KEY)


def test_a_record_whose_parts_do_not_describe_the_array_is_corrupt(small_break_even):
    enc = payload.encode(_codes(SMALL_BREAK_EVEN // 8), None, key=KEY, compression="auto")
    data = bytes(payload.joined(enc.data))
    lying = {**enc.record, "parts": [{**enc.record["parts"][0], "size": enc.record["parts"][0]["size"] - 8}]}
    with pytest.raises(CorruptPayloadError):
        payload.decode(data, lying, key=KEY)
    with pytest.raises(CorruptPayloadError, match=r"records 8 bytes of array data where shape"):
        payload.decode(data, {**enc.record, "size": 8}, key=KEY)
    objects = npy._header(np, np.empty(3, dtype=object))
    forged = {**enc.record, "header": __import__("base64").b64encode(objects).decode()}
    with pytest.raises(CorruptPayloadError, match="an NPY header of Python objects"):
        payload.decode(data, forged, key=KEY)


# ------------------------------------------------------------------------------------------ version 1 entries
def _golden_values() -> dict:
    sys.path.insert(0, str(GOLDEN))
    try:
        return __import__("make_golden").golden_values()
    finally:
        sys.path.remove(str(GOLDEN))


@pytest.mark.parametrize("name", sorted(p.name[: -len(".bin")] for p in GOLDEN.glob("*.bin")))
def test_version_1_entries_written_as_one_zstd_frame_still_load(name):
    record = json.loads((GOLDEN / f"{name}.record.json").read_text())
    data = (GOLDEN / f"{name}.bin").read_bytes()
    assert record["version"] == 1 and record["codec"] == "zstd"
    expected = _golden_values()[name]
    loaded = payload.decode(data, record, key=KEY)
    if isinstance(expected, dict):
        assert list(loaded) == list(expected)
        assert all(difference(expected[k], loaded[k]) is None for k in expected)
    else:
        assert difference(expected, loaded) is None and loaded.flags.writeable and loaded.flags.owndata
    damaged = bytearray(data)
    damaged[-3] ^= 0x01
    with pytest.raises(CorruptPayloadError):
        payload.decode(bytes(damaged), record, key=KEY)
