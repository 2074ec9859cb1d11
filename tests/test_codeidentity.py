"""Code identity: each gap a review found (an edit that was not seen) as a pair of versions that must differ, and
edits that change nothing a task computes as pairs that must not."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
import types

import pytest

from scout_persist import codeidentity, signature as sig
from scout_persist.codeidentity import identify

np = pytest.importorskip("numpy")


_REPLACED: dict[str, types.ModuleType | None] = {}  # modules _define replaced, as they were before the test


@pytest.fixture(autouse=True)
def _put_back_replaced_modules():
    """A defined module (``__main__`` too) must not outlive its test: multiprocessing's spawn re-imports
    ``sys.modules["__main__"].__file__`` in every child a later test starts."""
    yield
    for name, module in _REPLACED.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
    _REPLACED.clear()


def _define(source: str, module: str = "identity_case", name: str = "task"):
    """``source`` as the module ``module`` of a user's file (a new module object each time)."""
    made = types.ModuleType(module)
    made.__file__ = f"/virtual/{module.replace('.', '/')}.py"
    _REPLACED.setdefault(module, sys.modules.get(module))
    sys.modules[module] = made
    exec(compile(textwrap.dedent(source), made.__file__, "exec"), made.__dict__)  # noqa: S102 - the test's source
    return made.__dict__[name]


# (case, source with {v}, value 1, value 2): the two versions compute differently, so their identities differ
EDITED = [
    (
        "a user decorator with functools.wraps on the task",
        """
        import functools
        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*a):
                return fn(*a) + {v}
            return wrapper
        @deco
        def task(x):
            return x
        """,
        0,
        1,
    ),
    (
        "a library function bound to a module name",
        "import numpy as np\nAGG = np.{v}\ndef task(x):\n    return AGG(x)",
        "mean",
        "median",
    ),
    ("a builtin as a default", "def task(xs, f={v}):\n    return f(xs)", "min", "max"),
    (
        "partial of a library function",
        "import functools, operator\nS = functools.partial(operator.{v}, 3)\ndef task(x):\n    return S(x)",
        "mul",
        "add",
    ),
    (
        "a numpy array constant",
        "import numpy as np\nW = np.array([1.0, {v}])\ndef task(x):\n    return W @ x",
        2.0,
        3.0,
    ),
    (
        "a compiled regex constant",
        "import re\nP = re.compile('{v}')\ndef task(s):\n    return P.findall(s)",
        "a+",
        "b+",
    ),
    (
        "a Decimal constant",
        "from decimal import Decimal\nC = Decimal('{v}')\ndef task(x):\n    return C * x",
        "1.0",
        "1.00",
    ),
    (
        "an Enum value",
        "import enum\nclass Mode(enum.Enum):\n    A = {v}\nMODE = Mode.A\ndef task(x):\n    return MODE.value * x",
        1,
        2,
    ),
    (
        "an instance holding an array",
        """
        import numpy as np
        class Model:
            def __init__(self, w):
                self.w = w
        M = Model(np.array([{v}, 1.0]))
        def task(x):
            return M.w @ x
        """,
        1.0,
        2.0,
    ),
    (
        "an inherited method",
        """
        class Base:
            def f(self, x):
                return x + {v}
        class Child(Base):
            pass
        def task(x):
            return Child().f(x)
        """,
        1,
        2,
    ),
    (
        "a cached_property",
        """
        import functools
        class C:
            @functools.cached_property
            def k(self):
                return {v}
        def task(x):
            return C().k * x
        """,
        1,
        2,
    ),
    (
        "a nested class",
        """
        class Outer:
            class Inner:
                k = {v}
        def task(x):
            return Outer.Inner.k * x
        """,
        1,
        2,
    ),
    (
        "a class attribute holding a library function",
        "import numpy as np\nclass C:\n    agg = staticmethod(np.{v})\ndef task(x):\n    return C.agg(x)",
        "mean",
        "median",
    ),
    (
        "a dispatch table of functions",
        "import numpy as np\nOPS = {{'agg': np.{v}}}\ndef task(x):\n    return OPS['agg'](x)",
        "mean",
        "median",
    ),
]


@pytest.mark.parametrize(("case", "source", "v1", "v2"), EDITED, ids=[c[0] for c in EDITED])
def test_an_edit_the_task_reaches_changes_its_identity(case, source, v1, v2):
    one = identify(_define(textwrap.dedent(source).format(v=v1)))
    two = identify(_define(textwrap.dedent(source).format(v=v2)))
    assert one.digest != two.digest, case
    assert not one.not_followed, one.not_followed


def test_the_methods_of_an_input_s_class_are_part_of_the_input():
    source = """
        from dataclasses import dataclass
        @dataclass
        class Config:
            alpha: float = 0.1
            def strength(self):
                return self.alpha * {v}
    """
    one = _define(textwrap.dedent(source).format(v=2), name="Config")
    two = _define(textwrap.dedent(source).format(v=3), name="Config")
    assert sig.value_digest(one(0.1)) != sig.value_digest(two(0.1))
    assert sig.value_digest(one(0.1)) == sig.value_digest(one(0.1))


