"""The core signature: values digested by content and the same in every process, code identity, parts changed."""

from __future__ import annotations

import collections
import dataclasses
import enum
import importlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from scout_persist import signature as sig
from scout_persist.codeidentity import _is_user_function
from scout_persist.errors import UnsupportedValueError
from scout_persist.rubyvalues import Step, Symbol


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float


# A change of any of these means stored signatures no longer match: bump SIGNATURE_VERSION with it.
GOLDEN = [
    (None, "7fca578fe311fdef2ff8b7b257432344"),
    (True, "f03f406e7649a3f852cc008d2bf6c963"),
    (7, "dde811846e9f6c83ea17ee12c4d33b2b"),
    (0.1, "ead87ca5201d4b54e224e17df95d3222"),
    ("muffin", "3d0178478a2e3bad3efb77291cd0faeb"),
    (b"\x00\xff", "948a0e9b0a2e52f8de0605e5e0210f37"),
    ([1, "a", None], "d8d64e5f7b23e76de8c631dc36cda530"),
    ({"b": 2, "a": 1}, "46ac76c03b5d14d7127c3c1b7e5eb7c6"),
    (frozenset({"x", "y", "z"}), "f50144218cdf9dc15dcc4ca65b5c37fb"),
]


def test_value_digest_golden_vectors():
    got = [sig.value_digest(value) for value, _ in GOLDEN]
    assert all(len(d) == 32 and int(d, 16) >= 0 for d in got)
    assert got == [expected for _, expected in GOLDEN], json.dumps(got)


def test_equal_values_digest_equal_and_different_values_differ():
    # a task iterating a dict sees its order; a set's order is the process's, never the task's to rely on
    assert sig.value_digest({"a": 1, "b": 2}) != sig.value_digest({"b": 2, "a": 1})
    assert sig.value_digest({3, 1, 2}) == sig.value_digest({2, 3, 1})
    assert sig.value_digest([1, 2]) != sig.value_digest((1, 2))  # a tuple is not a list
    assert sig.value_digest({1, 2}) != sig.value_digest(frozenset({1, 2}))
    assert sig.value_digest(1) != sig.value_digest(1.0) != sig.value_digest(True)
    assert sig.value_digest("a") != sig.value_digest(Symbol("a")) != sig.value_digest(b"a")
    assert sig.value_digest(0.0) != sig.value_digest(-0.0)
    assert sig.value_digest(float("nan")) == sig.value_digest(float("nan")) != sig.value_digest(-float("nan"))
    # a subclass computes otherwise: numpy.float64(1) / 0 is inf where 1.0 / 0 raises; OrderedDict equality
    np = pytest.importorskip("numpy")
    assert sig.value_digest(np.float64(1.0)) != sig.value_digest(1.0) and sig.value_digest(
        np.int64(1)
    ) != sig.value_digest(1)
    assert sig.value_digest(np.int32(1)) != sig.value_digest(np.int64(1))
    assert sig.value_digest(collections.OrderedDict(a=1)) != sig.value_digest({"a": 1})
    assert sig.value_digest(Colour.RED) != sig.value_digest(Colour.BLUE)
    assert sig.value_digest(Point(1, 2.0)) == sig.value_digest(Point(1, 2.0)) != sig.value_digest(Point(1, 2.5))
    assert sig.value_digest(Step("var/jobs/W/t/a")) != sig.value_digest(Step("var/jobs/W/t/b"))
    assert sig.value_digest(["x", ["y"]]) != sig.value_digest(["x", "y"])


