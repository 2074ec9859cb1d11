"""Typed payload formats (scout_persist.formats via payload, JobWriter and Job): round trips on local disks and S3,
the record in .info, zero-copy loads, refusals, damage, version mismatch, missing libraries, the pickle switch."""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from scout_persist import payload
from scout_persist.equality import difference
from scout_persist.errors import (
    CorruptPayloadError,
    FormatVersionError,
    InvalidInputError,
    MissingDependencyError,
    PickleNotAllowed,
    UnsupportedValueError,
)
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store

KEY = "var/jobs/W/t/Default"


def _values():
    return {
        "npy": np.arange(24, dtype=np.float64).reshape(4, 6),
        "npy-fortran": np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4)),
        "npy-strided": np.arange(30, dtype=np.int16)[::3],
        "npy-0d": np.array(2.5),
        "npy-empty": np.zeros((0, 3), dtype=np.uint8),
        "npy-struct": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "npy-datetime": np.array(["2026-01-01", "2026-06-30"], dtype="M8[D]"),
        "parquet": pd.DataFrame(
            {
                "n": [1, 2, 3],
                "f": [0.5, np.nan, 1e-7],
                "s": ["a", None, "c"],
                "b": [True, False, True],
                "cat": pd.Categorical(["x", "y", "x"]),
                "i": pd.array([1, None, 3], dtype="Int64"),
                "t": pd.to_datetime(["2026-01-01", "2026-01-02", None]).tz_localize("UTC"),
            },
            index=pd.Index(["r1", "r2", "r3"], name="ID"),
        ),
        "parquet-range": pd.DataFrame({"x": np.arange(5)}).assign(y=lambda d: d.x * 2.0),
        "parquet-series": pd.Series([1.5, 2.5, 3.5], index=[10, 20, 30], name="value"),
        "parquet-attrs": pd.DataFrame({"x": [1]}).pipe(lambda d: d.attrs.update(unit="mm") or d),
        "arrow": pa.table(
            {"a": [1, 2, None], "b": ["x", "y", "z"], "l": [[1], [], [2, 3]]}, metadata={"source": "test"}
        ),
        "safetensors": {
            "weight": np.ones((3, 2), dtype=np.float16),
            "bias": np.arange(2, dtype=np.int64),
            "mask": np.array([True, False]),
        },
        "json": {"pair": [1, 2], "nested": {"f": 1e-7, "none": None}, "s": "ñ"},
    }


def _equal(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=True, check_column_type=True)
        return a.attrs == b.attrs
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True, check_index_type=True)
        return True
    if isinstance(a, pa.Table):
        return a.equals(b, check_metadata=True)
    if isinstance(a, dict) and a and all(isinstance(v, np.ndarray) for v in a.values()):
        return list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _format_of(case: str) -> str:
    return case.split("-")[0]


CASES = sorted(_values())


def _save_and_load(store: Store, case: str, compression: str):
    value = _values()[case]
    writer = JobWriter(store, KEY)
    writer.setup()
    writer.start()
    fmt = "json" if case == "json" else None
    record = writer.save(value, compression=compression, format=fmt)
    first = writer.value
    job = writer.done()
    info = job.read_info()
    return value, first, job, info, record


@pytest.mark.parametrize("compression", ["none", "zstd:3"])
@pytest.mark.parametrize("case", CASES)
def test_round_trip_local(case, compression, tmp_path):
    value, first, job, info, record = _save_and_load(Store(str(tmp_path)), case, compression)
    # arrays compressed are chunks of envelope parts (version 2); everything else, and plain arrays, version 1
    chunked = compression != "none" and _format_of(case) in ("npy", "safetensors")
    assert info["payload"]["format"] == _format_of(case) and info["payload"]["version"] == (2 if chunked else 1)
    assert info["payload"] == record and info["type"] == ("json" if case == "json" else "binary")
    loaded = job.load()
    assert _equal(value, loaded), case
    assert _equal(first, loaded), case  # the first run hands on what a cached run gets


@pytest.mark.s3
@pytest.mark.parametrize("compression", ["none", "zstd:3"])
@pytest.mark.parametrize("case", ["npy", "npy-fortran", "parquet", "parquet-series", "arrow", "safetensors", "json"])
def test_round_trip_s3(case, compression, s3_url):
    value, first, job, info, _ = _save_and_load(Store(s3_url), case, compression)
    assert info["payload"]["format"] == _format_of(case)
    again = Job(job.path)  # a fresh reader, by URL
    loaded = again.load()
    assert _equal(value, loaded) and _equal(first, loaded)
    if isinstance(loaded, np.ndarray):
        assert loaded.flags.writeable  # as writable as the value the first run handed on


