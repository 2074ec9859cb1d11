"""Property: two inputs with equal digests are indistinguishable to a computation (equal probes: types, float bits,
dtype, shape, memory order, mask, index and column labels by type, categories, attrs).

Values are drawn from a deliberately small space (few numbers, short strings, tiny shapes), so pairs that look alike
but compute differently — the pairs a digest could confuse — come up often.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings, strategies as st
from oracle_inputs import describe, json_text

from scout_persist.signature import value_digest

SCALARS = st.sampled_from([0, 1, True, False, None, 0.0, -0.0, 1.0, math.nan, "0", "1", "", b"1", 1j])
DTYPES = st.sampled_from(["int64", "int32", "float64", "float32", "bool", "object"])


@st.composite
def arrays(draw):
    shape = draw(st.sampled_from([(2,), (2, 1), (1, 2), (2, 2), (0,)]))
    dtype = draw(DTYPES)
    flat = draw(st.lists(st.sampled_from([0, 1]), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    a = np.array(flat, dtype=dtype).reshape(shape)
    if draw(st.booleans()):
        a = np.asfortranarray(a)
    if draw(st.booleans()) and a.size and dtype != "object":
        a = np.ma.array(
            a, mask=np.array(draw(st.lists(st.booleans(), min_size=a.size, max_size=a.size))).reshape(shape)
        )
    return a


@st.composite
def series(draw):
    n = draw(st.integers(1, 2))
    values = draw(st.lists(st.sampled_from([0, 1, "1", 0.0, -0.0]), min_size=n, max_size=n))
    index = draw(st.sampled_from([None, [0, 1][:n], ["0", "1"][:n], [1, "1"][:n]]))
    s = pd.Series(values, index=None if index is None else pd.Index(index, dtype=object), dtype=object)
    kind = draw(st.sampled_from(["object", "category", "float", "name", "attrs"]))
    if kind == "category":
        s = s.astype(str).astype(
            pd.CategoricalDtype(draw(st.permutations(["0", "1", "0.0", "-0.0"])), ordered=draw(st.booleans()))
        )
    elif kind == "float":
        s = pd.to_numeric(s.astype(str), errors="coerce")
    elif kind == "name":
        s.name = draw(st.sampled_from(["a", 1, "1"]))
    elif kind == "attrs":
        s.attrs["unit"] = draw(st.sampled_from(["m", "s"]))
    return s


VALUES = st.recursive(
    SCALARS | arrays() | series(),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.tuples(inner)
        | st.dictionaries(st.sampled_from([0, "0", 1]), inner, max_size=2)
        | st.frozensets(SCALARS, max_size=2)
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, VALUES)
def test_equal_digests_mean_equal_probes(a, b):
    if value_digest(a) == value_digest(b):
        assert json_text(describe(a)) == json_text(describe(b)), (a, b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_a_value_and_its_copy_digest_equal(a):
    import copy

    assert value_digest(a) == value_digest(copy.deepcopy(a))