def test_paths_digest_by_name_and_file_content(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("one")
    before = sig.value_digest(f)
    f.write_text("two")
    assert sig.value_digest(f) != before
    assert sig.value_digest(pathlib.PurePosixPath(str(f))) == sig.value_digest(pathlib.PurePosixPath(str(f)))
    assert sig.value_digest(tmp_path / "absent") != sig.value_digest(tmp_path / "absent2")


def test_numpy_arrays_by_dtype_shape_and_content():
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert sig.value_digest(a) == sig.value_digest(a.copy())
    # memory order is seen by a computation (tobytes(order="A"), ravel("K"), the layout of results)
    assert sig.value_digest(a) != sig.value_digest(np.asfortranarray(a))
    assert sig.value_digest(a[::2]) == sig.value_digest(a[::2].copy())  # a strided view is its values in C order
    assert sig.value_digest(a) != sig.value_digest(a.reshape(4, 3))
    assert sig.value_digest(a) != sig.value_digest(a.astype(np.int32))
    b = a.copy()
    b[2, 3] = 99
    assert sig.value_digest(a) != sig.value_digest(b)
    assert sig.value_digest(np.float64(0.5)) != sig.value_digest(0.5)  # a numpy scalar computes as numpy
    assert sig.value_digest(np.array([{"k": 1}, None], dtype=object)) != sig.value_digest(
        np.array([{"k": 2}, None], dtype=object)
    )


def test_pandas_objects_by_content():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["r1", "r2"])
    assert sig.value_digest(df) == sig.value_digest(df.copy())
    changed = df.copy()
    changed.loc["r2", "b"] = "z"
    assert sig.value_digest(df) != sig.value_digest(changed)
    assert sig.value_digest(df) != sig.value_digest(df.set_axis(["r1", "r9"]))
    assert sig.value_digest(df["a"]) != sig.value_digest(df["a"].astype("float64"))


def test_a_hook_digests_custom_objects_and_anything_else_is_refused_clearly():
    class Model:
        def __init__(self, weights):
            self.weights = weights

        def __scout_digest__(self):
            return ("Model", self.weights)

    assert sig.value_digest(Model([1, 2])) == sig.value_digest(Model([1, 2])) != sig.value_digest(Model([1, 3]))

    class Opaque:
        pass

    with pytest.raises(UnsupportedValueError) as err:
        sig.value_digest({"k": Opaque()}, "input 'model' of scout task W#train")
    message = str(err.value)
    assert "input 'model' of scout task W#train" in message and "Opaque" in message
    assert "ignore=" in message and "__scout_digest__" in message
    loop: list = []
    loop.append(loop)
    with pytest.raises(UnsupportedValueError, match="contains itself"):
        sig.value_digest(loop)


DIGEST_IN_CHILD = textwrap.dedent("""
    import json, sys
    from scout_persist.signature import value_digest
    values = [{"pear", "apple", "fig", "kiwi"}, frozenset({"a", 1, 2.5, None}), {"z": {"q", "r"}, "y": (1, 2)}]
    print(json.dumps([value_digest(v) for v in values]))
""")


def test_sets_digest_the_same_in_every_process():
    """Pickle follows the per-process string hash order; the digest must not."""
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", DIGEST_IN_CHILD], env=env, capture_output=True, text=True, check=True
        )
        seen.add(out.stdout.strip())
    assert len(seen) == 1


# ------------------------------------------------------------------------------------------------ code identity
def _define(source: str, name: str = "task", module: str = "edited_module"):
    namespace: dict = {"__name__": module}
    exec(compile(textwrap.dedent(source), f"<{module}>", "exec"), namespace)  # noqa: S102 - the test's own source
    return namespace[name]


