"""prov --json/--dot/--plot, ls, clean, gc, verify, info --why and addressing (paths, URLs, SCOUT_PERSIST_URL)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from scout_persist.cli import main
from scout_persist.info import dumps_info, hostname, ruby_time
from scout_persist.store import Store

BLUEBERRY = "var/jobs/Baking/bake_muffin_tray/Blueberry muffin_9aff92f61c19901acf7966542a2f3a2f"
CHAIN = "var/jobs/DepCases/chain/chain_3c1417e9aa4886ec1db13351da3fd99d"
ERRORS = {
    "DepCases/failing_dep/Default",
    "DepCases/maybe_fail/Default_495d8c435284bdaf9ea92943466203d8",
    "ReturnCases/ret_error/Default",
    "ReturnCases/ret_error/cli_error",
    "ReturnCases/ret_runtime_error/Default",
}


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def root(relocated_jobs):
    """The fixture tree with equal mtimes (a git checkout leaves arbitrary ones)."""
    for dirpath, dirs, files in os.walk(relocated_jobs):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return relocated_jobs


# -- prov exports ---------------------------------------------------------------------------------
def test_prov_json_is_the_tree(root, capsys):
    rc, out, _ = run(capsys, "prov", "--json", str(root / BLUEBERRY))
    tree = json.loads(out)
    assert rc == 0 and tree["task"] == "bake_muffin_tray" and tree["status"] == "done"
    batter = tree["dependencies"][0]
    assert batter["task"] == "prepare_batter"
    assert batter["dependencies"][0]["task"] == "whisk_eggs"
    assert batter["dependencies"][0]["path"] == str(root / "var/jobs/Baking/whisk_eggs/Blueberry muffin")


def test_prov_dot_has_nodes_edges_and_status_colours(root, capsys):
    rc, out, _ = run(capsys, "prov", "--dot", str(root / "var/jobs/DepCases/failing_dep/Default"))
    assert rc == 0 and out.startswith("digraph provenance {")
    assert out.count("->") == 1
    assert out.count('fillcolor="#e06c75"') == 2  # both jobs are in error: red


def test_prov_plot_png_and_svg(root, tmp_path, capsys):
    from PIL import Image

    png, svg = tmp_path / "baking.png", tmp_path / "baking.svg"
    assert run(capsys, "prov", str(root / BLUEBERRY), "--plot", str(png))[0] == 0
    assert run(capsys, "prov", str(root / BLUEBERRY), "--plot", str(svg))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.width >= 300 and im.height >= 300
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20  # text, boxes, arrows: not a blank canvas
    green = sum(n for n, rgb in colours if rgb == (0xB5, 0xE3, 0xA1))
    assert green > 1000  # three 'done' boxes
    tree = ET.parse(svg)
    assert tree.getroot().tag.endswith("svg")
    assert svg.read_text().count("<path") >= 3


def test_prov_plot_rejects_unknown_extension(root, tmp_path, capsys):
    rc, _, err = run(capsys, "prov", str(root / BLUEBERRY), "--plot", str(tmp_path / "x.gif"))
    assert rc == 2 and ".gif" in err and ".png" in err
    assert not (tmp_path / "x.gif").exists()


def test_prov_marks_missing_and_unsync(root, capsys):
    (root / "var/jobs/Baking/whisk_eggs/Blueberry muffin").unlink()  # done without result -> unsync
    batter = root / "var/jobs/Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2.info"
    info = json.loads(batter.read_bytes())
    info["dependencies"].append("/gone/var/jobs/Baking/whisk_eggs/nowhere")
    batter.write_bytes(dumps_info(info))
    rc, out, _ = run(capsys, "prov", "--nocolor", str(root / BLUEBERRY))
    lines = out.splitlines()
    assert lines[0].startswith("  unsync Baking whisk_eggs ")
    assert lines[1] == f"  missing Baking whisk_eggs {root}/var/jobs/Baking/whisk_eggs/nowhere"


def test_prov_missing_job_is_an_error(tmp_path, capsys):
    rc, _, err = run(capsys, "prov", str(tmp_path / "var/jobs/W/t/none"))
    assert rc == 2 and "no job at" in err


# -- ls ---------------------------------------------------------------------------------------------
def test_ls_lists_every_job_without_reading_info(root, capsys, monkeypatch):
    import scout_persist.cli.jobs as jobs

    def boom(ref):
        raise AssertionError(f"ls read {ref.info_key} without a status filter")

    monkeypatch.setattr(jobs, "load_info", boom)
    rc, out, err = run(capsys, "ls", str(root), "--json")
    rows = json.loads(out)
    names = {f"{r['workflow']}/{r['task']}/{r['name']}" for r in rows}
    assert rc == 0 and len(rows) == len(names) > 150
    assert "InputCases/int_task/dir/sub name" in names  # a job name with '/' (name_slash)
    assert "InputCases/int_task/.hidden" in names
    assert all(r["size"] > 0 for r in rows)


def test_ls_filters_by_workflow_task_status_and_age(root, capsys):
    rc, out, _ = run(capsys, "ls", str(root), "-w", "Baking", "-t", "whisk_*", "--json")
    rows = json.loads(out)
    assert {r["task"] for r in rows} == {"whisk_eggs"} and len(rows) == 7
    rc, out, _ = run(capsys, "ls", str(root), "-s", "error")
    assert {
        line.split()[-1] if " " not in line.split("  ")[-1] else line.split("  ")[-1] for line in out.splitlines()
    } == ERRORS
    newest = root / "var/jobs/Baking/whisk_eggs/cross"
    os.utime(newest, None)
    rc, out, _ = run(capsys, "ls", str(root), "--newer-than", "1h")
    assert out.splitlines() == [out.splitlines()[0]] and out.rstrip().endswith("Baking/whisk_eggs/cross")
    rc, out, _ = run(capsys, "ls", str(root), "--older-than", "1000000")
    assert out == ""


def test_ls_progress_bar_on_request(root, capsys):
    rc, _, err = run(capsys, "ls", str(root), "--progress")
    assert rc == 0 and "ls [" in err and "jobs" in err and "\r" in err
    rc, _, err = run(capsys, "ls", str(root))
    assert "ls [" not in err  # stderr is not a terminal here


def test_ls_bad_age_is_an_error(root, capsys):
    rc, _, err = run(capsys, "ls", str(root), "--older-than", "soon")
    assert rc == 2 and "'soon'" in err and "12h" in err


# -- clean / gc -------------------------------------------------------------------------------------
def _jobs(root) -> set[str]:
    return {p.relative_to(root / "var/jobs").as_posix()[:-5] for p in (root / "var/jobs").rglob("*.info")}


def test_clean_dry_run_then_remove_errors(root, capsys):
    before = _jobs(root)
    rc, out, _ = run(capsys, "clean", str(root), "--dry-run")
    assert rc == 0 and out.count("would remove") == len(ERRORS)
    assert _jobs(root) == before
    rc, out, _ = run(capsys, "clean", str(root))
    assert before - _jobs(root) == ERRORS
    assert not (root / "var/jobs/ReturnCases/ret_error/Default").exists()


def test_clean_older_than_keeps_pinned_dependencies(root, capsys):
    recent = root / "var/jobs/Baking/whisk_eggs/cross"
    os.utime(recent, None)
    rc, out, _ = run(capsys, "clean", str(root), "--older-than", "1", "-w", "Baking", "--pin", str(root / BLUEBERRY))
    left = {j for j in _jobs(root) if j.startswith("Baking/")}
    assert left == {
        BLUEBERRY[len("var/jobs/") :],
        "Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2",
        "Baking/whisk_eggs/Blueberry muffin",
        "Baking/whisk_eggs/cross",
    }


def test_clean_never_removes_running_jobs(root, capsys):
    info_path = root / "var/jobs/ReturnCases/ret_error/Default.info"
    info = json.loads(info_path.read_bytes())
    info["status"] = "start"
    info.update(pid=os.getpid(), pid_hostname=hostname(), issued=ruby_time())  # its writer is alive: this process
    info_path.write_bytes(dumps_info(info))
    run(capsys, "clean", str(root), "-s", "start,error")
    assert info_path.exists()


def test_gc_removes_oldest_until_under_limit(root, capsys):
    rc, out, _ = run(capsys, "ls", str(root), "--json")
    total = sum(r["size"] for r in json.loads(out))
    # make Baking the newest: gc must take everything else first
    for p in (root / "var/jobs/Baking").rglob("*"):
        os.utime(p, None)
    limit = total // 10
    rc, out, err = run(capsys, "gc", str(root), "--max-size", str(limit), "--pin", str(root / CHAIN))
    rc2, out2, _ = run(capsys, "ls", str(root), "--json")
    rows = json.loads(out2)
    assert sum(r["size"] for r in rows) <= limit
    names = {f"{r['workflow']}/{r['task']}/{r['name']}" for r in rows}
    assert "DepCases/base/chain_e0415ca5244b665e3e7b7d876ba1f3d9" in names  # reachable from the pin
    assert "Baking/whisk_eggs/Normal muffin" in names  # newest survive


def test_gc_bad_size_and_bad_pin(root, capsys):
    rc, _, err = run(capsys, "gc", str(root), "--max-size", "lots")
    assert rc == 2 and "'lots'" in err and "500M" in err
    rc, _, err = run(capsys, "gc", str(root), "--max-size", "1M", "--pin", str(root / "var/jobs/W/t/nothing"))
    assert rc == 2 and "pinned job" in err
    assert len(_jobs(root)) > 150


# -- verify -----------------------------------------------------------------------------------------
def _with_checksum(root, rel: str) -> None:
    data = (root / rel).read_bytes()
    info_path = root / f"{rel}.info"
    info = json.loads(info_path.read_bytes())
    info["result"] = {
        "codec": "none",
        "size": len(data),
        "stored_size": len(data),
        "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    info_path.write_bytes(dumps_info(info))


def test_verify_reports_ok_and_mismatch(root, capsys):
    _with_checksum(root, BLUEBERRY)
    rc, out, err = run(capsys, "verify", str(root / BLUEBERRY), "--json")
    report = json.loads(out)
    assert rc == 0 and report["checked"] == 1 and report["failed"] == 0
    (root / BLUEBERRY).write_bytes(b"tampered")
    rc, out, err = run(capsys, "verify", str(root))
    assert rc == 1 and out.startswith("MISMATCH") and "Blueberry muffin" in out
    (root / BLUEBERRY).unlink()
    rc, out, _ = run(capsys, "verify", str(root), "-w", "Baking")
    assert rc == 1 and out.startswith("MISSING")


def test_verify_ruby_jobs_are_unverified_not_failed(root, capsys):
    rc, out, err = run(capsys, "verify", str(root))
    assert rc == 0 and out == "" and "0 checksums" in err


# -- info --why -------------------------------------------------------------------------------------
def test_why_up_to_date_and_changed_inputs(root, capsys):
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN), "-s", "n=4", "-s", "factor=3")
    assert rc == 0 and out.startswith("would be reused: status done, result readable as 'integer'")
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN), "-s", "factor=5")
    assert rc == 1 and "input 'factor' changed: recorded 3, given 5" in out
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN), "-s", "n=7")
    assert "input 'n' changed (an input of a dependency): recorded 4, given 7" in out


def test_why_newer_dependency_and_error_status(root, capsys):
    """Ruby's freshness rule is a note (the plug-in reuses the job, and --why says what a flow does); a dependency
    within prov's slack of 2 s is not even noted (copied and uploaded trees do not keep times exactly)."""
    base = root / "var/jobs/DepCases/base/chain_e0415ca5244b665e3e7b7d876ba1f3d9"
    os.utime(base, (1_700_000_001.5, 1_700_000_001.5))
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN))
    assert rc == 0 and out.startswith("would be reused") and "note:" not in out
    os.utime(base, None)
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN))
    assert rc == 0 and out.startswith("would be reused")
    assert (
        f"note: Ruby Scout would recompute this job: dependency {base} is "
    ) in out and "s newer than its result (more than the 2 s" in out
    rc, out, _ = run(capsys, "info", "--why", str(root / "var/jobs/DepCases/failing_dep/Default"))
    assert rc == 1 and out.startswith("would rerun: status is 'error', not 'done'")
    assert (
        f"note: dependency {root}/var/jobs/DepCases/maybe_fail/Default_495d8c435284bdaf9ea92943466203d8 runs "
        "again first (status is 'error'" in out
    )


