"""CLI rough edges of issue 17 item 5: addressing, non-job paths, plots, damaged .info, ls columns.

(write_info on an existing key without -f: tests/test_cli_write_info.py.)
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET

import pytest

from scout_persist.cli import main

CHAIN = "var/jobs/DepCases/chain/chain_3c1417e9aa4886ec1db13351da3fd99d"


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def svg_texts(path) -> list[str]:
    return [el.text or "" for el in ET.parse(path).getroot().iter() if el.tag.endswith("text")]


def test_missing_job_under_a_relative_root_is_named_once(relocated_jobs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCOUT_PERSIST_URL", "store")
    for arg in ("store/var/jobs/W/t/none", "W/t/none", "var/jobs/W/t/none"):
        rc, _, err = run(capsys, "info", arg)
        assert rc == 2 and f"no job at '{tmp_path}/store/var/jobs/W/t/none'" in err, (arg, err)
        assert "jobs/store" not in err


@pytest.mark.parametrize("command", ["prov", "info"])
def test_a_task_or_workflow_folder_is_not_a_job(relocated_jobs, capsys, command):
    root = relocated_jobs
    rc, out, err = run(capsys, command, str(root / "var/jobs/Baking/whisk_eggs"))
    assert rc == 2 and out == ""
    assert f"'{root}/var/jobs/Baking/whisk_eggs' is a task folder, not a job" in err
    assert f"scout-persist ls '{root}' -w 'Baking' -t 'whisk_eggs' lists them" in err
    rc, _, err = run(capsys, command, str(root / "var/jobs/Baking"))
    assert rc == 2 and "is a workflow folder, not a job" in err
    rc, _, err = run(capsys, command, str(root / "var/jobs/InputCases/int_task/dir"))  # holds the job 'dir/sub name'
    assert rc == 2 and "is a folder without a .info, not a job" in err


def test_prov_plot_shows_the_inputs_asked_for(relocated_jobs, tmp_path, capsys):
    svg = tmp_path / "chain.svg"
    assert run(capsys, "prov", "-i", "n,factor", "-if", "type", str(relocated_jobs / CHAIN), "--plot", str(svg))[0] == 0
    texts = svg_texts(svg)
    assert texts.count("n=4") == 3 and texts.count("factor=3") == 1 and texts.count("type='integer'") == 3
    plain = tmp_path / "plain.svg"
    run(capsys, "prov", str(relocated_jobs / CHAIN), "--plot", str(plain))
    assert not any(t.startswith(("n=", "factor=")) for t in svg_texts(plain))


def _fan_in(root, n: int) -> str:
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    store = Store(str(root))
    deps = []
    for i in range(n):
        key = (
            f"var/jobs/Survey/load_chunk/chunk of the survey data set number {i:02d}_"
            f"{hashlib.md5(str(i).encode()).hexdigest()}"
        )
        w = JobWriter(store, key, type="string")
        w.setup(inputs=[i], input_names=["n"])
        w.start()
        w.save(f"chunk {i}")
        w.done()
        deps.append(store.path(key))
    w = JobWriter(store, "var/jobs/Survey/merge/Default", type="string")
    w.setup(inputs=[], input_names=[], dependencies=deps)
    w.start()
    w.save("merged")
    w.done()
    return store.path("var/jobs/Survey/merge/Default")


@pytest.mark.parametrize("n", [30, 200])
def test_wide_fan_in_plot_is_readable_and_bounded(tmp_path, capsys, n):
    from PIL import Image

    job = _fan_in(tmp_path / "root", n)
    png, svg = tmp_path / "fan.png", tmp_path / "fan.svg"
    assert run(capsys, "prov", job, "--plot", str(png))[0] == 0
    with Image.open(png) as im:
        assert im.width <= 16 * 110 and im.height <= 22 * 110  # bounded, whatever the graph
        if n == 30:
            assert im.height > 600 and im.width / im.height < 3  # wrapped rows, not a 10 000 px strip
    run(capsys, "prov", job, "--plot", str(svg))
    labels = [t for t in svg_texts(svg) if "number" in t]
    assert len(labels) == n and len(set(labels)) == n  # every box says which chunk it is
    assert all(re.fullmatch(r"…[a-z ]+number \d+", t) for t in labels), labels[:3]
    assert not any(re.search(r"[0-9a-f]{8}", t) for t in svg_texts(svg))  # the md5s tell a reader nothing


def test_damaged_info_says_why_and_exits_non_zero(relocated_jobs, capsys):
    job = relocated_jobs / "var/jobs/Baking/whisk_eggs/Normal muffin"
    info = job.with_name("Normal muffin.info")
    info.write_bytes(info.read_bytes()[:40])
    for argv in (["info", "--nocolor", str(job)], ["info", "--json", str(job)], ["info", "-i", str(job)]):
        rc, out, err = run(capsys, *argv)
        assert rc == 2, argv
        assert f"info file '{job}.info' is neither Scout JSON nor a Ruby Marshal Hash: not JSON" in err
        assert f"`scout-persist clean '{job}'` removes it so that it is computed again" in err
    rc, out, err = run(capsys, "info", str(relocated_jobs / "var/jobs/Baking/whisk_eggs/cross"))
    assert rc == 0 and err == ""


def test_ls_status_column_fits_forced_statuses(relocated_jobs, capsys):
    rc, out, _ = run(capsys, "ls", "-l", "-w", "Baking", str(relocated_jobs))
    lines = out.splitlines()
    assert any(line.startswith("forced_status  ") for line in lines)
    assert len({line.index("Baking/") for line in lines}) == 1


BLUEBERRY = "var/jobs/Baking/bake_muffin_tray/Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"


def test_prov_plot_labels_carry_no_md5_even_for_a_job_alone_in_its_task(relocated_jobs, tmp_path, capsys):
    svg = tmp_path / "baking.svg"
    assert run(capsys, "prov", str(relocated_jobs / BLUEBERRY), "--plot", str(svg))[0] == 0
    boxes = [t for t in svg_texts(svg) if t.startswith("Blueberry muffin")]
    assert boxes == ["Blueberry muffin"] * 3, boxes  # whisk_eggs, prepare_batter, bake_muffin_tray
    assert not [t for t in svg_texts(svg) if re.search(r"[0-9a-f]{5}…|…[0-9a-f]{5}", t)]


def test_an_edge_across_rows_runs_in_a_lane_clear_of_every_box():
    from scout_persist.cli.plot import route

    box_w = 3.4
    between = [-8.0, -4.0, 0.0, 4.0, 8.0]  # a full row of boxes between the two ends
    points = route((0.0, 0.0), (4.0, -6.0), between, box_w, below_start=-1.0, above_end=-5.0)
    assert points[0] == (0.0, 0.0) and points[-1] == (4.0, -6.0)
    lane = points[2][0]
    assert points[2][0] == points[3][0] and points[2][1] == -1.0 and points[3][1] == -5.0  # a vertical lane
    assert all(abs(lane - x) > box_w / 2 for x in between), lane  # which no box of the rows on the way covers
    assert route((0.0, 0.0), (1.0, -2.0), [], box_w) == [(0.0, 0.0), (1.0, -2.0)]  # adjacent rows: straight


def test_a_wrapped_fan_in_routes_its_edges_around_the_lower_rows(tmp_path, capsys, monkeypatch):
    from scout_persist.cli import plot as plot_module

    routed: list[list[float]] = []
    real = plot_module.route

    def spy(start, end, between, box_w, **kw):
        points = real(start, end, between, box_w, **kw)
        if between:
            lane = points[2][0]
            assert all(abs(lane - x) > box_w / 2 for x in between), (lane, between)
            routed.append(between)
        return points

    monkeypatch.setattr(plot_module, "route", spy)
    job = _fan_in(tmp_path / "root", 30)
    assert run(capsys, "prov", job, "--plot", str(tmp_path / "fan.png"))[0] == 0
    assert routed  # the edges of the upper rows of the 30 loads were routed past the rows below them