def test_code_identity_sees_constants_defaults_closures_and_helpers():
    base = _define("def task(x):\n    return x * 7\n")
    assert sig.code_identity(base) == sig.code_identity(_define("def task(x):\n    return x * 7\n"))
    assert sig.code_identity(base) != sig.code_identity(_define("def task(x):\n    return x * 9\n"))
    assert sig.code_identity(_define("def task(x, k=7):\n    return x * k\n")) != sig.code_identity(
        _define("def task(x, k=9):\n    return x * k\n")
    )
    helper7 = "def helper(x):\n    return x + 7\n\ndef task(x):\n    return helper(x)\n"
    helper9 = "def helper(x):\n    return x + 9\n\ndef task(x):\n    return helper(x)\n"
    assert sig.code_identity(_define(helper7)) != sig.code_identity(_define(helper9))
    const7 = "FACTOR = 7\n\ndef task(x):\n    return x * FACTOR\n"
    const9 = "FACTOR = 9\n\ndef task(x):\n    return x * FACTOR\n"
    assert sig.code_identity(_define(const7)) != sig.code_identity(_define(const9))
    table = "PARAMS = {'scale': [1, 7], 'names': {'a', 'b'}}\n\ndef task(x):\n    return x * PARAMS['scale'][1]\n"
    assert sig.code_identity(_define(table)) == sig.code_identity(_define(table))
    assert sig.code_identity(_define(table)) != sig.code_identity(_define(table.replace("7]", "9]")))
    # past the bounds, a table is known by its size (documented: data that large belongs in an input)
    big = "BIG = list(range(200_000))\n\ndef task(x):\n    return BIG[x]\n"
    assert sig.code_identity(_define(big)) != sig.code_identity(_define(big.replace("200_000", "300_000")))
    nested7 = "def task(xs):\n    return [(lambda v: v * 7)(x) for x in xs]\n"
    nested9 = "def task(xs):\n    return [(lambda v: v * 9)(x) for x in xs]\n"
    assert sig.code_identity(_define(nested7)) != sig.code_identity(_define(nested9))
    closure = "def make(k):\n    def task(x):\n        return x * k\n    return task\n"
    make = _define(closure, "make")
    assert sig.code_identity(make(7)) != sig.code_identity(make(9))
    method7 = (
        "class Scaler:\n    def apply(self, x):\n        return x * 7\n\ndef task(x):\n    return Scaler().apply(x)\n"
    )
    assert sig.code_identity(_define(method7)) != sig.code_identity(_define(method7.replace("* 7", "* 9")))


def test_code_identity_ignores_comments_docstrings_and_line_numbers():
    plain = "def task(x):\n    return x * 7\n"
    commented = '\n\n# a comment\ndef task(x):\n    """Multiply."""\n    # why seven\n    return x * 7  # seven\n'
    assert sig.code_identity(_define(plain)) == sig.code_identity(_define(commented))


CODE_IN_CHILD = textwrap.dedent("""
    import json, sys, cloudpickle
    from scout_persist.signature import code_identity
    fn = cloudpickle.loads(sys.stdin.buffer.read())
    print(code_identity(fn))
""")


def test_code_identity_is_equal_after_travelling_by_value_to_another_process():
    """What a process pool or a Dask worker receives: the function pickled by value, no source file to read."""
    cloudpickle = pytest.importorskip("cloudpickle")
    fn = _define(
        "FACTOR = 7\n\ndef helper(x):\n    return x + FACTOR\n\ndef task(x):\n    return helper(x) * 2\n",
        module="__main__",
    )
    out = subprocess.run(
        [sys.executable, "-c", CODE_IN_CHILD], input=cloudpickle.dumps(fn), capture_output=True, check=True
    )
    assert out.stdout.decode().strip() == sig.code_identity(fn)


IDENTITY_IN_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from scout_persist.signature import code_identity
    import tasks
    print(code_identity(getattr(tasks, sys.argv[2])))
""")

TASKS = textwrap.dedent("""
    import json
    import helpers
    from helpers import scale
    from helpers.units import Meter
    import numpy
    from scout_persist.signature import value_digest

    def direct(x):
        return scale(x)

    def through_module(x):
        return helpers.scale(x) + helpers.OFFSET

    def with_class(x):
        return Meter(x).value

    def with_libraries(x):
        return json.dumps(numpy.asarray([x]).tolist()) + value_digest(x)