def test_uncompressed_npy_is_a_npy_file_loaded_as_a_private_map(tmp_path):
    store = Store(str(tmp_path))
    value = np.arange(1 << 16, dtype=np.float64).reshape(256, 256)
    writer = JobWriter(store, KEY)
    writer.setup()
    writer.save(value, compression="none")
    job = writer.done()
    path = tmp_path / KEY
    assert np.array_equal(np.load(path), value)  # any numpy reads the result file
    loaded = job.load()
    base = loaded
    while getattr(base, "base", None) is not None and not isinstance(base, (mmap.mmap, memoryview)):
        base = base.base
    assert isinstance(base, (mmap.mmap, memoryview)) and isinstance(getattr(base, "obj", base), mmap.mmap)
    assert loaded.flags.writeable
    loaded[0, 0] = -1.0  # copy on write: the stored file never changes
    assert np.load(path)[0, 0] == 0.0 and Job(str(path)).load()[0, 0] == 0.0


def test_compressed_npy_decodes_into_one_buffer_of_its_own(tmp_path):
    store = Store(str(tmp_path))
    value = np.zeros(1 << 20, dtype=np.int32)
    writer = JobWriter(store, KEY)
    writer.setup()
    record = writer.save(value, compression="zstd:3")
    job = writer.done()
    assert record["codec"] == "zstd:3" and record["stored_size"] < value.nbytes // 100
    loaded = job.load()
    assert loaded.flags.writeable and np.array_equal(loaded, value)
    base = loaded
    while getattr(base, "base", None) is not None:
        base = base.base
    assert memoryview(base).nbytes == value.nbytes  # exactly the array's bytes: no second copy around


def test_every_value_kind_picks_its_format_and_others_stay_pickles():
    values = _values()
    chosen = {case: payload.encode(values[case], None, key=KEY).record["format"] for case in CASES if case != "json"}
    assert chosen == {case: _format_of(case) for case in CASES if case != "json"}
    assert payload.encode({"a": 1}, None, key=KEY).record["format"] == "pickle"  # JSON only when asked
    assert payload.encode(np.array([object()], dtype=object), None, key=KEY).record["format"] == "pickle"
    assert payload.encode(np.ma.masked_array([1, 2]), None, key=KEY).record["format"] == "pickle"  # a subclass
    assert payload.encode({"x": np.arange(3, dtype=">f4")}, None, key=KEY).record["format"] == "pickle"
    assert payload.encode({"x": np.arange(3), "y": "text"}, None, key=KEY).record["format"] == "pickle"


def test_safetensors_keeps_the_key_order(tmp_path):
    value = {name: np.full(2, i, dtype=np.float32) for i, name in enumerate(["zeta", "alpha", "mid", "b"])}
    enc = payload.encode(value, None, key=KEY)
    assert enc.record["names"] == ["zeta", "alpha", "mid", "b"]
    data = enc.data if isinstance(enc.data, bytes) else bytes(enc.data)
    assert list(payload.decode(data, enc.record, key=KEY)) == ["zeta", "alpha", "mid", "b"]


def test_a_frame_parquet_would_change_is_refused_when_asked_and_pickled_when_chosen():
    lossy = pd.Series([1.5, 2.5], index=pd.date_range("2026-01-01", periods=2), name="v")  # freq is not kept
    with pytest.raises(
        UnsupportedValueError,
        match=r"Series cannot be stored as parquet without change.*freq.*"
        r"format='pickle'",
    ):
        payload.encode(lossy, None, key=KEY, format="parquet")
    enc = payload.encode(lossy, None, key=KEY)
    assert enc.record["format"] == "pickle"
    assert difference(lossy, enc.value) is None and difference(enc.value, _hit(enc)) is None
    mixed = pd.DataFrame({"m": [1, "a"]})
    with pytest.raises(UnsupportedValueError, match=r"cannot be stored as parquet.*one type.*format='pickle'"):
        payload.encode(mixed, None, key=KEY, format="parquet")


