"""write_info replays Ruby's captured sequence byte for byte, plus -r/-p and the failure paths."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from scout_persist.cli import main
from scout_persist.info import dumps_info

RUBY_FIXTURES = Path(__file__).resolve().parent / "data" / "ruby-scout"  # read-only ground truth
CLI = RUBY_FIXTURES / "cli"
JOB = "var/jobs/Baking/bake_muffin_tray/write info muffin"
DEPS = ("var/jobs/Baking/prepare_batter/write info muffin", "var/jobs/Baking/whisk_eggs/write info muffin")
# the order of §11.4 (the captures are named, not numbered)
SEQUENCE = ("write_info_note", "write_info_note_again", "write_info_force", "write_info_recursive", "write_info_delete")


def _argv(name, root):
    words = shlex.split((CLI / f"{name}.cmd").read_text())
    return [w.replace("{SCOUT_ROOT}/", f"{root}/") for w in words[2:]]


@pytest.fixture
def before(relocated_jobs):
    """The fixture tree with the job's .info as it was before the first write_info, and no 'owner' on its deps."""
    root = relocated_jobs
    (root / f"{JOB}.info").write_bytes((CLI / "write_info_before.info.json").read_bytes())
    for dep in DEPS:
        info = json.loads((root / f"{dep}.info").read_bytes())
        assert info.pop("owner") == "tester"
        (root / f"{dep}.info").write_bytes(dumps_info(info))
    return root


# Divergence from Ruby (issue 17 item 5): a key already set, without -f, is reported and exits 1 (Ruby: silent 0).
NOT_FORCED = "write_info_note_again"


def test_replays_ruby_sequence_byte_for_byte(before, capsys):
    for name in SEQUENCE:
        rc = main(_argv(name, before))
        out, err = capsys.readouterr()
        assert rc == (1 if name == NOT_FORCED else int((CLI / f"{name}.rc").read_text()))
        assert out == (CLI / f"{name}.stdout").read_text()
        if name == NOT_FORCED:
            assert f"'note' is already set in the .info of {str(before / JOB)!r} (to 'added by CLI')" in err
            assert "pass -f to replace it" in err
    assert (before / f"{JOB}.info").read_bytes() == (CLI / "write_info_after.info.json").read_bytes()
    for dep in DEPS:
        fixture = (RUBY_FIXTURES / "scout-jobs" / f"{dep}.info").read_bytes()
        assert (before / f"{dep}.info").read_bytes() == fixture


def test_not_forced_keeps_existing_value(before, capsys):
    path = before / f"{JOB}.info"
    assert main(["write_info", str(before / JOB), "type", "other"]) == 1
    assert "'type' is already set" in capsys.readouterr().err
    assert json.loads(path.read_bytes())["type"] == "string"
    assert main(["write_info", "-f", str(before / JOB), "type", "other"]) == 0
    info = json.loads(path.read_bytes())
    assert info["type"] == "other" and list(info)[-1] == "type"


def test_list_value_gets_appended(before):
    path = before / f"{JOB}.info"
    main(["write_info", "-f", str(before / JOB), "dependencies", "/x/var/jobs/W/t/extra"])
    deps = json.loads(path.read_bytes())["dependencies"]
    assert deps[-1] == "/x/var/jobs/W/t/extra" and len(deps) == 2


def test_map_value_fails_without_touching_the_file(before, capsys):
    path = before / f"{JOB}.info"
    original = path.read_bytes()
    assert main(["write_info", "-f", str(before / JOB), "provided_inputs", "x"]) == 2
    assert "provided_inputs" in capsys.readouterr().err
    assert path.read_bytes() == original


def test_recursive_skips_other_hosts_and_check_pid_compares_numbers(before):
    dep_path = before / f"{DEPS[0]}.info"
    info = json.loads(dep_path.read_bytes())
    info["pid_hostname"] = "elsewhere"
    dep_path.write_bytes(dumps_info(info))
    main(["write_info", "-r", str(before / JOB), "team", "a"])
    assert "team" not in json.loads(dep_path.read_bytes())
    assert json.loads((before / f"{DEPS[1]}.info").read_bytes())["team"] == "a"
    # -p: Ruby compares a String pid with an Integer and never matches; we compare the numbers
    main(["write_info", "-r", "-p", str(before / JOB), "crew", "b"])
    assert json.loads((before / f"{DEPS[1]}.info").read_bytes())["crew"] == "b"


def test_recursive_reports_dependencies_left_alone(before, capsys):
    main(["write_info", "-f", str(before / DEPS[1]), "team", "old"])
    capsys.readouterr()
    assert main(["write_info", "-r", str(before / JOB), "team", "new"]) == 0
    err = capsys.readouterr().err
    assert (
        f"'team' is already set in 1 dependencies, left as they are (pass -f to replace it): {before / DEPS[1]}" in err
    )
    assert json.loads((before / f"{DEPS[1]}.info").read_bytes())["team"] == "old"
    assert json.loads((before / f"{DEPS[0]}.info").read_bytes())["team"] == "new"


def test_missing_job_is_an_error_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "var/jobs/W/t/none"
    assert main(["write_info", str(target), "k", "v"]) == 2
    assert "no .info" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.info"))


def test_info_rewrites_never_revert_a_concurrent_writer(tmp_path):
    """#12 item 6: a rewrite goes through the job's lock (local) or a conditional write (object stores)."""
    from scout_persist.errors import LockTimeout
    from scout_persist.info import dumps_info, loads_info
    from scout_persist.job import JobWriter
    from scout_persist.layout import lock_key_for
    from scout_persist.lease import rewrite_info
    from scout_persist.locks import Lock
    from scout_persist.store import Store

    key = "var/jobs/W/t/Default"
    local = Store(str(tmp_path / "root"))
    JobWriter(local, key, type="text").run(lambda: "x")
    running = Lock(local, lock_key_for(local.path(key)))
    assert running.acquire(timeout=0)  # a writer of the job holds its lock
    with pytest.raises(LockTimeout):
        rewrite_info(local, key, lambda info: info.data.update(note="late") or True, timeout=0.3)
    running.release()
    assert rewrite_info(local, key, lambda info: info.data.update(note="now") or True)
    assert loads_info(local.get(key + ".info"))["note"] == "now"

    memory = Store("memory://rewrite-info-race")
    JobWriter(memory, key, type="text").run(lambda: "x")
    calls = []

    def change(info):
        calls.append(1)
        if len(calls) == 1:  # another writer finishes the job between our read and our write
            current = loads_info(memory.get(key + ".info"))
            current["status"] = "done-by-other"
            memory.put(key + ".info", dumps_info(current))
        info.data["note"] = "mine"
        return True

    assert rewrite_info(memory, key, change)
    final = loads_info(memory.get(key + ".info"))
    assert len(calls) == 2 and final["status"] == "done-by-other" and final["note"] == "mine"
    memory.delete("", recursive=True)
