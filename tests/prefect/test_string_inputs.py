"""A ``str`` input is its text by default; ``ruby_strings=True`` takes Ruby's ``:string`` rule (docs/prefect.md).

By default a key never depends on what the working directory holds: ``pick(split="valid")`` keeps its job when a
``./valid/`` folder appears, and a report task that creates its own ``out_dir`` is cached from the second run on.
With ``ruby_strings=True`` (tasks mirroring Ruby's, reusing its jobs) a str naming an existing file or folder is
read by content, exactly as Ruby's ``Workflow#job``.  Inputs typed as paths are read by content in both modes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from prefect_scout import scout_task

RAN: list[str] = []


def _pick(split: str = "train") -> str:
    RAN.append("pick")
    return f"rows of {split}"


def _report(out_dir: str = "reports") -> str:
    RAN.append("report")
    Path(out_dir).mkdir(exist_ok=True)
    (Path(out_dir) / "summary.txt").write_text("42 rows\n")
    return out_dir


@scout_task(type="string")
def count(data: Path) -> str:
    RAN.append("count")
    return str(len(data.read_text().split()))


TASKS = {
    "default": (scout_task(_pick, type="string", name="pick"), scout_task(_report, type="string", name="report")),
    "ruby": (
        scout_task(_pick, type="string", name="pick", ruby_strings=True),
        scout_task(_report, type="string", name="report", ruby_strings=True),
    ),
}


def flows(mode: str):
    pick, report = TASKS[mode]

    @flow(name=f"Strings_{mode}")
    def picking(split: str) -> str:
        return pick(split)

    @flow(name=f"Strings_{mode}")
    def reporting(out_dir: str) -> str:
        return report(out_dir)

    return picking, reporting


@flow(name="Counting")
def counting(data: Path) -> str:
    return count(data)


def jobs(root: Path, mode: str, task: str) -> list[str]:
    folder = root / "var/jobs" / f"Strings_{mode}" / task
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".info")) if folder.exists() else []


@pytest.mark.parametrize("mode", ["default", "ruby"])
def test_a_folder_appearing_in_the_working_directory(mode, scout_root, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    picking, _ = flows(mode)
    RAN.clear()
    assert picking("valid") == "rows of valid"
    (work / "valid").mkdir()
    (work / "valid" / "part-0.csv").write_text("a,b\n")
    assert picking("valid") == "rows of valid"
    names = jobs(scout_root, mode, "pick")
    if mode == "default":
        assert RAN == ["pick"] and len(names) == 1  # the same job: cached
    else:
        assert RAN == ["pick", "pick"] and len(names) == 2  # Ruby: the folder's content is now part of the key
    assert all(n.startswith("Default_") for n in names)


@pytest.mark.parametrize("mode", ["default", "ruby"])
def test_a_task_creating_its_own_output_folder(mode, scout_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, reporting = flows(mode)
    RAN.clear()
    for _ in range(3):
        assert reporting("out") == "out"
    names = jobs(scout_root, mode, "report")
    if mode == "default":
        assert RAN == ["report"] and len(names) == 1  # cached from the second run on
    else:
        assert RAN == ["report", "report"]  # Ruby: the folder the first run made changes the second run's key
        assert len(names) == 2


def test_inputs_typed_as_paths_are_read_by_content(scout_root, tmp_path):
    data = tmp_path / "table.txt"
    data.write_text("a b c")
    RAN.clear()
    assert counting(data) == "3"
    assert counting(data) == "3"
    data.write_text("a b c d")
    assert counting(data) == "4"
    assert RAN == ["count", "count"]
