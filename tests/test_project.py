"""Project-level guarantees: the fixture copy is exact, the core stays free of heavy imports."""

from __future__ import annotations

import filecmp
import subprocess
import sys

import pytest

from ruby_data import RUBY_FIXTURES, SHARED_FIXTURES


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason="no ../shared/fixtures beside this clone to compare with")
def test_fixture_copy_is_identical_to_shared():
    assert _tree(RUBY_FIXTURES) == _tree(SHARED_FIXTURES)
    for rel in _tree(SHARED_FIXTURES):
        a, b = SHARED_FIXTURES / rel, RUBY_FIXTURES / rel
        if a.is_file():
            assert filecmp.cmp(a, b, shallow=False), f"tests/data/ruby-scout/{rel} differs from shared/fixtures"


def test_core_import_loads_no_heavy_dependency():
    code = (
        "import sys, scout_persist; scout_persist.Store; "
        "print(sorted(m for m in ('prefect', 's3fs', 'matplotlib', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_testing_module_declares_its_pytest_need():
    """scout_persist.testing (the store conformance suite) imports pytest: the 'testing' extra installs it, and the
    docs that show the suite say so."""
    from pathlib import Path

    import tomllib

    repo = Path(__file__).resolve().parents[1]
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert any(req.startswith("pytest") for req in project["optional-dependencies"]["testing"])
    code = "import sys; sys.modules['pytest'] = None; import scout_persist.testing"
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr
    assert "Error: import of pytest halted" in err  # it does need it
    assert "pip install 'scout-persist[testing]'" in (repo / "docs" / "storage.md").read_text()
