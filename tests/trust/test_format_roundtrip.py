"""Trust issue #21, class 2: every stored format round-trips exactly.

For values drawn the way tasks return them (arrays in every layout and dtype, masked arrays, dicts of arrays,
frames with every column and index kind, Arrow tables, JSON-like data, Scout typed results), and for every format,
auto choice and Scout type: either encoding refuses the value (UnsupportedValueError / InvalidInputError), or the
value the first run hands on (``encoded.value``) is indistinguishable (:func:`scout_persist.equality.difference`)
from what every cache hit decodes from the stored bytes, and differs from the returned value only by a documented
lossless change (docs/formats.md).
"""

from __future__ import annotations

import contextlib
import math
import pathlib
from decimal import Decimal
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from scout_persist import blosc_codec, envelope_parts, formats, payload
from scout_persist.equality import difference
from scout_persist.errors import InvalidInputError, UnsupportedValueError
from scout_persist.rubyvalues import TSV, Symbol

KEY = "var/jobs/Trust/roundtrip/Default"
FORMATS = [None, "pickle", *formats.names()]  # None: chosen by the value's type
SCOUT_TYPES = [
    "string",
    "select",
    "folder",
    "text",
    "integer",
    "float",
    "boolean",
    "array",
    "string_array",
    "integer_array",
    "float_array",
    "boolean_array",
    "json",
    "serializer",
    "yaml",
    "marshal",
    "binary",
    "tsv",
]
# numpy's default fill value of small integer masked arrays overflows when numpy copies or pickles them
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------ the property
def _hit(enc: payload.Encoded) -> Any:
    data = None if enc.data is None else bytes(payload.joined(enc.data))
    return payload.decode(data, enc.record, key=KEY, location="/store/" + KEY)


def _loaded_forms(v: np.ndarray, fmt: str) -> list[np.ndarray]:
    """The forms an array may take in ``fmt``, as docs/formats.md lists them: in NPY a strided view becomes its
    C-contiguous copy and a read-only array its writable copy; safetensors holds C-contiguous writable arrays; a
    pickle does what numpy's pickling does (a strided view becomes a C-contiguous writable copy, a read-only array
    may come back writable, an array in non-native byte order native)."""
    if fmt == "safetensors":
        return [v.copy(order="C")]
    forms = [v.copy(order="C" if not (v.flags.c_contiguous or v.flags.f_contiguous) else "K")]
    if fmt == "pickle" and not v.dtype.isnative and v.dtype.fields is None:
        forms.append(forms[0].astype(v.dtype.newbyteorder("=")))
    if fmt == "pickle":
        for form in list(forms):
            frozen = form.copy(order="K")
            frozen.flags.writeable = False
            forms.append(frozen)
    return forms


def _lossless(value: Any, handed: Any, fmt: str) -> str | None:
    """Why ``handed`` is not ``value`` up to the lossless changes documented for ``fmt`` (None: it is)."""
    problem = difference(value, handed)
    if problem is None or fmt not in ("npy", "safetensors", "pickle"):
        return problem  # parquet, arrow: the value itself, never changed; json, Scout types: require_roundtrip
    if isinstance(value, np.ndarray) and type(value) in (np.ndarray, np.ma.MaskedArray):
        if any(difference(form, handed) is None for form in _loaded_forms(value, fmt)):
            return None
        return problem
    if type(value) is type(handed) and type(value) in (list, tuple) and len(value) == len(handed):
        return next((p for p in map(lambda x, y: _lossless(x, y, fmt), value, handed) if p), None)
    if type(value) is type(handed) is dict and list(value) == list(handed):
        return next((p for k in value if (p := _lossless(value[k], handed[k], fmt))), None)
    return problem


def _round_trips(value: Any, fmt: str | None, compression: str) -> str | None:
    """The stored format, after checking the contract; None when the value is refused."""
    try:
        enc = payload.encode(value, None, key=KEY, format=fmt, compression=compression)
    except (UnsupportedValueError, InvalidInputError):
        assert fmt is not None, "a value chosen by type is never refused while pickles are allowed"
        return None
    stored = enc.record["format"]
    problem = difference(enc.value, _hit(enc))
    assert problem is None, f"format={fmt!r} ({stored}): the first run hands on a value a hit does not get: {problem}"
    if stored == "json":  # JSON's lossless changes (a tuple comes back a list)
        assert payload.lossless(value, enc.value), f"format={fmt!r} (json): handed on {enc.value!r} for {value!r}"
    else:
        problem = _lossless(value, enc.value, stored)
        assert problem is None, f"format={fmt!r} ({stored}): handed on a changed value: {problem}"
    return str(stored)


