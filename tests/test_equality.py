"""scout_persist.equality.difference: each distinction a computation can see is found and named; equal values,
and values Python's == confuses only in ways no computation sees, are equal; odd values never raise."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from scout_persist.equality import difference, equal


@dataclasses.dataclass
class Point:
    x: float
    y: object = None


class Plain:
    def __init__(self, **state):
        self.__dict__.update(state)


class Slotted:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


class RaisingEq:
    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        raise TypeError("no comparison")

    __hash__ = None

    def __repr__(self):
        return f"RaisingEq({self.v!r})"


class ArrayEq(RaisingEq):
    def __eq__(self, other):
        return np.array([True, False])  # not a bool: compared by repr


def _frame():
    return pd.DataFrame(
        {"a": [1.0, np.nan], "s": ["x", "y"], "c": pd.Categorical(["u", "v"], categories=["v", "u"])},
        index=pd.Index(["r1", "r2"], name="ID"),
    )


def _with(frame, fn):
    out = frame.copy()
    fn(out)
    return out


def _attrs(frame, **attrs):
    out = frame.copy()
    out.attrs.update(attrs)
    return out


# ------------------------------------------------------------------------------------------------ distinctions
DIFFERENT = [
    # (a, b, the reason's start)
    ({"x": np.zeros(2)}, {"x": np.zeros(2, dtype=np.float32)}, "['x'].dtype: float64 != float32"),
    (1, 1.0, "value: type int != float"),
    (True, 1, "value: type bool != int"),
    (b"x", bytearray(b"x"), "value: type bytes != bytearray"),
    ("1", b"1", "value: type str != bytes"),
    ([0.1, 2], [0.1, 2.0], "[1]: type int != float"),
    ((1, 2), [1, 2], "value: type tuple != list"),
    (0.0, -0.0, "value: 0.0 != -0.0"),
    (math.nan, 0.0, "value: nan != 0.0"),
    (complex(0.0, 0.0), complex(0.0, -0.0), "value: 0j != -0j"),
    (Decimal("1.0"), Decimal("1.00"), "value: Decimal('1.0') != Decimal('1.00')"),
    (Decimal("0"), Decimal("-0"), "value: Decimal('0') != Decimal('-0')"),
    (Fraction(1, 3), Fraction(1, 4), "value: Fraction(1, 3) != Fraction(1, 4)"),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}, "keys()[0]: 'a' != 'b'"),
    ({1: "a"}, {"1": "a"}, "keys()[0]: type int != str"),
    ({1: "a"}, {1.0: "a"}, "keys()[0]: type int != float"),
    ({"k": [1]}, {"k": [2]}, "['k'][0]: 1 != 2"),
    ({"a": 1}, collections.OrderedDict(a=1), "value: type dict != collections.OrderedDict"),
    (collections.defaultdict(list), collections.defaultdict(set), "default_factory: <class 'list'> != <class 'set'>"),
    ({1, 2}, {1.0, 2}, "{1}: type int != float"),
    ({1, 2}, {1, 3}, "value: 2 is not a member"),
    (frozenset([1]), {1}, "value: type frozenset != set"),
    (Point(0.0), Point(-0.0), "x: 0.0 != -0.0"),
    (Point(1.0, [1]), Point(1.0, [1.0]), "y[0]: type int != float"),
    (Plain(a=[1]), Plain(a=["1"]), "a[0]: type int != str"),
    (Plain(a=1), Plain(b=1), "value: attributes ['a'] != ['b']"),
    (Slotted(1), Slotted(2), "v: 1 != 2"),
    (
        dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "value: datetime.datetime(2026, 1, 1, 0, 0, tzinfo=",
    ),
    (RaisingEq(1), RaisingEq(2), "value: RaisingEq(1) != RaisingEq(2) (compared by repr"),
    (ArrayEq(1), ArrayEq(2), "value: RaisingEq(1) != RaisingEq(2) (compared by repr"),
    # numpy
    (np.float64(1.0), 1.0, "value: type numpy.float64 != float"),
    (np.arange(3), np.arange(4), "shape: (3,) != (4,)"),
    (np.arange(3, dtype="<i4"), np.arange(3, dtype=">i4"), "dtype: int32 != >i4"),
    (np.array([1.0, 0.0]), np.array([1.0, -0.0]), "[1]: 0.0 != -0.0"),
    (np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 5]]), "[1, 1]: 4 != 5"),
    (np.arange(6.0).reshape(2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)), "layout: C != F"),
    (np.arange(6.0)[::2], np.arange(0.0, 6.0, 2.0), "layout: strided != C"),
    (np.arange(3), np.frombuffer(np.arange(3).tobytes(), dtype=np.int64), "flags.writeable: True != False"),
    (np.array(["2026", "NaT"], dtype="M8[D]"), np.array(["2026", "2027"], dtype="M8[D]"), "[1]: None != "),
    (np.array([complex(1, 0.0)]), np.array([complex(1, -0.0)]), "imag[0]: 0.0 != -0.0"),
    (
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.array([(1, 2.5)], dtype=[("a", "i4"), ("b", "f8")]),
        "['b'][0]: 2.0 != 2.5",
    ),
    (np.array([1, 2], dtype=object), np.array([1, 2.0], dtype=object), "[1]: type int != float"),
    (np.array([Decimal("1.0")], dtype=object), np.array([Decimal("1.00")], dtype=object), "[0]: Decimal('1.0')"),
    (np.array(["a", 1], dtype=object), np.array(["a", 2], dtype=object), "[1]: 1 != 2"),
    (np.zeros(2, dtype=np.dtype(float, metadata={"u": 1})), np.zeros(2), "dtype.metadata: mappingproxy({'u': 1})"),
    (np.ma.masked_array([1, 2], mask=[0, 1]), np.ma.masked_array([1, 2], mask=[0, 0]), "mask[1]: True != False"),
    (
        np.ma.masked_array([1.0], mask=[1], fill_value=5.0),
        np.ma.masked_array([1.0], mask=[1], fill_value=6.0),
        "fill_value: 5.0 != 6.0",
    ),
    (np.ma.masked_array([1, 2]), np.array([1, 2]), "value: type numpy.ma.MaskedArray != numpy.ndarray"),
    # pandas
    (_frame(), _frame().astype({"a": "float32"}), "['a'].dtype: float64 != float32"),
    (_frame(), _with(_frame(), lambda f: f.iloc.__setitem__((0, 0), 1.0000000001)), "['a'][0]: 1.0 != 1.0000000001"),
    (_frame(), _frame().rename_axis("KEY"), "index.names[0]: 'ID' != 'KEY'"),
    (_frame(), _frame().rename_axis(columns="cols"), "columns.names[0]: type NoneType != str"),
    (_frame(), _frame().reset_index(drop=True), "index: type pandas.Index != pandas.RangeIndex"),
    (_frame(), _attrs(_frame(), unit="mm"), "attrs.len(): 0 != 1"),
    (_attrs(_frame(), t=(1, 2)), _attrs(_frame(), t=[1, 2]), "attrs['t']: type tuple != list"),
    (_frame(), _frame().set_flags(allows_duplicate_labels=False), "flags.allows_duplicate_labels: True != False"),
    (
        pd.DataFrame({"a": [1]}, index=[1]),
        pd.DataFrame({"a": [1]}, index=["1"]),
        "index.dtype: int64 != str",
    ),
    (pd.DataFrame({1: [1]}), pd.DataFrame({"1": [1]}), "columns.dtype: int64 != str"),
    (pd.Series([1, 2], dtype=object), pd.Series(["1", "2"], dtype=object), "[0]: type int != str"),
    (pd.Series([0.0]), pd.Series([-0.0]), "[0]: 0.0 != -0.0"),
    (pd.Series([1], name="a"), pd.Series([1], name="b"), "name: 'a' != 'b'"),
    (pd.Series([1], name=1), pd.Series([1], name="1"), "name: type int != str"),
    (
        pd.Series(pd.Categorical(["a", "b"], categories=["a", "b"])),
        pd.Series(pd.Categorical(["a", "b"], categories=["b", "a"])),
        "dtype.categories[0]: 'a' != 'b'",
    ),
    (
        pd.Series(pd.Categorical(["a"])),
        pd.Series(pd.Categorical(["a"], ordered=True)),
        "dtype.ordered: False != True",
    ),
    (
        pd.Series(pd.Categorical(["a"], categories=["a", "z"])),
        pd.Series(pd.Categorical(["a"], categories=["a"])),
        "dtype.categories.len(): 2 != 1",
    ),
    (pd.Series([1, None], dtype="Int64"), pd.Series([1, 2], dtype="Int64"), "isna()[1]: True != False"),
    (pd.Series([1, None], dtype="Int64"), pd.Series([1.0, None], dtype="Float64"), "dtype: Int64 != Float64"),
    (
        pd.Series(["a"], dtype=pd.StringDtype("python")),
        pd.Series(["a"], dtype=pd.StringDtype("pyarrow")),
        "dtype: <StringDtype(storage='python'",
    ),
    (
        pd.Series([1.0], index=pd.date_range("2026-01-01", periods=1, freq="D")),
        pd.Series([1.0], index=pd.DatetimeIndex(["2026-01-01"])),
        "index.freq: <Day> != None",
    ),
    (
        pd.Series([1.0], index=pd.DatetimeIndex(["2026-01-01"], tz="UTC")),
        pd.Series([1.0], index=pd.DatetimeIndex(["2026-01-01"], tz="Europe/Madrid")),
        "index.dtype: datetime64[us, UTC] != datetime64[us, Europe/Madrid]",
    ),
    (
        pd.Series(pd.to_datetime(["2026-01-01"]).tz_localize("UTC")),
        pd.Series(pd.to_datetime(["2026-01-02"]).tz_localize("UTC")),
        "[0]: ",
    ),
    (pd.Series([Decimal("1.0")]), pd.Series([Decimal("1.00")]), "[0]: Decimal('1.0') != Decimal('1.00')"),
    (pd.Index([1, 2]), pd.Index([1, 3]), "[1]: 2 != 3"),
    (pd.RangeIndex(3), pd.RangeIndex(0, 6, 2), "value: RangeIndex(start=0, stop=3, step=1) != RangeIndex("),
    (
        pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]]),
        pd.MultiIndex.from_arrays([[1, 2], ["a", "c"]]),
        "levels[1][1]: 'b' != 'c'",
    ),
    (pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-01").as_unit("s"), "value: Timestamp('2026-01-01 00:00:00')"),
    # pyarrow
    (pa.table({"f": [0.0]}), pa.table({"f": [-0.0]}), "['f'][0]: 0.0 != -0.0"),
    (pa.table({"f": [[0.0]]}), pa.table({"f": [[-0.0]]}), "['f'][0][0]: 0.0 != -0.0"),
    (pa.table({"f": [1]}, metadata={"a": "b"}), pa.table({"f": [1]}), "schema.metadata: {b'a': b'b'} != None"),
    (
        pa.table({"f": pa.array([1], pa.int64())}),
        pa.table({"f": pa.array([1], pa.int32())}),
        "schema['f'].type: int64 != int32",
    ),
    (pa.table({"s": ["a", None]}), pa.table({"s": ["a", "b"]}), "['s'][1]: type NoneType != str"),
    (
        pa.table({"d": pa.array([Decimal("1.0")], pa.decimal128(3, 1))}),
        pa.table({"d": pa.array([Decimal("1.00")], pa.decimal128(3, 2))}),
        "schema['d'].type: decimal128(3, 1) != decimal128(3, 2)",
    ),
]


@pytest.mark.parametrize("a, b, reason", DIFFERENT, ids=[r for _, _, r in DIFFERENT])
def test_each_distinction_is_found_and_named(a, b, reason):
    found = difference(a, b)
    assert found is not None and found.startswith(reason), found
    assert not equal(a, b)


def _nan_payload(bits: int) -> float:
    return np.array([bits], dtype=np.uint64).view(np.float64)[0].item()


EQUAL = [
    (math.nan, math.nan),
    (math.nan, _nan_payload(0x7FF8000000000001)),  # every NaN is NaN
    (-0.0, -0.0),
    ([0.1, {"a": (1, b"x")}], [0.1, {"a": (1, b"x")}]),
    ({1, 2.5, "x"}, {1, 2.5, "x"}),
    ({math.nan}, {math.nan}),
    (Decimal("NaN"), Decimal("NaN")),
    (Point(math.nan, [1]), Point(math.nan, [1])),
    (Plain(a=np.arange(3)), Plain(a=np.arange(3))),
    (object(), object()),  # no state to differ
    (np.array([np.nan, -0.0]), np.array([np.nan, -0.0])),
    (np.array([_nan_payload(0x7FF8000000000001)]), np.array([np.nan])),
    (np.arange(6.0).reshape(2, 3).T, np.asfortranarray(np.arange(6.0).reshape(2, 3).T)),  # both F-contiguous
    (np.zeros((0, 3)), np.zeros((0, 3))),
    (np.array(1.5), np.array(1.5)),
    (np.array(["2026", "NaT"], dtype="M8[D]"), np.array(["2026", "NaT"], dtype="M8[D]")),
    (np.array([1, "a", None, 1.5, math.nan], dtype=object), np.array([1, "a", None, 1.5, math.nan], dtype=object)),
    (np.longdouble(1.5), np.longdouble(1.5)),
    (np.ma.masked_array([1, 2], mask=[0, 1]), np.ma.masked_array([1, 2], mask=[0, 1])),
    (_frame(), _frame()),
    (pd.Series([1, None], dtype="Int64"), pd.Series([1, None], dtype="Int64")),
    (pd.Series(["a", None]), pd.Series(["a", None])),
    (pd.DataFrame(), pd.DataFrame()),
    (pa.table({"f": [1.0, math.nan, None]}), pa.table({"f": [1.0, math.nan, None]})),
    (
        pa.concat_tables([pa.table({"f": [1.0]}), pa.table({"f": [2.0]})]),  # two chunks
        pa.table({"f": [1.0, 2.0]}),  # one: chunking is not compared
    ),
    (pd, pd),
    (dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1)),
]


@pytest.mark.parametrize("a, b", EQUAL)
def test_equal_values_are_equal(a, b):
    assert difference(a, b) is None
    assert equal(b, a)


def _nested(depth: int) -> list:
    deep = current = []
    for _ in range(depth):
        current.append([])
        current = current[0]
    return deep


def test_odd_values_never_raise():
    assert difference(_nested(100_000), _nested(100_000)) == "value: nested too deeply to compare"
    cyclic, other = [], []
    cyclic.append(cyclic)
    other.append(other)
    assert difference(cyclic, other) is None  # compared co-inductively, not forever

    class Opaque:
        def __init__(self, v):
            self.v = v

        def __eq__(self, other):
            raise ValueError("nope")

        __hash__ = None

        def __repr__(self):
            raise RuntimeError("no repr either")

    assert difference(Opaque(1), Opaque(1)) == (
        "value: a test_equality.test_odd_values_never_raise.<locals>.Opaque cannot be compared (its __eq__ and its "
        "repr fail)"
    )
    assert difference([Opaque(1)], [1]) == "[0]: type test_equality.test_odd_values_never_raise.<locals>.Opaque != int"


def test_a_large_array_is_compared_without_a_python_loop():
    """5 M elements: vectorised, so this finishes in well under the suite's per-test timeout even on a loaded
    machine (a Python loop would take many seconds; bench numbers belong in bench/)."""
    a = np.random.default_rng(0).random(5_000_000)
    b = a.copy()
    assert difference(a, b) is None
    b[-1] = -0.0 if a[-1] == 0.0 else 0.0
    assert difference(a, b).startswith("[4999999]:")


def test_the_module_imports_no_optional_library():
    code = "import sys, scout_persist.equality; print(sorted({'numpy', 'pandas', 'pyarrow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