def test_why_damaged_result_and_undecided_dependency(root, capsys):
    """A result that fails its checksum is rerun (the plug-in's hit check); a signed job whose dependency runs again
    is reused only if the dependency gives the same bytes, and --why says so instead of guessing."""
    from scout_persist import signature as sig
    from scout_persist.checksums import checksum

    base = root / "var/jobs/DepCases/base/chain_e0415ca5244b665e3e7b7d876ba1f3d9"
    plus = root / "var/jobs/DepCases/plus_one/chain_2f314573b8160c65765ffb42ddbd2958"
    info = json.loads((plus.parent / (plus.name + ".info")).read_bytes())
    info["payload"] = {
        "format": "scout",
        "type": "integer",
        "stored_size": len(plus.read_bytes()),
        "checksum": checksum(plus.read_bytes()),
    }
    info["signature"] = sig.compute(
        {},
        [
            sig.dependency_token(
                "var/jobs/DepCases/base/chain_e0415ca5244b665e3e7b7d876ba1f3d9",
                json.loads((base.parent / (base.name + ".info")).read_bytes()),
                Store(str(root)),
            )
        ],
        "code",
    )
    (plus.parent / (plus.name + ".info")).write_bytes(dumps_info(info))
    rc, out, _ = run(capsys, "info", "--why", str(plus))
    assert rc == 0 and out.startswith("would be reused: status done, result verified, signature unchanged")
    original = plus.read_bytes()
    plus.write_bytes(b"6")
    rc, out, _ = run(capsys, "info", "--why", str(plus))
    assert rc == 1 and out.startswith("would rerun: its result cannot be used (") and "checksum" in out
    plus.write_bytes(original)
    base.unlink()
    rc, out, _ = run(capsys, "info", "--why", str(plus))
    assert rc == 1 and out.startswith(
        f"would rerun unless the dependencies that run again first ({base}) give the same bytes as before"
    )