""")
HELPERS = {
    "helpers/__init__.py": "OFFSET = 1\n\ndef scale(x):\n    return _two(x) * 7\n\ndef _two(x):\n    return 2 * x\n",
    "helpers/units.py": "class Meter:\n    def __init__(self, v):\n        self.value = v * 100\n",
}


def _identities(folder: pathlib.Path, edits: dict[str, tuple[str, str]] | None = None) -> dict[str, str]:
    """Each task's code identity in a fresh interpreter that imports the modules by name, after ``edits``."""
    for rel, text in {**HELPERS, "tasks.py": TASKS}.items():
        if rel in (edits or {}):
            text = text.replace(*edits[rel])
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    run = [sys.executable, "-B", "-c", IDENTITY_IN_CHILD, str(folder)]
    names = ("direct", "through_module", "with_class", "with_libraries")
    return {n: subprocess.run([*run, n], capture_output=True, text=True, check=True).stdout.strip() for n in names}


def test_code_identity_follows_the_users_helpers_in_other_modules(tmp_path):
    """Edit a helper in a sibling module (called directly, through its module, or through another helper) and the
    task is other code; the libraries it calls are their installed versions, not part of the task."""
    pytest.importorskip("numpy")
    base = _identities(tmp_path)
    assert base == _identities(tmp_path)  # stable between processes
    nested = _identities(tmp_path, {"helpers/__init__.py": ("2 * x", "3 * x")})  # _two, reached through scale
    assert nested["direct"] != base["direct"] and nested["through_module"] != base["through_module"]
    assert nested["with_class"] == base["with_class"] and nested["with_libraries"] == base["with_libraries"]
    constant = _identities(tmp_path, {"helpers/__init__.py": ("OFFSET = 1", "OFFSET = 2")})
    assert constant["through_module"] != base["through_module"] and constant["direct"] == base["direct"]
    method = _identities(tmp_path, {"helpers/units.py": ("v * 100", "v * 1000")})
    assert method["with_class"] != base["with_class"] and method["direct"] == base["direct"]
    comment = _identities(tmp_path, {"helpers/__init__.py": ("def scale(x):\n", "def scale(x):\n    # seven\n")})
    assert comment == base  # comments and line numbers are not code
    assert not _is_user_function(json.dumps) and not _is_user_function(sig.value_digest)
    assert _is_user_function(_define("def task(x):\n    return x\n"))


