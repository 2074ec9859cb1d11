"""The scan behind ls/clean/gc (issue 16 item 3): the fast paths give exactly what the slow ones gave.

No timing here (bench/bench_ls.py measures); these pin the answers: plain rows equal JobEntry sizes and mtimes,
a status filter that reads only .info heads agrees with a full parse, and a listing split across two processes
prints the same lines as one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from scout_persist.cli import main
from scout_persist.cli.scan import quick_status, rows, scan
from scout_persist.info import dumps_info
from scout_persist.store import Store


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_plain_rows_equal_job_entries(relocated_jobs):
    store = Store(str(relocated_jobs))
    entries = {(j.workflow, j.task, j.name): (j.size, j.mtime) for j in scan(store)}
    plain = {(w, t, n): (size, m) for batch in rows(store) for w, t, n, size, m in batch}
    assert plain == entries and len(plain) > 150
    assert ("InputCases", "int_task", "dir/sub name") in plain  # a job name with '/'


def test_quick_status_is_only_certain_when_it_is():
    assert quick_status(b'{"status":"done","pid":1}') == "done"
    assert quick_status(b'{"pid":1,"status":"done"}') is None  # status moved last by write_info -f
    assert quick_status(b'{"status":"done","x":{"status":"error"}}') is None  # another "status": key
    assert quick_status(b'{"status":"d\\u00f6ne"}') is None  # an escape: let JSON decode it
    assert quick_status(b"\x04\x08{") is None  # Ruby Marshal


@pytest.fixture
def odd_root(relocated_jobs):
    """Jobs whose .info head says one thing and the whole file another."""
    base = relocated_jobs / "var/jobs/Odd/task"
    base.mkdir(parents=True)
    whole = dumps_info({"status": "done", "pid": 1, "pid_hostname": "x", "type": "string"})
    (base / "truncated").write_text("r")
    (base / "truncated.info").write_bytes(whole[:25])  # '{"status":"done","pid":1,' : noinfo
    (base / "duplicate").write_text("r")
    (base / "duplicate.info").write_bytes(b'{"status":"done","type":"string","status":"error"}')  # last wins
    (base / "moved.info").write_bytes(b'{"type":"string","status":"forced_status"}')
    (base / "unsync.info").write_bytes(whole)  # done, but no result
    (base / "bare").write_text("r")  # a result without .info
    return relocated_jobs


@pytest.mark.parametrize(
    "status, expected",
    [
        ("noinfo", ["bare", "truncated"]),
        ("done", []),
        ("error", ["duplicate"]),
        ("forced_status", ["moved"]),
        ("unsync", ["unsync"]),
        ("done,error,unsync", ["duplicate", "unsync"]),
    ],
)
def test_status_filter_agrees_with_a_full_parse(odd_root, capsys, status, expected):
    rc, out, _ = run(capsys, "ls", str(odd_root), "-w", "Odd", "-s", status, "--json")
    assert rc == 0 and [r["name"] for r in json.loads(out)] == expected
    # the same answer from the statuses of every job (each .info parsed in full)
    rc, out, _ = run(capsys, "ls", str(odd_root), "-w", "Odd", "-l", "--json")
    assert sorted(r["name"] for r in json.loads(out) if r["status"] in status.split(",")) == expected


def test_status_and_age_filters_together(odd_root, capsys):
    old = 1_600_000_000
    for p in (odd_root / "var/jobs/Odd/task").iterdir():
        if p.name.startswith("duplicate"):
            os.utime(p, (old, old))
    rc, out, _ = run(capsys, "ls", str(odd_root), "-w", "Odd", "-s", "error,noinfo", "--older-than", "30", "--json")
    assert [r["name"] for r in json.loads(out)] == ["duplicate"]
    rc, out, _ = run(capsys, "ls", str(odd_root), "-w", "Odd", "-s", "error,noinfo", "--newer-than", "30", "--json")
    assert [r["name"] for r in json.loads(out)] == ["bare", "truncated"]


def _cli(root, *argv, fork: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "scout-persist")
    env = {**os.environ, "SCOUT_PERSIST_SCAN_FORK": fork, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([exe, *argv, str(root)], capture_output=True, text=True, env=env, check=True)


@pytest.mark.parametrize(
    "argv", [["ls"], ["ls", "-s", "error,done"], ["ls", "-s", "noinfo,unsync,missing"], ["clean", "--dry-run"]]
)
def test_two_processes_print_what_one_prints(odd_root, argv):
    for dirpath, dirs, files in os.walk(odd_root):  # ages in days: the same in both runs
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    one, two = _cli(odd_root, *argv, fork="0"), _cli(odd_root, *argv, fork="1")
    assert two.stdout == one.stdout and len(one.stdout.splitlines()) > 3
    assert two.stderr.splitlines()[-1] == one.stderr.splitlines()[-1]  # 'N jobs, SIZE in ROOT'


def test_split_runs_the_second_half_in_a_child_and_survives_its_failure(relocated_jobs):
    """In a fresh interpreter (fork copies only the calling thread: never fork pytest's)."""
    code = textwrap.dedent(f"""
        import os, sys
        from scout_persist.store import Store
        from scout_persist.cli.scan import in_two_processes, task_dirs
        os.environ["SCOUT_PERSIST_SCAN_FORK"] = "1"
        store = Store({str(relocated_jobs)!r})
        dirs = task_dirs(store)
        me = os.getpid()
        parts = list(in_two_processes(store, dirs, lambda part, bar: (os.getpid(), [list(d) for d in part])))
        assert [d for _, (_, p) in parts for d in p] == [list(d) for d in dirs]
        assert parts[0][1][0] == me and parts[1][1][0] != me, "the second half ran here"

        def fails_in_the_child(part, bar):
            if os.getpid() != me:
                raise RuntimeError("child fails")
            return len(part)
        assert sum(n for _, n in in_two_processes(store, dirs, fails_in_the_child)) == len(dirs)
        print("ok")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout.strip() == "ok", proc.stderr