@pytest.mark.parametrize(
    "fmt, value, message",
    [
        ("npy", [1, 2], r"a list cannot be stored as npy: npy holds numpy.ndarray.*format='pickle'"),
        ("npy", np.array([None]), r"ndarray cannot be stored as npy.*dtype=object"),
        ("parquet", {"a": 1}, r"a dict cannot be stored as parquet.*DataFrame"),
        ("arrow", pd.DataFrame({"a": [1]}), r"a DataFrame cannot be stored as arrow.*pyarrow.Table"),
        ("safetensors", {"a": "text"}, r"a dict cannot be stored as safetensors.*str -> numpy arrays"),
        ("json", {1, 2}, r"a set cannot be stored as json"),
        ("json", {"t": b"bytes"}, r"cannot be stored as json"),
        ("json", {1: "int key"}, r"a dict \{1: 'int key'\} cannot be stored as json without change: a cache hit "),
        ("json", [float("nan")], r"a list cannot be stored as json: float nan cannot be written as Scout JSON"),
        ("json", {"s": "lone \ud800"}, r"a dict cannot be stored as json: 'utf-8' codec can't encode"),
    ],
)
def test_a_value_the_asked_format_cannot_hold_is_refused_with_the_fix(fmt, value, message):
    with pytest.raises(UnsupportedValueError, match=message):
        payload.encode(value, None, key=KEY, format=fmt)


def test_format_with_a_scout_type_or_unknown_name_is_refused():
    with pytest.raises(InvalidInputError, match=r"format='npy' applies to results of any Python type.*'json'"):
        payload.encode(np.arange(3), "json", key=KEY, format="npy")
    with pytest.raises(
        InvalidInputError,
        match=r"format 'hdf5' is unknown; known formats: pickle, npy, parquet, "
        r"arrow, safetensors, json",
    ):
        payload.encode(np.arange(3), None, key=KEY, format="hdf5")


@pytest.mark.parametrize("case", ["npy", "parquet", "arrow", "safetensors", "json"])
@pytest.mark.parametrize("compression", ["none", "zstd:3"])
def test_a_damaged_payload_is_never_decoded(case, compression, tmp_path):
    store = Store(str(tmp_path))
    _save_and_load(store, case, compression)
    path = tmp_path / KEY
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptPayloadError, match=r"does not match the checksum in its \.info.*damaged"):
        Job(str(path)).load()
    path.write_bytes(bytes(data[:-1]))
    with pytest.raises(CorruptPayloadError, match=r"holds \d+ bytes but its \.info says \d+"):
        Job(str(path)).load()


def test_a_damaged_npy_header_is_caught_before_decoding(tmp_path):
    store = Store(str(tmp_path))
    _save_and_load(store, "npy", "none")
    path = tmp_path / KEY
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01  # inside the header's dict text: not covered by the body checksum, compared with the record
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptPayloadError, match=r"does not start with the NPY header its \.info records"):
        Job(str(path)).load()


def test_a_record_of_a_newer_format_version_asks_for_an_upgrade(tmp_path):
    store = Store(str(tmp_path))
    _save_and_load(store, "npy", "zstd:3")
    info_path = tmp_path / (KEY + ".info")
    info = json.loads(info_path.read_text())
    info["payload"]["version"] = 3
    info_path.write_text(json.dumps(info))
    with pytest.raises(
        FormatVersionError,
        match=r"written as npy version 3; this scout-persist reads npy up to "
        r"version 2: upgrade scout-persist",
    ):
        Job(str(tmp_path / KEY)).load()


def test_an_unknown_format_in_a_record_asks_for_an_upgrade():
    with pytest.raises(CorruptPayloadError, match=r"payload format 'zarr' is unknown.*upgrade scout-persist"):
        payload.decode(b"x", {"format": "zarr", "stored_size": 1, "checksum": "sha256:00"}, key=KEY)


def test_a_missing_library_names_the_install(monkeypatch):
    enc = payload.encode(_values()["parquet"], None, key=KEY)
    data = bytes(enc.data)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails as if it were not installed
    with pytest.raises(
        MissingDependencyError,
        match=r"needs the pyarrow package, which is not installed; install it:"
        r" pip install 'scout-persist\[frames\]'",
    ):
        payload.decode(data, enc.record, key=KEY)
    with pytest.raises(MissingDependencyError, match=r"scout-persist\[frames\]"):
        payload.encode(_values()["parquet"], None, key=KEY, format="parquet")
    # chosen by the value's type, a format whose library is missing leaves the value a pickle
    assert payload.encode(pd.DataFrame(np.arange(4).reshape(2, 2)), None, key=KEY).record["format"] == "pickle"


