from __future__ import annotations

import decimal

import pytest
from hypothesis import given, strategies as st

from scout_persist.errors import ScoutPersistError, UnsupportedValueError
from scout_persist.rubydigest import digest, digest_str, file_digest, md5_hex, sanitize_filename
from scout_persist.rubyvalues import ScoutPath, Step, Symbol


def test_scalars_and_containers():
    assert digest_str(["a", Symbol("b"), 3, None, True, False]) == "[a, b, 3, nil, true, false]"
    assert digest_str({"a": 1, Symbol("b"): [1, 2], "c": {"d": "e"}}) == "{a=1, b=[1, 2], c={d=e}}"
    assert digest_str(["", "b"]) == "[b]" and digest_str(["a", "", "b"]) == "[a, , b]"
    assert digest_str(["", ""]) == "[]" and digest_str([[], "x"]) == "[[], x]"
    assert digest_str(12345678901234567890) == "12345678901234567890"
    assert digest_str(list(range(100001))) == "[100001:1, 2, 50000, 99999, 100000]"


@pytest.mark.parametrize(
    "x,s",
    [
        (2.0, "2"),
        (1e20, "100000000000000000000"),
        (12.5, "12.5"),
        (1.5, "1.500"),
        (1e-7, "0.000000"),
        (-0.25, "-0.250000"),
        (float("inf"), "Inf"),
        (float("-inf"), "-Inf"),
        (float("nan"), "NaN"),
    ],
)
def test_floats(x, s):
    assert digest_str(x) == s


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_matches_decimal_reference(x):
    d = decimal.Decimal(x)
    if d == d.to_integral_value():
        ref = str(int(d))
    else:
        places = 1 if abs(d) > 10 else 3 if abs(d) > 1 else 6
        ref = str(d.quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN))
    assert digest_str(x) == ref


@given(st.lists(st.sampled_from(["", "a", "bb"]), max_size=8))
def test_join_drops_only_leading_empties(items):
    rest = items[next((i for i, x in enumerate(items) if x), len(items)) :]
    assert digest_str(items) == "[" + ", ".join(rest) + "]"


def test_files_dirs_and_missing(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("hello\n")
    assert digest_str(str(f)) == "File MD5: " + md5_hex("hello\n")
    assert digest_str(f) == digest_str(ScoutPath(str(f)))
    (tmp_path / "f.txt.md5").write_text(" abc \n")
    assert file_digest(f) == "abc"
    assert digest_str(ScoutPath("does/not/exist")) == "'does/not/exist'"
    assert digest_str("does/not/exist") == "does/not/exist"
    d = tmp_path / "d"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.txt").write_text(str(i))
    (d / "sub").mkdir()
    assert digest_str(str(d)) == "Directory MD5: [" + ", ".join("File MD5: " + md5_hex(str(i)) for i in range(3)) + "]"
    for i in range(3, 12):
        (d / f"{i:02d}.txt").write_text(str(i))
    out = digest_str(str(d))
    assert out.startswith("Directory MD5: 12 ") and out.count("\n") == 11


def test_large_file_sampled(tmp_path):
    f = tmp_path / "big"
    data = bytes(range(256)) * 40000  # 10,240,000 bytes
    f.write_bytes(data)
    size = len(data)
    s = 3_000_000
    ref = md5_hex(f"{size}:".encode() + data[:s] + data[size // 2 : size // 2 + s] + data[size - s - 1 : size - 1])
    assert file_digest(f) == ref


def test_step_and_digest_of_strings():
    assert digest_str(Step("/h/u/.scout/var/jobs/W/t/x"), home="/h/u") == "Step: var/jobs/W/t/x"
    assert digest("abc") == md5_hex("abc") and digest(Symbol("abc")) == md5_hex("abc")


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes"])
def test_unsupported(bad):
    with pytest.raises(UnsupportedValueError) as e:
        digest_str([bad])
    assert type(bad).__name__ in str(e.value) and "Scout digests only" in str(e.value)
    assert isinstance(e.value, (ScoutPersistError, TypeError))


@given(st.text(min_size=0, max_size=400))
def test_sanitize_length(name):
    out = sanitize_filename(name)
    assert out == name if len(name) <= 150 else len(out) == 150
