"""The round-trip contract and verified decoding of stored results (scout_persist.payload)."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import pytest
from hypothesis import given, settings, strategies as st

from scout_persist import payload, pickle_envelope, pickle_key
from scout_persist.errors import CorruptPayloadError, UnsupportedValueError, UntrustedPayloadError
from scout_persist.job import Job, JobWriter
from scout_persist.pickle_key import HMAC_ENV
from scout_persist.rubyvalues import Symbol
from scout_persist.store import Store

KEY = "var/jobs/W/t/Default"
SCOUT_TYPES = [
    "string",
    "text",
    "integer",
    "float",
    "boolean",
    "array",
    "integer_array",
    "float_array",
    "boolean_array",
    "json",
    "yaml",
    "marshal",
    "binary",
    None,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(max_size=64),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.frozensets(st.integers(), max_size=4),
    ),
    max_leaves=12,
)
# numbers mixed in one list: Python says [0.1, 2] == [0.1, 2.0], a downstream task does not
numeric_lists = st.lists(st.one_of(st.integers(-(2**60), 2**60), st.floats(allow_nan=True)), max_size=5)


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, type(a)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(values, numeric_lists), scout_type=st.sampled_from(SCOUT_TYPES))
def test_the_first_run_hands_on_what_every_cached_run_gets(value, scout_type):
    """Either the value is refused (UnsupportedValueError naming the type), or the value handed on by the first run
    equals, with the same type, what decoding the stored bytes gives every later run."""
    try:
        enc = payload.encode(value, scout_type, key=KEY, location="/store/" + KEY)
    except UnsupportedValueError as exc:
        assert repr(scout_type) in str(exc) or "pickle" in str(exc)
        return
    back = payload.decode(enc.data, enc.record, key=KEY, location="/store/" + KEY)
    assert _equal(enc.value, back), (value, scout_type, enc.value, back)


@pytest.mark.parametrize(
    "scout_type, value, handed",
    [
        ("binary", bytes(range(256)), bytes(range(256))),  # Ruby's appended newline is not part of the value
        ("binary", bytearray(b"ab"), b"ab"),
        ("binary", "text as bytes", b"text as bytes"),
        ("string", Symbol("sym"), "sym"),
        ("float", 3, 3.0),
        ("float_array", [0.1, 2], [0.1, 2.0]),
        ("json", {"x": [1.5, 2]}, {"x": [1.5, 2]}),
        ("json", {"t": (1, 2)}, {"t": [1, 2]}),
        ("text", "  padded  \n", "  padded  \n"),
        ("array", ("a", "b"), ["a", "b"]),
        (None, {"set": {1, 2}}, {"set": {1, 2}}),
    ],
)
def test_lossless_changes_of_representation_are_handed_on(scout_type, value, handed):
    enc = payload.encode(value, scout_type, key=KEY)
    assert _equal(enc.value, handed)
    assert _equal(payload.decode(enc.data, enc.record, key=KEY), handed)


@pytest.mark.parametrize(
    "scout_type, value, fix",
    [
        ("string", "  padded  \n", "type='text'"),
        ("array", [1, 2, 3], "type='json'"),
        ("array", ["a", ""], "type='json'"),
        ("array", ["line\nbreak"], "type='json'"),
        ("integer", "not a number", "return an int"),
        ("integer", True, "return an int"),
        ("integer", 2.5, "return an int"),
        ("boolean", 1, "return a bool"),
        ("json", {1: "int keys"}, "JSON data"),
        ("json", {"s": {1, 2}}, "JSON"),
        ("string", 5, "type='text'"),
        ("json", {"s": "lone \ud800 surrogate"}, "UTF-8"),
        ("text", "lone \udfff", "UTF-8"),
    ],
)
def test_values_a_type_cannot_hold_are_refused_naming_type_and_fix(scout_type, value, fix):
    with pytest.raises(UnsupportedValueError) as err:
        payload.encode(value, scout_type, key=KEY)
    assert repr(scout_type) in str(err.value) or "JSON" in str(err.value)
    assert fix in str(err.value)


def test_none_is_no_result_file_and_loads_as_none(tmp_path):
    store = Store(str(tmp_path))
    for scout_type in ("string", "json", None):
        key = f"var/jobs/W/{scout_type}/Default"
        w = JobWriter(store, key, type=scout_type or "binary")
        assert w.run(lambda: None) is None
        job = Job.at(store, key)
        assert not store.exists(key) and job.info["payload"] == {"format": "none"}
        assert job.load() is None


def test_decode_verifies_size_and_checksum_before_decoding():
    enc = payload.encode({"total": 992152.18}, "json", key=KEY)
    tampered = enc.data.replace(b"992152.18", b"192152.18")
    assert len(tampered) == len(enc.data)
    with pytest.raises(CorruptPayloadError, match="checksum"):
        payload.decode(tampered, enc.record, key=KEY)
    with pytest.raises(CorruptPayloadError, match="holds"):
        payload.decode(enc.data[:-1], enc.record, key=KEY)
    with pytest.raises(CorruptPayloadError, match="no checksum"):
        payload.decode(enc.data, {"format": "scout", "type": "json"}, key=KEY)
    with pytest.raises(CorruptPayloadError, match="format 'npy2' is unknown"):
        payload.decode(enc.data, {"format": "npy2"}, key=KEY)


def test_a_pickle_is_unpickled_only_when_the_record_says_so():
    pickled = pickle_envelope.dump_pickle({"x": 1})
    as_binary = payload.encode(pickled, "binary", key=KEY)
    assert payload.decode(as_binary.data, as_binary.record, key=KEY) == pickled  # raw bytes, never run
    assert payload.decode(pickled, None, key=KEY, scout_type="binary") == pickled  # Ruby's job: raw bytes


def test_hmac_binds_a_pickle_to_its_job(tmp_path, monkeypatch):
    monkeypatch.setenv(HMAC_ENV, "k1: a team key of 32 bytes or more")
    store = Store(str(tmp_path))
    JobWriter(store, "var/jobs/W/t/a").run(lambda: {"owner": "a"})
    JobWriter(store, "var/jobs/W/t/b").run(lambda: {"owner": "b"})
    assert Job.at(store, "var/jobs/W/t/a").load() == {"owner": "a"}
    # copy b's signed payload and .info over a's: the checksum matches, the HMAC (bound to b) does not
    store.put("var/jobs/W/t/a", store.get("var/jobs/W/t/b"))
    store.put("var/jobs/W/t/a.info", store.get("var/jobs/W/t/b.info"))
    with pytest.raises(UntrustedPayloadError, match="for another entry"):
        Job.at(store, "var/jobs/W/t/a").load()
    monkeypatch.setenv(HMAC_ENV, "k2: a team key of 32 bytes or more")
    with pytest.raises(UntrustedPayloadError):
        Job.at(store, "var/jobs/W/t/b").load()
    monkeypatch.delenv(HMAC_ENV)  # an unsigned pickle, as an older version wrote them
    monkeypatch.setattr(pickle_key, "current", lambda: None)
    JobWriter(store, "var/jobs/W/t/c").run(lambda: {"unsigned": True})
    monkeypatch.undo()
    monkeypatch.setenv(HMAC_ENV, "k1: a team key of 32 bytes or more")
    with pytest.raises(UntrustedPayloadError, match="carries no HMAC"):
        Job.at(store, "var/jobs/W/t/c").load()


def test_persist_binary_never_unpickles_and_returns_the_same_value_first_and_later(tmp_path):
    from scout_persist.persist_cache import persist

    pickled = pickle_envelope.dump_pickle({"x": 1})
    first = persist("download", "binary", lambda: pickled, store=str(tmp_path))
    later = persist("download", "binary", lambda: b"unused", store=str(tmp_path))
    assert first == later and isinstance(later, bytes) and later.startswith(pickled)
    assert persist("nums", "json", lambda: (1, 2), store=str(tmp_path)) == [1, 2]
    assert persist("nums", "json", lambda: None, store=str(tmp_path)) == [1, 2]
    with pytest.raises(UnsupportedValueError, match="type='text'"):
        persist("pad", "string", lambda: "  x  ", store=str(tmp_path))


class _Cached:
    """Pickles without its cache, as many classes do: a hit gets it without."""

    def __init__(self, n):
        self.n = n
        self.cache = {"warm": True}

    def __getstate__(self):
        return {"n": self.n, "cache": {}}


class _Unloadable:
    def __reduce__(self):
        return (_Unloadable._refuse, ())

    @staticmethod
    def _refuse():
        raise RuntimeError("cannot be rebuilt")


def test_a_pickle_hands_on_what_a_load_of_it_gives_back():
    from scout_persist.equality import difference

    value = {"obj": _Cached(3), "t": (1, 2.5)}
    enc = payload.encode(value, None, key=KEY)
    assert enc.record["format"] == "pickle"
    hit = payload.decode(enc.data, enc.record, key=KEY)
    assert enc.value["obj"].cache == {} == hit["obj"].cache  # the first run too: no warm cache only it has
    assert difference(enc.value, hit) is None


def test_builtin_data_is_handed_on_as_itself_without_unpickling():
    value = {"set": {1, 2}, "t": (1, -0.0, math.nan), "b": b"x", "nested": [{"k": None}]}
    enc = payload.encode(value, None, key=KEY)
    assert enc.record["format"] == "pickle" and enc.value is value  # pickle gives builtin data back exactly
    from scout_persist.equality import difference

    assert difference(value, payload.decode(enc.data, enc.record, key=KEY)) is None
    with_object = {"obj": _Cached(1)}
    assert payload.encode(with_object, None, key=KEY).value is not with_object  # unpickled: what a hit gets


def test_a_value_whose_pickle_does_not_load_back_is_refused():
    with pytest.raises(
        UnsupportedValueError, match=r"_Unloadable value pickles but does not unpickle.*cannot be rebuilt"
    ):
        payload.encode(_Unloadable(), None, key=KEY)


def test_a_datetime_yaml_would_change_is_refused():
    madrid = dt.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Madrid"))
    with pytest.raises(UnsupportedValueError, match=r"cannot be stored as Scout type 'yaml' without change"):
        payload.encode({"t": madrid}, "yaml", key=KEY)  # YAML keeps the offset, not the zone
    lmt = dt.datetime(1924, 1, 1, tzinfo=zoneinfo.ZoneInfo("Asia/Qostanay"))  # UTC+04:14:28
    with pytest.raises(UnsupportedValueError, match=r"'yaml': the bytes written for it do not load back"):
        payload.encode([lmt], "yaml", key=KEY)
    utc = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert payload.encode({"t": utc}, "yaml", key=KEY).value == {"t": utc}


def test_negative_zero_keeps_its_sign_in_every_scout_type_that_holds_floats():
    for scout_type in ("float", "json", "yaml", "marshal", "float_array"):
        value = [-0.0] if scout_type.endswith("array") else -0.0
        enc = payload.encode(value, scout_type, key=KEY)
        back = payload.decode(enc.data, enc.record, key=KEY)
        assert math.copysign(1.0, back[0] if isinstance(back, list) else back) == -1.0, scout_type