def _every_format(value: Any, compression: str) -> dict[str | None, str | None]:
    return {fmt: _round_trips(value, fmt, compression) for fmt in FORMATS}


compressions = st.sampled_from(["none", "zstd:3"])


# ------------------------------------------------------------------------------------------------ numpy
def _viewed(arr: np.ndarray, how: str) -> np.ndarray:
    if how == "transpose":
        return arr.T
    if how == "fortran":
        return np.asfortranarray(arr)
    if how == "strided" and arr.ndim:
        return arr[..., ::2]
    if how == "reversed" and arr.ndim:
        return arr[::-1]
    if how == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


layouts = st.sampled_from(["as is", "transpose", "fortran", "strided", "reversed", "readonly"])
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
numeric_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
)
any_dtypes = st.one_of(
    numeric_dtypes,
    hnp.scalar_dtypes(),
    hnp.integer_dtypes(endianness=">"),
    hnp.floating_dtypes(endianness="?"),
    hnp.byte_string_dtypes(max_len=3),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(max_period="D"),
    hnp.array_dtypes(subtype_strategy=hnp.scalar_dtypes(), max_size=2),
)


@st.composite
def arrays(draw: Any, dtypes: Any = any_dtypes) -> np.ndarray:
    arr = draw(hnp.arrays(draw(dtypes), draw(shapes)))
    return _viewed(arr, draw(layouts))


@st.composite
def masked_arrays(draw: Any) -> Any:
    data = _viewed(draw(hnp.arrays(draw(numeric_dtypes), draw(shapes))), draw(layouts))
    return np.ma.masked_array(data, mask=draw(hnp.arrays(np.bool_, data.shape)))


tensor_names = st.one_of(st.text(max_size=5), st.just("__metadata__"))
dicts_of_arrays = st.dictionaries(tensor_names, arrays(numeric_dtypes), min_size=1, max_size=4)


@SETTINGS
@given(value=st.one_of(arrays(), masked_arrays()), compression=compressions)
def test_arrays_in_every_layout_and_dtype(value, compression):
    chosen = _every_format(value, compression)
    if formats.get("npy").can_encode(value):  # an array NPY holds is never left to a pickle by an encoding error
        assert chosen[None] == chosen["npy"] == "npy"


@SETTINGS
@given(value=dicts_of_arrays, compression=compressions)
def test_dicts_of_arrays(value, compression):
    _every_format(value, compression)


@SETTINGS
@given(
    value=st.one_of(
        st.dictionaries(st.text(max_size=3), dicts_of_arrays, min_size=1, max_size=2),  # nested: a pickle
        st.tuples(arrays(numeric_dtypes), st.text(max_size=3)),
        st.lists(st.one_of(arrays(numeric_dtypes), masked_arrays()), max_size=3),
    ),
    compression=compressions,
)
def test_nested_values_holding_arrays(value, compression):
    _every_format(value, compression)


@contextlib.contextmanager
def _array_codecs_for_every_array() -> Any:
    """``auto``'s array path for arrays of every size and content: Blosc2 (fixed-width items of 2-255 bytes) or zstd
    frames, never the plain fallback; the drawn arrays are far below Blosc2's break-even size and do not shrink."""
    with (
        mock.patch.object(blosc_codec, "BLOSC2_MIN", 0),
        mock.patch.object(envelope_parts, "AUTO_MIN", 0),
        mock.patch.object(envelope_parts, "INCOMPRESSIBLE", float("inf")),
    ):
        yield


@SETTINGS
@given(value=st.one_of(arrays(), masked_arrays(), dicts_of_arrays, st.lists(arrays(numeric_dtypes), max_size=3)))
def test_arrays_through_the_array_codecs_in_every_layout_and_dtype(value):
    """Issue 24: NPY, safetensors and the pickle's buffers as Blosc2 / zstd-frame parts decoded into numpy.empty."""
    with _array_codecs_for_every_array():
        chosen = _every_format(value, "auto")
    if formats.get("npy").can_encode(value):
        assert chosen[None] == chosen["npy"] == "npy"


# ------------------------------------------------------------------------------------------------ pandas
special_floats = st.one_of(
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
decimals = st.builds(
    lambda digits, exp, sign: Decimal((sign, tuple(digits), exp)),
    st.lists(st.integers(0, 9), min_size=1, max_size=4),
    st.integers(-3, 1),
    st.integers(0, 1),
)
mixed_objects = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=2), special_floats, st.booleans())


