"""Dead jobs (issue 17 item 2): a job left in setup/start by a writer that is gone shows as aborted in ls, info and
prov, and clean --status aborted / gc remove it; a live one is never touched."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from scout_persist.cli import main
from scout_persist.info import dumps_info, hostname, ruby_time
from scout_persist.job import JobWriter
from scout_persist.layout import lock_key_for
from scout_persist.locks import Lock
from scout_persist.store import Store
from test_liveness import finished_pid

DONE = "var/jobs/W/task/done_job"
DEAD_HERE = "var/jobs/W/task/dead_here"  # start, pid dead on this host
DEAD_AWAY = "var/jobs/W/task/dead_away"  # setup, another host, no lock
LIVE_HERE = "var/jobs/W/task/live_here"  # start, our own pid
LIVE_AWAY = "var/jobs/W/task/live_away"  # start, another host, lock held
FORCED = "var/jobs/W/task/forced"  # a custom status written by write_info: not judged


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _write(store: Store, key: str, status: str, pid: int, host: str, deps=()) -> None:
    w = JobWriter(store, key, workflow="W", task="task", type="string")
    w.setup(inputs=[], input_names=[], dependencies=list(deps))
    w.start()
    if status == "done":
        w.save("result")
        w.done()
    info = json.loads(store.get(key + ".info"))
    info.update(status=status, pid=pid, pid_hostname=host, issued=ruby_time())
    store.put(key + ".info", dumps_info(info))


@pytest.fixture
def root(tmp_path):
    store = Store(str(tmp_path))
    _write(store, DONE, "done", finished_pid(), hostname())
    _write(store, DEAD_HERE, "start", finished_pid(), hostname(), deps=[store.path(DONE)])
    _write(store, DEAD_AWAY, "setup", 4242, "another-host")
    _write(store, LIVE_HERE, "start", os.getpid(), hostname())
    _write(store, LIVE_AWAY, "start", 4242, "another-host")
    _write(store, FORCED, "forced_status", finished_pid(), hostname())
    return tmp_path


@pytest.fixture
def away_lock(root):
    store = Store(str(root))
    with Lock(store, lock_key_for(store.path(LIVE_AWAY))) as lock:
        yield lock


def _status_by_name(out: str) -> dict[str, str]:
    return {line.split()[-1].rsplit("/", 1)[-1]: line.split()[0] for line in out.splitlines()}


def test_ls_shows_dead_jobs_as_aborted(root, away_lock, capsys):
    rc, out, _ = run(capsys, "ls", "-l", str(root))
    assert rc == 0 and _status_by_name(out) == {
        "dead_away": "aborted",
        "dead_here": "aborted",
        "done_job": "done",
        "forced": "forced_status",
        "live_away": "start",
        "live_here": "start",
    }
    lines = out.splitlines()
    assert len({line.index("W/task/") for line in lines}) == 1  # one status column, as wide as 'forced_status'
    rc, out, _ = run(capsys, "ls", "-s", "aborted", str(root))
    assert sorted(_status_by_name(out)) == ["dead_away", "dead_here"]
    rc, out, _ = run(capsys, "ls", "-s", "start", "--json", str(root))
    assert sorted(r["name"] for r in json.loads(out)) == ["live_away", "live_here"]


def test_info_and_prov_show_aborted_with_the_reason(root, capsys):
    job = str(root / DEAD_HERE)
    pid = json.loads((root / f"{DEAD_HERE}.info").read_bytes())["pid"]
    rc, out, err = run(capsys, "info", "--nocolor", job)
    assert rc == 0 and out.splitlines()[0] == "status = 'aborted'"
    assert f"says status 'start', but its pid {pid} is not running on this host ({hostname()})" in err
    assert f"`scout-persist clean {job}` removes it" in err
    rc, out, err = run(capsys, "info", "--nocolor", str(root / LIVE_HERE))
    assert out.splitlines()[0] == "status = 'start'" and err == ""
    rc, out, _ = run(capsys, "prov", "--nocolor", job)
    assert out.splitlines() == [f" done W task {root}/{DONE}", f"aborted W task {job}"]
    rc, out, _ = run(capsys, "prov", "--json", str(root / DEAD_AWAY))
    assert json.loads(out)["status"] == "aborted"


def test_clean_aborted_dry_run_then_remove(root, away_lock, capsys):
    rc, out, err = run(capsys, "clean", "--status", "aborted", "--dry-run", str(root))
    assert rc == 0 and sorted(line.split()[-1] for line in out.splitlines()) == ["W/task/dead_away", "W/task/dead_here"]
    assert all(line.startswith("would remove  aborted") for line in out.splitlines())
    assert (root / f"{DEAD_HERE}.info").exists() and "dry run: nothing removed" in err
    rc, out, _ = run(capsys, "clean", "--status", "aborted", str(root))
    assert rc == 0 and out.count("removed  aborted") == 2
    left = {p.name for p in (root / "var/jobs/W/task").iterdir()}
    assert left == {"done_job", "done_job.info", "forced.info", "live_away.info", "live_here.info"}
    assert not list((root / "tmp/persist_locks").glob("*dead*"))  # the locks clean took are released


def test_clean_default_takes_dead_jobs_but_never_live_ones(root, away_lock, capsys):
    rc, out, _ = run(capsys, "clean", "-s", "start,setup,aborted", str(root))
    assert rc == 0 and out.count("removed") == 2
    assert (root / f"{LIVE_HERE}.info").exists() and (root / f"{LIVE_AWAY}.info").exists()


def test_clean_rechecks_under_the_lock(root, capsys):
    """Between the scan and the removal a writer may come back: clean looks again under the job's lock."""
    from scout_persist.cli.clean import remove
    from scout_persist.cli.scan import scan

    store = Store(str(root))
    jobs = {j.name: j for j in scan(store)}
    assert jobs["dead_away"].status == jobs["dead_here"].status == "aborted"
    # another process takes the lock of dead_away: clean must not wait, nor remove
    code = (
        "import sys, time; from scout_persist.store import Store; from scout_persist.locks import Lock; "
        "from scout_persist.layout import lock_key_for; "
        f"s = Store({str(root)!r}); l = Lock(s, lock_key_for(s.path({DEAD_AWAY!r}))); "
        "l.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert remove(jobs["dead_away"]) is False
        assert (
            f"skipped W/task/dead_away: locked by host {socket.gethostname()} pid {holder.pid}"
            in capsys.readouterr().err
        )
    finally:
        holder.kill()
        holder.wait()
    # dead_here's writer is back (its .info now names a live process): skipped, not removed
    _write(store, DEAD_HERE, "start", os.getpid(), hostname())
    assert remove(jobs["dead_here"]) is False
    assert "skipped W/task/dead_here: it is running now (status 'start')" in capsys.readouterr().err
    assert (root / f"{DEAD_AWAY}.info").exists() and (root / f"{DEAD_HERE}.info").exists()
    assert remove(jobs["dead_away"]) is True  # the holder is gone: its stale lock is broken, the job removed
    assert not (root / f"{DEAD_AWAY}.info").exists()


def test_gc_removes_dead_jobs_whatever_the_limit(root, away_lock, capsys):
    rc, out, err = run(capsys, "gc", "--max-size", "10G", str(root))
    assert rc == 0 and sorted(line.split()[-1] for line in out.splitlines()) == ["W/task/dead_away", "W/task/dead_here"]
    assert (root / DONE).exists() and (root / f"{LIVE_HERE}.info").exists()