def test_why_signature_components(root, capsys):
    """--why reads the signature with the core's own algorithm (the plug-in's): per-input digests, dependencies by
    the content of their results, version; an older algorithm is named."""
    from scout_persist import signature as sig

    path = root / f"{CHAIN}.info"
    info = json.loads(path.read_bytes())
    info["signature"] = sig.compute({"factor": 3}, ["var/jobs/other/x=sha256:00"], "code", "1")
    info["prefect"] = {"recomputed_because": ["code: pipeline.scale", "input 'factor'"]}
    path.write_bytes(dumps_info(info))
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN), "-s", "factor=3", "--task-version", "1")
    assert "signature component 'inputs'" not in out  # the same value digests the same as the plug-in's
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN), "-s", "factor=4", "--task-version", "2")
    assert "signature component 'inputs' changes with the given inputs (factor)" in out
    assert "signature component 'dependencies' changed" in out
    assert "signature component 'version' changed: recorded '1', given '2'" in out
    last = out.splitlines()[-1]
    assert (
        last == "note: the last run recomputed this job because of what changed: code: pipeline.scale; input 'factor'"
    )
    info["signature"] = {"inputs": "md5", "source": "s", "version": "1"}  # written by an older plug-in
    path.write_bytes(dumps_info(info))
    rc, out, _ = run(capsys, "info", "--why", str(root / CHAIN))
    assert rc == 1 and "computed by another version of scout-persist" in out