COLUMN_KINDS = ["int", "float", "bool", "str", "category", "Int64", "Float64", "boolean", "string", "datetime"]
OBJECT_KINDS = ["object", "decimal", "bytes"]


@st.composite
def columns(draw: Any, n: int, kinds: list[str] = COLUMN_KINDS + OBJECT_KINDS) -> Any:
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        return np.array(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64)
    if kind == "float":
        return np.array(draw(st.lists(special_floats, min_size=n, max_size=n)), dtype=np.float64)
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "str":
        return draw(st.lists(st.text(max_size=3), min_size=n, max_size=n))
    if kind == "object":
        return np.array(draw(st.lists(mixed_objects, min_size=n, max_size=n)) + [None], dtype=object)[:n]
    if kind == "decimal":
        return np.array(draw(st.lists(decimals, min_size=n, max_size=n)) + [None], dtype=object)[:n]
    if kind == "category":
        cats = draw(st.lists(st.text(max_size=2), min_size=1, max_size=4, unique=True))
        values = draw(st.lists(st.sampled_from(cats), min_size=n, max_size=n))
        return pd.Categorical(values, categories=draw(st.permutations(cats)), ordered=draw(st.booleans()))
    if kind in ("Int64", "Float64", "boolean", "string"):
        elements = {
            "Int64": st.integers(-(2**40), 2**40),
            "Float64": special_floats,
            "boolean": st.booleans(),
            "string": st.text(max_size=3),
        }[kind]
        dtype = pd.StringDtype("python") if kind == "string" else kind
        return pd.array(draw(st.lists(st.none() | elements, min_size=n, max_size=n)), dtype=dtype)
    if kind == "datetime":
        seconds = draw(st.lists(st.integers(0, 2**31), min_size=n, max_size=n))
        times = pd.to_datetime(seconds, unit="s")
        tz = draw(st.sampled_from([None, "UTC", "Europe/Madrid"]))
        return times if tz is None else times.tz_localize(tz)
    return np.array(draw(st.lists(st.binary(max_size=3), min_size=n, max_size=n)) + [None], dtype=object)[:n]


@st.composite
def indexes(draw: Any, n: int) -> Any:
    kind = draw(st.sampled_from(["range", "range-step", "int", "str", "mixed", "dates", "dates-freq", "multi"]))
    name = draw(st.one_of(st.none(), st.text(max_size=2), st.integers(0, 2)))
    if kind == "range":
        return pd.RangeIndex(n, name=name)
    if kind == "range-step":
        return pd.RangeIndex(3, 3 + 2 * n, 2, name=name)
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)), dtype=np.int64, name=name)
    if kind == "str":  # "1" beside 1: index dtype counts
        return pd.Index(draw(st.lists(st.sampled_from(["1", "2", "a"]), min_size=n, max_size=n)), name=name)
    if kind == "mixed":
        return pd.Index(draw(st.lists(st.sampled_from([1, "1", 2.5]), min_size=n, max_size=n)), dtype=object)
    if kind == "dates":
        return pd.DatetimeIndex(pd.to_datetime(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)), unit="s"))
    if kind == "dates-freq":
        return pd.date_range("2026-01-01", periods=n, freq=draw(st.sampled_from(["D", "h"])), name=name)
    return pd.MultiIndex.from_arrays(
        [list(range(n)), draw(st.lists(st.text(max_size=2), min_size=n, max_size=n))], names=["k", name]
    )


column_names = st.one_of(st.text(max_size=3), st.integers(0, 3))
attrs = st.one_of(
    st.just({}),
    st.just({"unit": "mm"}),
    st.just({"pair": (1, 2)}),  # JSON would make the tuple a list
    st.just({1: "int key"}),
)


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 4))
    names = draw(st.lists(column_names, max_size=3, unique_by=lambda x: (type(x), x)))
    frame = pd.DataFrame({name: draw(columns(n)) for name in names}, index=draw(indexes(n)))
    if not names:
        frame = pd.DataFrame(index=draw(indexes(n)))
    if draw(st.booleans()):
        frame.columns.name = draw(st.one_of(st.text(max_size=2), st.integers(0, 2)))
    frame.attrs.update(draw(attrs))
    return frame


@st.composite
def series(draw: Any) -> pd.Series:
    n = draw(st.integers(0, 4))
    name = draw(st.one_of(st.none(), st.text(max_size=2), st.integers(0, 2)))
    value = pd.Series(draw(columns(n)), index=draw(indexes(n)), name=name)
    value.attrs.update(draw(attrs))
    return value


