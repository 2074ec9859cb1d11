"""Every job and persist entry Ruby Scout wrote, read from a relocated copy of the tree (all absolute paths stale)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scout_persist import scout_types
from scout_persist.errors import InfoFormatError, JobFailed, JobNotFound
from scout_persist.info import truncate_array
from scout_persist.job import Job
from scout_persist.job_status import derived_status
from scout_persist.layout import clean_name
from scout_persist.rubyvalues import TSV, Symbol

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def ruby_value(v, root: Path, manifest: dict, ruby_fixtures: Path):
    """The Python value scout-persist gives for a manifest-encoded Ruby value, after relocation onto ``root``."""
    prefix = manifest["original_prefix"]
    input_files = str(ruby_fixtures / "input_files")
    if isinstance(v, list):
        return [ruby_value(x, root, manifest, ruby_fixtures) for x in v]
    if isinstance(v, str):
        if v.startswith(prefix):
            return str(root) + "/" + v[len(prefix) :]
        return v.replace("{INPUT_FILES}", input_files) if v.startswith("{INPUT_FILES}") else v
    if not isinstance(v, dict):
        return v
    kind = v.get("__ruby__")
    if kind is None:
        return {k: ruby_value(x, root, manifest, ruby_fixtures) for k, x in v.items()}
    if kind == "Symbol":
        return Symbol(v["value"])
    if kind == "Hash":
        return {
            ruby_value(k, root, manifest, ruby_fixtures): ruby_value(x, root, manifest, ruby_fixtures)
            for k, x in v["pairs"]
        }
    if kind == "Path":
        p = v["path"]
        if p.startswith("{INPUT_FILES}"):
            return p.replace("{INPUT_FILES}", input_files)
        # Paths inside the Scout root are recorded relative to it; other relative paths stay as given
        return str(root) + "/" + p if p.startswith("var/") else p
    if kind == "Step":
        return ruby_value(v["path"], root, manifest, ruby_fixtures)
    if kind == "TSV":
        return TSV(v["key_field"], v["fields"], v["type"], v["data"])
    raise AssertionError(f"unknown manifest encoding {kind}")


def same(a, b) -> bool:
    """Equality that also tells Symbols from Strings (Python's == does not)."""
    if isinstance(a, Symbol) != isinstance(b, Symbol):
        return False
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, TSV) and isinstance(b, TSV):
        return (a.key_field, a.fields, a.type, a.data) == (b.key_field, b.fields, b.type, b.data)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return type(a) is type(b) and a == b


@pytest.fixture
def path_map(ruby_fixtures, manifest):
    return {manifest["locations"]["input_files"]: str(ruby_fixtures / "input_files")}


def test_every_manifest_job_reads_back_relocated(relocated_jobs, manifest, ruby_fixtures, path_map):
    checked = loaded = 0
    dotted: list[str] = []
    root = relocated_jobs
    input_files = str(ruby_fixtures / "input_files")
    for rel, step in manifest["steps"].items():
        if rel.startswith("{INPUT_FILES}"):
            # a plain file that overrode a dependency: reached through its parent below, checked as external
            continue
        job = Job(root / rel, path_map=path_map)
        where = f"{rel}"
        assert job.recorded_status == step["status"], where  # Ruby's Step#status
        ruby_info = {"status": step["status"]} if step["status"] else None
        assert job.status == derived_status(ruby_info, step["result_file_exists"]), where  # as prov shows it
        assert job.key == step["path"], where
        assert job.done == step["result_file_exists"], where
        if step["status"]:
            assert job.workflow == step["workflow"], where
            assert job.task_name == step["task_name"], where
            if job.clean_name != step["clean_name"]:
                # quirk 28: an unhashed id with dots and no type extension cannot be told from an extension;
                # we give Ruby's own re-read answer (cut at the first dot)
                assert job.clean_name == clean_name(job.name) and "." in job.name, where
                dotted.append(rel)
        deps = [d.path if d.external else d.key for d in job.dependencies]
        expected = [d.replace("{INPUT_FILES}", input_files) for d in step["dependencies"]]
        assert deps == expected, where
        for d in job.dependencies:
            assert d.external or d.path == str(root / d.key)
        assert job.files() == sorted(step.get("files", [])), where
        if "result" in step:
            value = job.load()
            want = ruby_value(step["result"], root, manifest, ruby_fixtures)
            if step["type"] == "binary":
                # quirk 19 fixed: raw bytes; Ruby's read dropped every byte >= 0x80
                assert value == (root / rel).read_bytes()
                assert bytes(b for b in value if b < 0x80).decode() == want
            else:
                assert same(value, want), (where, value, want)
            loaded += 1
        elif "result_load_error" in step:
            with pytest.raises(InfoFormatError):
                job.load()
        elif step["status"] == "error":
            with pytest.raises(JobFailed):
                job.load()
        elif step["status"] == "done":
            assert job.load() is None, where  # ret_nil: done without a result file
        else:
            with pytest.raises(JobNotFound):
                job.load()
        checked += 1
    print(f"checked {checked} jobs, loaded {loaded} results; re-read clean names cut at a dot: {dotted}")
    assert len(dotted) <= 1
    assert checked == len(manifest["steps"]) - 1 == 165
    assert loaded == sum("result" in s for s in manifest["steps"].values()) == 158


