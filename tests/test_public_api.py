"""The public names of ``scout_persist`` are the documented functions and classes, whatever was imported before."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    first = sys.argv[1]
    import scout_persist
    if first == "submodules":
        for info in pkgutil.walk_packages(scout_persist.__path__, "scout_persist."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)
    report = {}
    names = sys.argv[2:] if first == "from" else scout_persist.__all__
    namespace = {}
    if first == "from":
        exec("from scout_persist import " + ", ".join(names), namespace)
    for name in scout_persist.__all__:
        value = namespace.get(name) if first == "from" and name in namespace else getattr(scout_persist, name)
        report[name] = f"{type(value).__name__}:{getattr(value, '__module__', '')}"
    print(json.dumps(report))
""")


def _exports(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("order", [("plain",), ("submodules",), ("from", "persist", "digest", "digest_str")])
def test_every_export_is_the_documented_object_in_any_import_order(order):
    exports = _exports(*order)
    assert not [name for name, kind in exports.items() if kind.startswith("module:")], exports
    for name in ("persist", "digest", "digest_str", "sanitize_filename", "workflow_persist"):
        assert exports[name].startswith("function:"), (name, exports[name])
    for name in ("Job", "Store", "Symbol", "JobWriter"):
        assert exports[name].startswith("type:"), (name, exports[name])


def test_all_lists_the_error_classes():
    import scout_persist
    from scout_persist import errors

    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    assert classes <= set(scout_persist.__all__)