def test_safetensors_missing_names_its_extra(monkeypatch):
    enc = payload.encode(_values()["safetensors"], None, key=KEY, compression="none")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(MissingDependencyError, match=r"scout-persist\[tensors\]"):
        payload.decode(bytes(enc.data), enc.record, key=KEY)


def test_importing_scout_persist_loads_no_optional_library():
    code = (
        "import sys, scout_persist, scout_persist.job, scout_persist.payload, scout_persist.formats, "
        "scout_persist.outputs, scout_persist.file_outputs, scout_persist.tsv; "
        "import scout_persist.formats.npy, scout_persist.formats.parquet, scout_persist.formats.arrow, "
        "scout_persist.formats.safetensors, scout_persist.formats.json_format; "
        "print(sorted({'numpy', 'pandas', 'pyarrow', 'safetensors', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pickles_refused_at_save_and_at_load_when_not_allowed(tmp_path, monkeypatch):
    store = Store(str(tmp_path))
    writer = JobWriter(store, KEY)
    writer.setup()
    writer.save({"set": {1, 2}})
    job = writer.done()
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", "0")
    with pytest.raises(PickleNotAllowed, match=r"SCOUT_PERSIST_ALLOW_PICKLE=0 forbids pickles; refusing to load one"):
        job.load()
    again = JobWriter(store, "var/jobs/W/t/other")
    again.setup()
    with pytest.raises(PickleNotAllowed, match=r"refusing to store one: return a value with a typed format"):
        again.save({"set": {1, 2}})
    with pytest.raises(PickleNotAllowed, match="refusing to store one"):
        again.save(np.arange(3), format="pickle")
    assert again.save(np.arange(3))["format"] == "npy"  # typed formats never unpickle: still fine
    from scout_persist.persist_cache import persist

    with pytest.raises(PickleNotAllowed, match="refusing to store one"):
        persist("p", "pickle", lambda: {1}, store=str(tmp_path))
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", "1")
    persist("p", "pickle", lambda: {1}, store=str(tmp_path))
    monkeypatch.setenv("SCOUT_PERSIST_ALLOW_PICKLE", "0")
    with pytest.raises(PickleNotAllowed, match="refusing to load one"):
        persist("p", "pickle", lambda: {1}, store=str(tmp_path))


def test_a_series_with_an_unusable_name_is_refused():
    with pytest.raises(
        UnsupportedValueError,
        match=r"a Series named \('a', 1\) cannot be stored as parquet: its name "
        r"must be a str, number or None",
    ):
        payload.encode(pd.Series([1], name=("a", 1)), None, key=KEY, format="parquet")


def _rerecorded(record: dict, **changes) -> dict:
    return {**record, **changes}


def test_records_that_do_not_describe_their_bytes_are_corrupt():
    from scout_persist.checksums import checksum

    enc = payload.encode({"w": np.ones(2, dtype=np.float32)}, None, key=KEY, compression="none")
    data = bytes(enc.data)
    with pytest.raises(CorruptPayloadError, match=r"the tensors stored are not the ones its \.info names"):
        payload.decode(data, _rerecorded(enc.record, names=["w", "extra"]), key=KEY)
    with pytest.raises(CorruptPayloadError, match="safetensors framework 'jax' is unknown"):
        payload.decode(data, _rerecorded(enc.record, framework="jax"), key=KEY)
    arr = payload.encode(np.arange(4), None, key=KEY, compression="zstd:3")
    with pytest.raises(CorruptPayloadError, match=r"its \.info has no readable NPY header"):
        payload.decode(arr.data, _rerecorded(arr.record, header="not base64!"), key=KEY)
    with pytest.raises(CorruptPayloadError, match="payload record version 'two' is not a number"):
        payload.decode(arr.data, _rerecorded(arr.record, version="two"), key=KEY)
    with pytest.raises(CorruptPayloadError, match="records no checksum"):
        payload.decode(arr.data, _rerecorded(arr.record, checksum=None), key=KEY)
    # a header that says more elements than the bytes hold
    other = payload.encode(np.arange(8), None, key=KEY, compression="zstd:3")
    with pytest.raises(CorruptPayloadError, match=r"bytes of array data where shape \(8,\) of int64 needs"):
        payload.decode(
            arr.data,
            _rerecorded(arr.record, header=other.record["header"], size=32, checksum=checksum(arr.data)),
            key=KEY,
        )


@pytest.mark.s3
def test_a_large_uncompressed_array_on_s3_is_streamed_into_its_own_buffer(s3_url):
    store = Store(s3_url)
    value = np.arange(2 << 20, dtype=np.float64)  # 16 MiB: past one-GET size, streamed
    writer = JobWriter(store, KEY)
    writer.setup()
    writer.save(value, compression="none")
    job = writer.done()
    loaded = Job(job.path).load()
    assert np.array_equal(loaded, value) and loaded.flags.writeable
    base = loaded
    while getattr(base, "base", None) is not None:
        base = base.base
    assert isinstance(getattr(base, "obj", base), bytearray)


class Unit(pa.ExtensionType):
    """An Arrow extension type never registered: a load gives back its storage type."""

    def __init__(self):
        super().__init__(pa.float64(), "test.unit")

    def __arrow_ext_serialize__(self):
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


def _hit(enc):
    """What a cache hit decodes from the bytes ``enc`` stored."""
    return payload.decode(bytes(payload.joined(enc.data)), enc.record, key=KEY)


@pytest.mark.parametrize("layout", ["transpose", "fortran", "strided", "zero-size", "0-d"])
@pytest.mark.parametrize("compression", ["none", "zstd:3"])
def test_a_dict_of_arrays_in_any_layout_round_trips_exactly_as_safetensors(layout, compression):
    """Trust issue #21: a transposed, Fortran-ordered or strided array in a dict of arrays was stored scrambled; the
    first run handed on the right array, every cache hit a wrong one (and its checksum verified)."""
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    arrays = {
        "transpose": base.T,
        "fortran": np.asfortranarray(base),
        "strided": base[::2, ::3],
        "zero-size": np.zeros((0, 3), dtype=np.int16),
        "0-d": np.array(2.5),
    }
    value = {"w": arrays[layout], "b": np.ones(3, dtype=np.float64)}
    enc = payload.encode(value, None, key=KEY, compression=compression)
    assert enc.record["format"] == "safetensors"
    hit = _hit(enc)
    assert np.array_equal(hit["w"], value["w"]) and hit["w"].shape == value["w"].shape
    assert difference(enc.value, hit) is None  # the first run hands on what every hit gets
    assert list(enc.value) == list(hit) == ["w", "b"]


def test_parquet_never_changes_a_decimal_scale():
    """Trust issue #21: Parquet stored Decimal('1.0') beside Decimal('1.23') in one decimal(3, 2) column, and hits
    gave Decimal('1.00')."""
    frame = pd.DataFrame({"d": [Decimal("1.0"), Decimal("1.23")]})
    with pytest.raises(UnsupportedValueError, match=r"cannot be stored as parquet without change.*Decimal\('1.0'\)"):
        payload.encode(frame, None, key=KEY, format="parquet")
    enc = payload.encode(frame, None, key=KEY)  # chosen by type: the next format that holds it exactly
    assert enc.record["format"] == "pickle"
    assert difference(frame, _hit(enc)) is None and difference(enc.value, _hit(enc)) is None
    same_scale = pd.DataFrame({"d": [Decimal("1.00"), Decimal("1.23")]})
    enc = payload.encode(same_scale, None, key=KEY)
    assert enc.record["format"] == "parquet" and difference(same_scale, _hit(enc)) is None


def test_npy_hands_on_the_contiguous_writable_array_a_load_gives_back():
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    enc = payload.encode(base, None, key=KEY)
    assert enc.value is base  # already what a load gives back: no copy
    fortran = np.asfortranarray(base)
    assert (
        payload.encode(fortran, None, key=KEY).value is fortran
        and _hit(payload.encode(fortran, None, key=KEY)).flags.f_contiguous
    )
    for view in (base[::2, ::3], base.T[::2], np.broadcast_to(np.arange(3), (2, 3))):
        enc = payload.encode(view, None, key=KEY)
        assert enc.value.flags.c_contiguous and enc.value.flags.writeable and np.array_equal(enc.value, view)
        assert difference(enc.value, _hit(enc)) is None
    frozen = np.frombuffer(base.tobytes(), dtype=np.float64)  # read-only
    enc = payload.encode(frozen, None, key=KEY)
    assert enc.value.flags.writeable and difference(enc.value, _hit(enc)) is None


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros(2, dtype=np.dtype(float, metadata={"unit": "mm"})), r"npy does not keep dtype metadata"),
        (np.zeros(2, dtype=[("\u0100", "i4")]), r"npy headers are ASCII, and the field names \['\u0100'\]"),
        (np.ma.masked_array([1, 2], mask=[0, 1]), r"MaskedArray cannot be stored as npy.*not subclasses"),
    ],
)
def test_arrays_npy_would_change_are_refused_when_asked_and_pickled_when_chosen(value, message):
    with pytest.raises(UnsupportedValueError, match=message):
        payload.encode(value, None, key=KEY, format="npy")
    enc = payload.encode(value, None, key=KEY)
    assert enc.record["format"] == "pickle" and difference(value, enc.value) is None
    assert difference(enc.value, _hit(enc)) is None