def test_external_file_dependency_is_reached_through_its_parent(relocated_jobs, manifest, path_map, ruby_fixtures):
    case = next(c for c in manifest["cases"] if c["case"] == "dep_override_file")
    job = Job(relocated_jobs / case["path"], path_map=path_map)
    (dep,) = job.dependencies
    assert dep.external and dep.path == str(ruby_fixtures / "input_files" / "nums.txt")
    assert dep.recorded_status == "" and dep.status == "noinfo" and dep.done
    with pytest.raises(InfoFormatError, match=r"no \.info"):
        dep.load()  # Ruby: JSON::ParserError (no info, so the default serializer)
    nums = (ruby_fixtures / "input_files" / "nums.txt").read_text()
    assert dep.load(type="integer_array") == [int(x) for x in nums.split()]


def test_every_case_inputs_as_ruby_gives_them(relocated_jobs, manifest, ruby_fixtures, path_map):
    checked = 0
    for case in manifest["cases"]:
        if not case.get("status"):
            continue  # job creation failed in Ruby: nothing on disk
        job = Job(relocated_jobs / case["path"], path_map=path_map)
        names = [t["name"] for t in case["task_inputs"]]
        processed = ruby_value(case["processed_inputs"], relocated_jobs, manifest, ruby_fixtures)
        # Ruby stores Symbols as names and truncates arrays of more than 100 items
        want = {n: truncate_array(plain(v)) for n, v in zip(names, processed)}
        assert job.inputs == want, case["case"]
        assert list(job.info) == case["info_keys"], case["case"]
        if case.get("exception_class"):
            exc = job.exception
            assert (exc.class_name, exc.message) == (case["exception_class"], case["exception_message"])
            assert exc.backtrace == job.info["backtrace"]
        checked += 1
    print(f"checked inputs of {checked} cases")
    assert checked >= 140


def plain(v):
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return str(v) if isinstance(v, Symbol) else v


def test_every_persist_cache_entry_loads(ruby_fixtures, manifest):
    root = ruby_fixtures / "scout-jobs"
    for entry in manifest["persist"]:
        path = root / entry["file"]
        value = scout_types.load(path.read_bytes(), entry["type"], path=str(path))
        want = ruby_value(entry["reloaded"], root, manifest, ruby_fixtures)
        assert same(value, want), (entry["case"], value, want)
        # and the bytes Ruby wrote are the bytes we write
        assert scout_types.dump(value, entry["type"]) == path.read_bytes(), entry["case"]
    print(f"loaded {len(manifest['persist'])} persist entries")
    assert len(manifest["persist"]) == 10


def test_fixture_tree_on_a_memory_store(ruby_fixtures, manifest):
    """Any fsspec URL: the same tree under memory:// resolves dependencies and loads results."""
    import fsspec

    fs = fsspec.filesystem("memory")
    base = "/relocated-tree"
    src = ruby_fixtures / "scout-jobs" / "var" / "jobs" / "Baking"
    for dirpath, _dirs, files in os.walk(src):
        for f in files:
            full = Path(dirpath) / f
            fs.pipe(f"{base}/var/jobs/Baking/{full.relative_to(src).as_posix()}", full.read_bytes())
    try:
        case = next(c for c in manifest["cases"] if c["case"] == "baking_blueberry")
        job = Job(f"memory://{base}/{case['path']}")
        assert job.status == "done"
        assert job.load() == manifest["steps"][case["path"]]["result"]
        (dep,) = job.dependencies
        assert (
            dep.path
            == f"memory://{base}/var/jobs/Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2"
        )
        assert dep.inputs == {"add_bluberries": True}
        assert [d.task_name for d in dep.dependencies] == ["whisk_eggs"]
    finally:
        fs.rm(base, recursive=True)
