"""``scout-persist clean JOB [--recursive] [--downstream] [--dry-run]`` (issue 17 item 3)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from scout_persist.cli import main
from scout_persist.info import dumps_info, hostname, ruby_time

BLUEBERRY = "var/jobs/Baking/bake_muffin_tray/Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"
BATTER = "var/jobs/Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2"
EGGS = "var/jobs/Baking/whisk_eggs/Blueberry muffin"


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def jobs(root) -> set[str]:
    """Every job left: a .info, a result or a .files folder."""
    out = set()
    for p in (root / "var/jobs").rglob("*"):
        rel = p.relative_to(root).as_posix()
        if rel.endswith(".info"):
            out.add(rel[:-5])
        elif rel.endswith(".files"):
            out.add(rel[:-6])
        elif p.is_file() and ".files/" not in rel:
            out.add(rel)
    return out


@pytest.fixture
def root(relocated_jobs):
    files = relocated_jobs / f"{BLUEBERRY}.files"
    files.mkdir()
    (files / "plot.txt").write_text("x")
    return relocated_jobs


def test_one_job_dry_run_then_remove(root, capsys):
    before = jobs(root)
    rc, out, err = run(capsys, "clean", str(root / BLUEBERRY), "--dry-run")
    assert rc == 0 and out.splitlines() == [f"would remove  done     {out.split()[3]:>7}  {BLUEBERRY[9:]}"]
    assert jobs(root) == before and "dry run: nothing removed" in err
    rc, out, err = run(capsys, "clean", str(root / BLUEBERRY))
    assert rc == 0 and out.startswith("removed  done") and "clean: 1 jobs" in err
    assert before - jobs(root) == {BLUEBERRY}
    for suffix in ("", ".info", ".files"):
        assert not os.path.lexists(root / f"{BLUEBERRY}{suffix}")


def test_recursive_removes_the_dependencies(root, capsys):
    before = jobs(root)
    rc, out, _ = run(capsys, "clean", str(root / BLUEBERRY), "--recursive")
    assert rc == 0 and [line.split("  ")[-1] for line in out.splitlines()] == [BLUEBERRY[9:], BATTER[9:], EGGS[9:]]
    assert before - jobs(root) == {BLUEBERRY, BATTER, EGGS}


def test_downstream_removes_the_dependants(root, capsys):
    before = jobs(root)
    rc, out, _ = run(capsys, "clean", str(root / EGGS), "--downstream", "--dry-run")
    assert rc == 0 and [line.split("  ")[-1] for line in out.splitlines()] == [
        BLUEBERRY[9:],
        BATTER[9:],
        EGGS[9:],
    ]  # dependants first: nobody is left pointing at a removed job
    assert jobs(root) == before
    run(capsys, "clean", str(root / EGGS), "--downstream")
    assert before - jobs(root) == {BLUEBERRY, BATTER, EGGS}


def test_job_as_a_key_under_the_variable(root, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run(capsys, "clean", "Baking/whisk_eggs/cross")
    assert rc == 0 and out.rstrip().endswith("Baking/whisk_eggs/cross")
    assert not (root / "var/jobs/Baking/whisk_eggs/cross").exists()


def test_bad_arguments_say_what_to_do(root, capsys):
    rc, _, err = run(capsys, "clean", str(root / "var/jobs/Baking/whisk_eggs/nothing"))
    assert rc == 2 and "no job at" in err and "nothing" in err and "scout-persist ls" in err
    rc, _, err = run(capsys, "clean", str(root / BLUEBERRY), "-s", "error")
    assert rc == 2 and "-s select the jobs of a Scout root and do not combine with a JOB" in err
    rc, _, err = run(capsys, "clean", str(root), "--recursive")
    assert rc == 2 and "--recursive and --downstream remove the dependencies or dependants of one JOB" in err
    rc, _, err = run(capsys, "clean", str(root / "var/jobs/Baking/whisk_eggs"))
    assert rc == 2 and "is not a job: jobs are <root>/var/jobs/<Workflow>/<task>/<name>" in err
    rc, _, err = run(capsys, "clean", str(root / "var/jobs/InputCases/int_task/dir"))
    assert rc == 2 and "is a folder of jobs, not a job" in err
    assert (root / BLUEBERRY).exists()


def test_a_running_job_is_refused(root, capsys):
    info_path = root / f"{BATTER}.info"
    info = json.loads(info_path.read_bytes())
    info.update(status="start", pid=os.getpid(), pid_hostname=hostname(), issued=ruby_time())
    info_path.write_bytes(dumps_info(info))
    before = jobs(root)
    rc, out, err = run(capsys, "clean", str(root / BLUEBERRY), "--recursive")
    assert rc == 1 and out == ""
    assert (
        f"refusing to clean {str(root / BATTER)!r}: it is running (status 'start': its pid {os.getpid()} is "
        f"running on this host ({hostname()}))"
    ) in err
    assert "clean: nothing removed" in err and jobs(root) == before


def test_a_job_whose_lock_is_held_is_refused(root, capsys):
    code = (
        "import time; from scout_persist.store import Store; from scout_persist.locks import Lock; "
        "from scout_persist.layout import lock_key_for; "
        f"s = Store({str(root)!r}); Lock(s, lock_key_for(s.path({EGGS!r}))).acquire(); print('held', flush=True); "
        "time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, out, err = run(capsys, "clean", str(root / EGGS))
    finally:
        holder.kill()
        holder.wait()
    assert rc == 1 and f"it is running (its job lock is held by host {socket.gethostname()} pid {holder.pid})" in err
    assert (root / EGGS).exists()


def test_published_job_is_kept_unless_asked(root, capsys):
    from scout_persist.job import Job
    from scout_persist.registry import Registry

    Registry(str(root)).log_job("eggs", Job(str(root / EGGS)))
    rc, _, err = run(capsys, "clean", str(root / EGGS))
    assert rc == 2 and "is kept: it is pinned or published in the artifact registry" in err and "--no-registry" in err
    rc, out, err = run(capsys, "clean", str(root / BATTER), "--recursive")
    assert rc == 0 and out.count("removed") == 1 and f"kept {EGGS[9:]}: pinned or published" in err
    rc, out, _ = run(capsys, "clean", str(root / EGGS), "--no-registry")
    assert rc == 0 and not (root / EGGS).exists()


def test_nothing_outside_the_store_root_is_removed(root, tmp_path, capsys):
    """A dependency under another root that still exists, and a plain file dependency, are named and kept."""
    other = tmp_path / "other_root"
    other_job = other / "var/jobs/Baking/whisk_eggs/elsewhere"
    other_job.parent.mkdir(parents=True)
    other_job.write_text("eggs")
    other_job.with_name("elsewhere.info").write_bytes(dumps_info({"status": "done", "type": "string"}))
    plain = tmp_path / "input.txt"
    plain.write_text("data")
    info_path = root / f"{BATTER}.info"
    info = json.loads(info_path.read_bytes())
    info["dependencies"] = [str(other_job), str(plain)]
    info_path.write_bytes(dumps_info(info))
    rc, out, err = run(capsys, "clean", str(root / BLUEBERRY), "--recursive")
    assert rc == 0 and out.count("removed") == 2
    assert f"kept {other_job}: not a job of the store {str(root)!r}" in err
    assert f"kept {plain}: not a job of the store" in err
    assert other_job.exists() and other_job.with_name("elsewhere.info").exists() and plain.exists()