def test_a_reloaded_helper_or_a_rebound_constant_is_seen_at_the_next_call(tmp_path, monkeypatch):
    """A notebook edits a helper module and reloads it (autoreload): the same task object is other code now."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "reloaded_helpers.py").write_text("LIMIT = 5\n\ndef scale(x):\n    return x * 7\n")
    helpers = importlib.import_module("reloaded_helpers")
    task = _define(
        "import reloaded_helpers\n\ndef task(x):\n    return reloaded_helpers.scale(x) + reloaded_helpers.LIMIT\n"
    )
    before = sig.code_identity(task)
    assert sig.code_identity(task) == before  # cached, and still valid
    (tmp_path / "reloaded_helpers.py").write_text("LIMIT = 5\n\ndef scale(x):\n    return x * 9 + 0\n")
    importlib.reload(helpers)
    reloaded = sig.code_identity(task)
    assert reloaded != before
    monkeypatch.setattr(helpers, "LIMIT", 6)
    assert sig.code_identity(task) != reloaded


def test_a_memo_or_log_the_task_fills_is_not_a_change_of_its_code():
    """Module lists, sets and dicts count as first seen: filling them at run time keeps hits hitting."""
    fn = _define("MEMO = {}\nLOG = []\n\ndef task(x, k=1):\n    LOG.append(x)\n    MEMO[x] = x * k\n    return x\n")
    before = sig.code_identity(fn)
    fn(1), fn(2)
    assert sig.code_identity(fn) == before
    edited = _define(
        "MEMO = {1: 1}\nLOG = []\n\ndef task(x, k=1):\n    LOG.append(x)\n    MEMO[x] = x * k\n    return x\n"
    )
    assert sig.code_identity(edited) != before  # as the source defines it: another module, another table


def test_a_partial_or_an_instance_the_task_calls_is_part_of_its_code():
    partial = "import functools\n\ndef _scale(x, factor):\n    return x * factor\n\n"
    partial += "scale = functools.partial(_scale, factor={k})\n\ndef task(x):\n    return scale(x)\n"
    assert sig.code_identity(_define(partial.format(k=7))) != sig.code_identity(_define(partial.format(k=9)))
    instance = "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n    def __call__(self, x):\n"
    instance += "        return x * self.k\n\nscaler = Scaler({k})\n\ndef task(x):\n    return scaler(x)\n"
    assert sig.code_identity(_define(instance.format(k=7))) != sig.code_identity(_define(instance.format(k=9)))
    assert sig.code_identity(_define(instance.format(k=7))) == sig.code_identity(_define(instance.format(k=7)))


def test_a_decorated_helper_is_followed_through_its_wrapper():
    cached = "import functools\n\n@functools.lru_cache\ndef helper(x):\n    return x + {k}\n\n"
    cached += "def task(x):\n    return helper(x)\n"
    assert sig.code_identity(_define(cached.format(k=7))) != sig.code_identity(_define(cached.format(k=9)))


# --------------------------------------------------------------------------------------------------- signatures
def test_compute_and_changed_parts():
    base = sig.compute({"n": 5, "s": {"a", "b"}}, ["var/jobs/W/dep/x=sha256:ab"], "code1", None)
    assert base["signature_version"] == sig.SIGNATURE_VERSION and base["version"] == ""
    assert sig.changed_parts(base, base) == []
    assert sig.changed_parts(
        base, sig.compute({"n": 6, "s": {"a", "b"}}, ["var/jobs/W/dep/x=sha256:ab"], "code1", None)
    ) == ["inputs"]
    assert sig.changed_parts(
        base, sig.compute({"n": 5, "s": {"b", "a"}}, ["var/jobs/W/dep/x=sha256:cd"], "code2", "2")
    ) == ["dependencies", "code", "version"]
    assert sig.changed_parts({"inputs": "md5", "source": "x"}, base) == ["signature_version"]  # older plug-in
    assert sig.changed_parts(None, base) == ["signature_version"]
    assert sig.changed_inputs(base, sig.compute({"n": 6, "s": {"a"}}, [], "c", None)) == ["n", "s"]


def test_dependency_tokens_follow_result_content():
    """A dependency is what its loaded value is made of: the checksum of its bytes and the rest of its record
    (format, dtype, shape, flags), and its .files manifest."""
    ours = {"payload": {"format": "scout", "type": "json", "checksum": "sha256:aa"}}
    token = sig.dependency_token("var/jobs/W/t/x", ours)
    assert token.startswith("var/jobs/W/t/x=r:") and token == sig.dependency_token("var/jobs/W/t/x", dict(ours))
    others = [
        {"payload": {"format": "scout", "type": "json", "checksum": "sha256:bb"}},
        {"payload": {"format": "npy", "checksum": "sha256:aa", "header": {"shape": [3, 2]}}},
        {"payload": {"format": "npy", "checksum": "sha256:aa", "header": {"shape": [2, 3]}}},
        {"payload": {"format": "scout", "type": "binary", "checksum": "sha256:aa", "newline": True}},
        {**ours, "files": {"plot.png": {"size": 1, "checksum": "sha256:cc"}}},
        {**ours, "files": {"plot.png": {"size": 1, "checksum": "sha256:dd"}}},
    ]
    tokens = [sig.dependency_token("var/jobs/W/t/x", info) for info in others]
    assert len({token, *tokens}) == len(others) + 1
    assert sig.dependency_token("var/jobs/W/t/x", {**ours, "end": "later", "time_elapsed": 3}) == token
    assert sig.dependency_token("var/jobs/W/t/x", {"payload": {"format": "none"}}).startswith("var/jobs/W/t/x=r:")
    ruby = {"status": "done", "end": "2026-11-22 14:53:39 +0000"}
    assert sig.dependency_token("var/jobs/W/t/x", ruby) == "var/jobs/W/t/x=legacy:2026-11-22 14:53:39 +0000"
