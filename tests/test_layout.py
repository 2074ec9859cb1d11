from __future__ import annotations

import pytest

from scout_persist.errors import UnsafePathError
from scout_persist.layout import (
    alias_extension,
    check_job_name,
    clean_name,
    extension_for,
    find,
    identify,
    job_key,
    mangle,
    persistence_path,
)
from scout_persist.rubydigest import digest


def test_identify_maps():
    assert identify("/h/u/.scout/var/jobs/W/t/n", home="/h/u") == "var/jobs/W/t/n"
    assert identify("/home/scout/data/x.txt", home="/home/scout") == "home/data/x.txt"
    assert identify("/home/alice/data/x.txt", home="/home/alice") == "~/data/x.txt"
    assert identify("relative/x") == "relative/x"
    assert identify("/usr/local/var/scout/jobs/W/t/n", home="/h") == "var/jobs/W/t/n"


def test_extensions_and_keys():
    assert extension_for("json") == "json" and extension_for("text", "csv") == "csv" and extension_for("text") is None
    assert alias_extension("Default_x.tsv.gz") == "tsv.gz" and alias_extension("ab.tsv") == "ab.tsv"
    assert alias_extension("Default") is None
    assert job_key("W", "t", "n", "json") == "var/jobs/W/t/n.json"


@pytest.mark.parametrize("bad", ["../x", "a/../b", "/abs", "nul\0", ""])
def test_unsafe_names(bad):
    with pytest.raises(UnsafePathError) as e:
        check_job_name(bad, "var/jobs/W/t")
    assert repr(bad) in str(e.value) and "var/jobs/W/t" in str(e.value)


def test_mangle_and_persist_names():
    assert mangle("/h/u/x y.gz") == "\u00b7h\u00b7u\u00b7x_y"
    assert len(mangle("a" * 300)) == 183
    assert persistence_path("n", key="k", dir=None) == "n[k]"
    assert persistence_path("n", other_x=1, dir=None) == "n:" + digest({"x": 1})


def test_clean_name_and_find(tmp_path):
    assert clean_name("with.dots.v1.2") == "with" and clean_name(".hidden") == ".hidden"
    (tmp_path / "f.txt").write_text("x")
    assert find("f.txt", cwd=str(tmp_path), home="/h") == f"{tmp_path}/f.txt"
    assert find("missing.txt", cwd=str(tmp_path), home="/h") == "/h/.scout/missing.txt"