def test_imports_inside_the_body_and_getattr_by_a_constant_name_are_followed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    package = tmp_path / "body_imports"
    package.mkdir()
    (package / "__init__.py").write_text("")

    def identity(double: str, source: str) -> str:
        (package / "ops.py").write_text(f"def double(x):\n    return {double}\n\ndef triple(x):\n    return x * 3\n")
        for name in [m for m in sys.modules if m.startswith("body_imports")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return identify(_define(source, module="body_imports.tasks")).digest

    uses = {
        "from_package": "def task(x):\n    from body_imports import ops\n    return ops.double(x)\n",
        "import_module": "def task(x):\n    import body_imports.ops\n    return body_imports.ops.double(x)\n",
        "getattr": "def task(x):\n    from body_imports import ops\n    return getattr(ops, 'double')(x)\n",
    }
    for name, source in uses.items():
        assert identity("x * 2", source) != identity("x + x + 1", source), name
        assert identity("x * 2", source) == identity("x * 2", source), name


def test_edits_that_compute_nothing_new_keep_the_identity():
    base = "def helper(x):\n    '''Doc.'''\n    return x * 2\n\ndef task(x):\n    return helper(x)\n"
    same = [
        base.replace("Doc.", "Other words."),
        "\n\n# a comment\n" + base,
        "def task(x):\n    return helper(x)\n\ndef helper(x):\n    '''Doc.'''\n    return x * 2\n",
    ]
    digest = identify(_define(base)).digest
    assert [identify(_define(s)).digest for s in same] == [digest] * len(same)


SET_BUILT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import set_built
from scout_persist.codeidentity import code_identity
print(json.dumps([set_built.ORDER, code_identity(set_built.task)]))
"""


def test_a_constant_built_from_a_set_has_one_identity_in_every_process(tmp_path):
    (tmp_path / "set_built.py").write_text(
        "ORDER = list({'x', 'y', 'z', 'w', 'v'})\nLITERAL = ['b', 'a']\n\n"
        "def task():\n    return sorted(ORDER) + LITERAL\n"
    )
    seen = {}
    for seed in ("1", "2", "3", "4", "5"):
        out = subprocess.run(
            [sys.executable, "-B", "-c", SET_BUILT, str(tmp_path)],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        order, digest = __import__("json").loads(out.stdout)
        seen[tuple(order)] = digest
    assert len(seen) > 1, "the seeds gave one order: the test proves nothing"
    assert len(set(seen.values())) == 1


def test_what_cannot_be_followed_is_named():
    import threading

    lock = threading.Lock()
    task = _define("def task(x):\n    with LOCK:\n        return x\n")
    task.__globals__["LOCK"] = lock
    identity = identify(task)
    assert any("LOCK" in item for item in identity.not_followed), identity.not_followed


def test_a_change_is_named_by_its_component():
    one = sig.compute(
        {}, [], identify(_define("K = 1\ndef helper(x):\n    return x + K\ndef task(x):\n    return helper(x)\n"))
    )
    two = sig.compute(
        {}, [], identify(_define("K = 2\ndef helper(x):\n    return x + K\ndef task(x):\n    return helper(x)\n"))
    )
    assert sig.explain(one, two) == ["code: K"]  # (a name of the task's own module)
    three = sig.compute(
        {}, [], identify(_define("K = 1\ndef helper(x):\n    return x - K\ndef task(x):\n    return helper(x)\n"))
    )
    assert sig.explain(one, three) == ["code: helper"]


def test_the_task_s_module_run_as_a_script_or_imported_has_one_identity():
    """``python pipeline.py`` runs it as ``__main__``; a resume, a deployment or a worker imports it by its name."""
    source = "K = 3\nclass C:\n    k = 2\ndef helper(x):\n    return x + K + C.k\ndef task(x):\n    return helper(x)\n"
    as_script = identify(_define(source, module="__main__"))
    imported = identify(_define(source, module="pipeline"))
    assert as_script.digest == imported.digest and ".helper" in imported.parts


def test_a_parse_tripped_by_another_threads_ast_use_is_parsed_again(monkeypatch, tmp_path):
    """CPython 3.11 (gh-106905): a parse racing another thread's can fail its recursion-depth check; the module's
    set-built names must still be read, or the identity of its lists would depend on the hash seed."""
    real, failures = ast.parse, []

    def flaky(text, *args, **kwargs):
        if not failures:
            failures.append(1)
            raise SystemError("AST constructor recursion depth mismatch (before=27, after=22)")
        return real(text, *args, **kwargs)

    source = tmp_path / "set_built_case.py"
    source.write_text('ORDER = list({"a", "b", "c"})\nPLAIN = [1, 2]\n')
    monkeypatch.setattr(ast, "parse", flaky)
    assert codeidentity._set_built_names(str(source)) == frozenset({"ORDER"})
    assert failures == [1]