@pytest.mark.parametrize(
    "value",
    [
        {"__metadata__": np.zeros(2)},  # the safetensors header's own entry
        {"x": np.zeros(2, dtype=np.longdouble)},
        {"x": np.zeros(2, dtype=np.complex64)},
        {"x": np.zeros(2, dtype="M8[D]")},
    ],
)
def test_dicts_safetensors_cannot_hold_stay_pickles(value):
    assert payload.encode(value, None, key=KEY).record["format"] == "pickle"
    with pytest.raises(UnsupportedValueError, match="cannot be stored as safetensors"):
        payload.encode(value, None, key=KEY, format="safetensors")


def test_safetensors_hands_on_arrays_already_c_contiguous_without_a_copy():
    value = {"w": np.ones((2, 3), dtype=np.float32), "frozen": np.frombuffer(b"\x01\x02", dtype=np.uint8)}
    enc = payload.encode(value, None, key=KEY)
    assert enc.value["w"] is value["w"]
    assert enc.value["frozen"].flags.writeable and difference(enc.value, _hit(enc)) is None


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({1: [1], "1": [2]}), r"column names \[1\] cannot be stored as parquet: Parquet column names"),
        (pd.DataFrame({"a": [1]}, index=pd.Index([5], name=0)), r"\(index\.names\[0\]: type int != str\)"),
        (pd.Series([], name=0, dtype="int64", index=pd.Index([], dtype="int64", name="0")).to_frame(name="0"), None),
        (
            pd.DataFrame({"a": np.array([1, 2], dtype=object)}),
            r"without change: a cache hit would give back a different value \(\['a'\]\.dtype: object != int64\)",
        ),
        (
            pd.DataFrame({"a": [1]}, index=pd.date_range("2026-01-01", periods=1)),
            r"\(index\.freq: <Day> != None\)",
        ),
        (pd.DataFrame({"a": pd.Categorical([1, 2])}), r"\(\['a'\]\.dtype: category != int64\)"),
        (pd.DataFrame({"a": [1]}).set_flags(allows_duplicate_labels=False), r"allows_duplicate_labels: False"),
        (pd.DataFrame({"a": [1]}).pipe(lambda d: d.attrs.update(t=(1, 2)) or d), r"attrs\['t'\]: type tuple != list"),
    ],
)
def test_frames_parquet_would_change_are_refused_with_the_difference(frame, message):
    if message is None:  # a column and an index of one name: stored, and loads back
        enc = payload.encode(frame, None, key=KEY, format="parquet")
        assert difference(frame, _hit(enc)) is None
        return
    with pytest.raises(UnsupportedValueError, match=message):
        payload.encode(frame, None, key=KEY, format="parquet")
    enc = payload.encode(frame, None, key=KEY)
    assert enc.record["format"] == "pickle" and difference(enc.value, _hit(enc)) is None


def test_a_frame_pyarrow_cannot_read_back_is_refused():
    series = pd.Series([], name=0, dtype="int64", index=pd.Index([], dtype="int64", name=0))  # two fields "0"
    with pytest.raises(UnsupportedValueError, match=r"the file written does not load back \(ArrowInvalid"):
        payload.encode(series, None, key=KEY, format="parquet")


def test_arrow_tables_with_nan_are_arrow_and_unreadable_extension_types_are_refused():
    table = pa.table({"f": [1.0, float("nan"), -0.0]})
    enc = payload.encode(table, None, key=KEY)
    assert enc.record["format"] == "arrow" and difference(enc.value, _hit(enc)) is None  # was a pickle: NaN != NaN

    odd = pa.table({"x": pa.ExtensionArray.from_storage(Unit(), pa.array([1.0]))})
    with pytest.raises(UnsupportedValueError, match=r"schema\['x'\]\.type: extension<test\.unit.*!= double"):
        payload.encode(odd, None, key=KEY, format="arrow")
    assert payload.encode(odd, None, key=KEY).record["format"] == "pickle"
