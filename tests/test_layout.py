from __future__ import annotations

import pytest

from scout_persist.errors import JobNotFound, UnsafePathError
from scout_persist.layout import (
    alias_extension,
    cache_key_of,
    check_job_name,
    clean_name,
    extension_for,
    job_key_for,
    job_key_of,
    mangle,
    persistence_path,
    split_location,
)
from scout_persist.resource import find, identify
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
    assert job_key_for("W", "t", "n", "json") == "var/jobs/W/t/n.json"


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


def test_a_job_path_splits_into_root_and_key_at_the_last_jobs_folder():
    assert split_location("/h/u/.scout/var/jobs/W/t/n", strict=True) == ("/h/u/.scout", "var/jobs/W/t/n")
    assert split_location("bucket/x/var/jobs/var/jobs/W/t/n", strict=True) == ("bucket/x/var/jobs", "var/jobs/W/t/n")
    assert split_location("/var/jobs/W/t/n", strict=True) == ("/", "var/jobs/W/t/n")
    assert split_location("var/jobs/W/t/n", strict=True) == ("", "var/jobs/W/t/n")
    assert split_location("s3://bucket/x/var/jobs/W/t/n") == ("s3://bucket/x", "var/jobs/W/t/n")
    assert split_location("memory://var/jobs/W/t/n") == ("memory://", "var/jobs/W/t/n")
    assert split_location("s3://bucket/cache/entry") == ("s3://bucket/cache", "entry")
    with pytest.raises(JobNotFound, match=r"'/tmp/W/t/n' is not under a Scout jobs directory .*var/jobs"):
        split_location("/tmp/W/t/n", strict=True)
    # a location that is not a job splits at its parent folder instead (command-line arguments, persist entries)
    assert split_location("/h/u/.scout/var/jobs/W/t/n") == ("/h/u/.scout", "var/jobs/W/t/n")
    assert split_location("/data/cache/entry") == ("/data/cache", "entry")
    assert split_location("entry") == ("/", "entry")


def test_the_cache_key_is_the_job_key_below_var_jobs_and_back():
    key = job_key_for("Baking", "whisk_eggs", "Default")
    assert cache_key_of(key) == "Baking/whisk_eggs/Default"
    assert job_key_of(cache_key_of(key)) == key
    with pytest.raises(UnsafePathError, match=r"'tmp/x' is not a job key: job keys start with 'var/jobs/'"):
        cache_key_of("tmp/x")
    assert job_key_of("Baking/whisk_eggs") is None  # not <Workflow>/<task>/<name>
    assert job_key_of("../Baking/whisk_eggs/Default") is None  # would leave the root
    assert job_key_of("6f1c0e2a-random-prefect-key") is None