@st.composite
def object_columns(draw: Any) -> pd.DataFrame:
    """One column of Python objects (mixed types, Decimals of several scales, bytes): the kind Parquet changes."""
    n = draw(st.integers(1, 4))
    return pd.DataFrame({"c": draw(columns(n, OBJECT_KINDS + ["category"]))})


@SETTINGS
@given(value=st.one_of(frames(), series(), object_columns()), compression=compressions)
def test_frames_and_series(value, compression):
    _every_format(value, compression)
    try:  # a Scout TSV result: Ruby's bytes, the dtypes in the record
        enc = payload.encode(value, "tsv", key=KEY)
    except UnsupportedValueError:
        return
    assert difference(enc.value, _hit(enc)) is None
    assert difference(value, enc.value) is None


# ------------------------------------------------------------------------------------------------ arrow
def _arrow_columns() -> dict[str, tuple[Any, Any]]:
    """Arrow column kinds: (strategy of one cell, Arrow type)."""
    nullable_floats = st.none() | special_floats
    return {
        "int": (st.none() | st.integers(-(2**63), 2**63 - 1), pa.int64()),
        "float": (nullable_floats, pa.float64()),
        "str": (st.none() | st.text(max_size=3), pa.string()),
        "list": (st.lists(nullable_floats, max_size=2), pa.list_(pa.float32())),
        "struct": (st.fixed_dictionaries({"x": nullable_floats}), pa.struct([("x", pa.float64())])),
        "dict": (st.sampled_from(["a", "b"]), pa.dictionary(pa.int8(), pa.string())),
        "decimal": (st.none() | st.sampled_from([Decimal("1.50"), Decimal("-0.01")]), pa.decimal128(5, 2)),
        "ts": (st.integers(0, 2**40), pa.timestamp("ms", tz="UTC")),
    }


@st.composite
def tables(draw: Any) -> pa.Table:
    n = draw(st.integers(0, 4))
    kinds = _arrow_columns()
    chosen = draw(st.lists(st.sampled_from(sorted(kinds)), max_size=3))
    cols = {}
    for i, kind in enumerate(chosen):
        cells, arrow_type = kinds[kind]
        cols[f"c{i}"] = pa.array(draw(st.lists(cells, min_size=n, max_size=n)), arrow_type)
    metadata = draw(st.one_of(st.none(), st.just({"source": "trust"})))
    table = pa.table(cols, metadata=metadata)
    if cols and draw(st.booleans()):
        table = pa.concat_tables([table.slice(0, n // 2), table.slice(n // 2)])  # two chunks
    return table


@SETTINGS
@given(value=tables(), compression=compressions)
def test_arrow_tables(value, compression):
    chosen = _every_format(value, compression)
    assert chosen[None] == "arrow" and chosen["arrow"] == "arrow"


# ------------------------------------------------------------------------------------------------ plain data
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    special_floats,
    st.text(max_size=4),
    st.binary(max_size=4),
    decimals,
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-2, 2)), inner, max_size=3),
        st.frozensets(st.integers(-3, 3), max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(value=plain, compression=compressions)
def test_plain_data_in_every_format(value, compression):
    _every_format(value, compression)


tsv_cells = st.one_of(st.text(max_size=3), st.integers(-3, 3), st.none())
tsv_tables = st.builds(
    TSV,
    key_field=st.sampled_from(["ID", "Gene"]),
    fields=st.just(["A", "B"]),
    type=st.just("list"),
    data=st.dictionaries(st.text(min_size=1, max_size=3), st.lists(tsv_cells, min_size=2, max_size=2), max_size=3),
)
scout_values = st.recursive(
    st.one_of(
        scalars,
        tsv_tables,
        st.builds(Symbol, st.text(max_size=3)),
        st.builds(pathlib.PurePosixPath, st.text(min_size=1, max_size=4)),
        st.datetimes(timezones=st.none() | st.timezones()),
        st.dates(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-2, 2)), inner, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=80, deadline=None)
@given(value=scout_values, scout_type=st.sampled_from(SCOUT_TYPES))
def test_plain_data_as_every_scout_type(value, scout_type):
    try:
        enc = payload.encode(value, scout_type, key=KEY, location="/store/" + KEY)
    except UnsupportedValueError:
        return
    problem = difference(enc.value, _hit(enc))
    assert problem is None, f"type {scout_type!r}: the first run hands on a value a hit does not get: {problem}"
    payload.require_roundtrip(value, enc.value, scout_type)  # only a documented lossless change