def test_why_unknown_input_is_an_error(root, capsys):
    rc, _, err = run(capsys, "info", "--why", str(root / CHAIN), "-s", "nope=1")
    assert rc == 2 and "'nope'" in err and "factor" in err
    rc, _, err = run(capsys, "info", "--why", str(root / CHAIN), "-s", "factor")
    assert rc == 2 and "NAME=VALUE" in err


# -- addressing -------------------------------------------------------------------------------------
def test_info_json_and_missing_job(root, tmp_path, capsys):
    rc, out, _ = run(capsys, "info", "--json", str(root / BLUEBERRY))
    assert rc == 0 and json.loads(out)["provided_inputs"] == {"add_bluberries": True}
    rc, _, err = run(capsys, "info", str(tmp_path / "var/jobs/W/t/none"))
    assert rc == 2 and "no job at" in err


def test_keys_under_scout_persist_url(root, capsys, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
    monkeypatch.chdir(root.parent)
    rc, out, _ = run(capsys, "prov", "--nocolor", "Baking/bake_muffin_tray/Normal muffin")
    assert (
        rc == 0
        and out.splitlines()[-1]
        == f"done Baking bake_muffin_tray {root}/var/jobs/Baking/bake_muffin_tray/Normal muffin"
    )
    rc, out, _ = run(capsys, "ls", "-w", "Baking", "-t", "bake_*")
    assert rc == 0 and len(out.splitlines()) == 4


def test_memory_url(root, capsys):
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/cli-{os.getpid()}-{time.time_ns()}"
    for rel in (
        "Baking/whisk_eggs/Normal muffin",
        "Baking/prepare_batter/Normal muffin",
        "Baking/bake_muffin_tray/Normal muffin",
    ):
        for suffix in ("", ".info"):
            fs.pipe(f"{base}/var/jobs/{rel}{suffix}", (root / f"var/jobs/{rel}{suffix}").read_bytes())
    url = f"memory://{base}"
    rc, out, _ = run(capsys, "prov", "--nocolor", f"{url}/var/jobs/Baking/bake_muffin_tray/Normal muffin")
    assert rc == 0 and out.splitlines() == [
        f"  done Baking whisk_eggs {url}/var/jobs/Baking/whisk_eggs/Normal muffin",
        f" done Baking prepare_batter {url}/var/jobs/Baking/prepare_batter/Normal muffin",
        f"done Baking bake_muffin_tray {url}/var/jobs/Baking/bake_muffin_tray/Normal muffin",
    ]
    rc, out, _ = run(capsys, "ls", url, "--json", "-l")
    assert [r["status"] for r in json.loads(out)] == ["done"] * 3
    rc, out, _ = run(capsys, "write_info", f"{url}/var/jobs/Baking/whisk_eggs/Normal muffin", "note", "hi")
    assert json.loads(fs.cat(f"{base}/var/jobs/Baking/whisk_eggs/Normal muffin.info"))["note"] == "hi"


@pytest.mark.s3
def test_s3_url(s3_url, root, capsys):
    import fsspec

    fs = fsspec.filesystem("s3")
    bucket_root = s3_url[len("s3://") :]
    for rel in (
        "DepCases/failing_dep/Default",
        "DepCases/maybe_fail/Default_495d8c435284bdaf9ea92943466203d8",
        "Baking/whisk_eggs/cross",
    ):
        for suffix in ("", ".info"):
            src = root / f"var/jobs/{rel}{suffix}"
            if src.exists():
                fs.pipe(f"{bucket_root}/var/jobs/{rel}{suffix}", src.read_bytes())
    rc, out, _ = run(capsys, "prov", "--nocolor", f"{s3_url}/var/jobs/DepCases/failing_dep/Default")
    assert (
        rc == 0 and out.splitlines()[-1] == f"error DepCases failing_dep {s3_url}/var/jobs/DepCases/failing_dep/Default"
    )
    rc, out, _ = run(capsys, "clean", s3_url)
    assert rc == 0 and out.count("removed") == 2
    fs.invalidate_cache()
    rc, out, _ = run(capsys, "ls", s3_url, "--json")
    assert [r["name"] for r in json.loads(out)] == ["cross"]


# -- start-up ---------------------------------------------------------------------------------------
def test_cli_imports_nothing_heavy(root):
    code = (
        "import sys; from scout_persist.cli import main; "
        f"rc = main(['info', '--nocolor', {str(root / BLUEBERRY)!r}]); "
        "sys.stderr.write(repr(sorted(m for m in ('prefect', 's3fs', 'matplotlib', 'boto3') if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"
    assert proc.stdout.startswith("status = 'done'\n")


def test_console_script_runs(root):
    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")
    proc = subprocess.run([exe, "prov", "--nocolor", str(root / CHAIN)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 3


def test_verify_job_written_by_jobwriter(tmp_path, capsys):
    """The record JobWriter keeps for a pickled result is what verify checks."""
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    store = Store(str(tmp_path))
    key = "var/jobs/Py/task/Default"
    w = JobWriter(store, key, workflow="Py", task="task")
    w.setup(inputs=[], input_names=[])
    w.start()
    w.save({"a": [1, 2, 3]}, type="pickle")
    w.done()
    rc, out, _ = run(capsys, "verify", str(tmp_path), "--json")
    report = json.loads(out)
    assert rc == 0 and report["checked"] == 1 and report["results"][0]["status"] == "ok"
    data = bytearray((tmp_path / key).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / key).write_bytes(bytes(data))
    rc, out, _ = run(capsys, "verify", str(tmp_path / key))
    assert rc == 1 and out.startswith("MISMATCH") and "Py/task/Default" in out


def test_prov_refuses_dependency_escaping_the_root(root, capsys):
    info_path = root / f"{CHAIN}.info"
    info = json.loads(info_path.read_bytes())
    info["dependencies"] = ["/x/var/jobs/../../../etc/passwd"]
    info_path.write_bytes(dumps_info(info))
    rc, _, err = run(capsys, "prov", str(root / CHAIN))
    assert rc == 2 and "escapes" in err


def test_colour_and_progress_on_a_terminal(root):
    """On a real terminal (a pty) info is coloured as Ruby's and ls draws its bar, without any flag."""
    import pty

    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")

    def on_tty(*argv) -> bytes:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([exe, *argv], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
        os.close(leader)
        return b"".join(chunks)

    out = on_tty("info", str(root / BLUEBERRY))
    assert b"\x1b[35mstatus\x1b[0m = 'done'" in out
    assert b"\x1b[35m" not in on_tty("info", "--nocolor", str(root / BLUEBERRY))
    out = on_tty("ls", str(root), "-w", "Baking")
    assert b"ls [" in out and b"16 jobs" in out


def test_ls_on_a_folder_without_jobs_is_an_error(tmp_path, capsys):
    rc, out, err = run(capsys, "ls", str(tmp_path / "typo"))
    assert rc == 2 and out == "" and "var/jobs" in err and "SCOUT_PERSIST_URL" in err
    rc, _, err = run(capsys, "clean", str(tmp_path))
    assert rc == 2


def test_truncated_info_reads_as_noinfo_like_ruby(root, capsys):
    info_path = root / "var/jobs/Baking/whisk_eggs/Normal muffin.info"
    info_path.write_bytes(info_path.read_bytes()[:40])
    rc, out, err = run(capsys, "info", "--nocolor", str(root / "var/jobs/Baking/whisk_eggs/Normal muffin"))
    assert rc == 2 and out == "status = 'noinfo'\n"  # Ruby's output; unlike Ruby, a hint and exit 2
    assert "is neither Scout JSON nor a Ruby Marshal Hash" in err and "`scout-persist clean" in err
    rc, out, _ = run(capsys, "prov", "--nocolor", str(root / "var/jobs/Baking/bake_muffin_tray/Normal muffin"))
    assert out.splitlines()[0].startswith("  noinfo Baking whisk_eggs ")
    (root / "var/jobs/Baking/whisk_eggs/Normal muffin").unlink()
    rc, out, _ = run(capsys, "prov", "--nocolor", str(root / "var/jobs/Baking/bake_muffin_tray/Normal muffin"))
    assert out.splitlines()[0].startswith("  notfound Baking whisk_eggs ")


def test_clean_keeps_jobs_published_in_the_registry(root, capsys):
    from scout_persist.job import Job
    from scout_persist.registry import Registry

    Registry(str(root)).log_job("blueberry", Job(str(root / BLUEBERRY)), aliases=["paper"])
    rc, out, _ = run(capsys, "clean", str(root), "--older-than", "1", "-w", "Baking", "--dry-run")
    assert rc == 0 and "Blueberry muffin" not in out and "Normal muffin" in out
    rc, out, _ = run(capsys, "clean", str(root), "--older-than", "1", "-w", "Baking", "--no-registry", "--dry-run")
    assert out.count("Blueberry muffin") == 3  # the job and its two dependencies
    run(capsys, "gc", str(root), "--max-size", "0", "-w", "Baking")
    left = {j for j in _jobs(root) if j.startswith("Baking/")}
    assert left == {
        BLUEBERRY[len("var/jobs/") :],
        "Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2",
        "Baking/whisk_eggs/Blueberry muffin",
    }


def test_clean_skips_a_job_whose_lock_is_held(root, capsys):
    from scout_persist.layout import lock_key_for
    from scout_persist.locks import Lock
    from scout_persist.store import Store

    store = Store(str(root))
    key = "var/jobs/ReturnCases/ret_error/Default"
    with Lock(store, lock_key_for(store.path(key))):
        rc, out, err = run(capsys, "clean", str(root))
    assert rc == 0 and "skipped ReturnCases/ret_error/Default: locked by" in err
    assert (root / f"{key}.info").exists()
    assert out.count("removed") == len(ERRORS) - 1
    assert not list((root / "tmp/persist_locks").glob("*.lock"))  # our own locks are released


def test_info_recursive_inputs_reads_each_info_once(root, capsys, monkeypatch):
    """`info -ri` walks the dependency chain reading every job's .info one time (no second reader of the same file)."""
    from collections import Counter

    from scout_persist.store.local import LocalBackend

    reads: Counter = Counter()
    real_get = LocalBackend.get

    def counting_get(self, key):
        if key.endswith(".info"):
            reads[key] += 1
        return real_get(self, key)

    monkeypatch.setattr(LocalBackend, "get", counting_get)
    rc, out, _ = run(capsys, "info", "-ri", str(root / CHAIN))
    assert rc == 0 and "factor" in out
    assert len(reads) >= 2, reads  # the job and its dependencies
    assert set(reads.values()) == {1}, reads


def test_verify_names_an_unknown_checksum_algorithm(root, capsys):
    _with_checksum(root, BLUEBERRY)
    info_path = root / f"{BLUEBERRY}.info"
    info = json.loads(info_path.read_bytes())
    info["result"]["checksum"] = "md5:" + "0" * 32
    info_path.write_bytes(dumps_info(info))
    rc, _, err = run(capsys, "verify", str(root / BLUEBERRY))
    assert rc == 2 and "'md5'" in err and "blake3 or sha256" in err
