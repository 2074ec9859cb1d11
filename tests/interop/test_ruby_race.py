"""The real Ruby Scout and the Prefect plug-in race for the same jobs on one tree: each job's body runs once.

Opt-in, like tests/prefect/test_ruby_reads_ours.py: it needs Ruby and the two Scout sources (CONTRIBUTING.md,
"Checking against the real Ruby Scout"):

    SCOUT_RUBY_LIBS=/work/ruby-libs/scout-essentials/lib:/work/ruby-libs/scout-gear/lib \
        .venv/bin/python -m pytest -s tests/interop/test_ruby_race.py

Both sides are long-lived drivers fed one command per line: Ruby (tests/interop/race.rb) forks one process per job,
the plug-in (tests/interop/race_py.py) runs one flow with a thread per task, against one ``prefect server`` started
here.  Every task body appends ``<side> <task> <id> <pid> start|end`` to one side log, from which each job's body
executions are counted.  Each scenario asserts: exactly one completed body per job (plus one started body per
process killed), no hang, every job loads on both sides (Ruby's ``load``, and the plug-in's hit check in a
second flow that runs no body), and a Python dependent is not recomputed when Ruby only rewrites the timing fields
of its Ruby-written dependency.  ``-s`` prints the table of scenarios x trials x body executions.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

LIBS = [p for p in os.environ.get("SCOUT_RUBY_LIBS", "").split(os.pathsep) if p]
RUBY = shutil.which("ruby")
pytestmark = [
    pytest.mark.skipif(
        not (LIBS and RUBY),
        reason="Ruby interop: set SCOUT_RUBY_LIBS to scout-essentials/lib and scout-gear/lib, with ruby on PATH",
    ),
    pytest.mark.slow,
]

HERE = Path(__file__).resolve().parent
TRIALS = int(os.environ.get("SCOUT_RACE_TRIALS", "3"))  # per scenario; 3 x 20 jobs x 2 scenarios per order
N_JOBS = 20
DURATION = 0.3
MARGIN = 3.0  # seconds between sending a trial and its t0: both sides are ready to go at t0
REPLY_TIMEOUT = 180.0  # a side that has not answered by then hangs

TABLE: list[dict[str, Any]] = []


# ------------------------------------------------------------------------------------------------ the drivers
class Side:
    """A long-lived driver process fed one JSON command per line; its JSON reply lines come through a queue."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, stderr: Path) -> None:
        self.name = name
        self.stderr_path = stderr
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr.open("ab"),
            text=True,
        )
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.replies.put(json.loads(line))
        self.replies.put(None)

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def reply(self, cmd: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                got = self.replies.get(timeout=max(left, 0.01))
            except queue.Empty:
                pytest.fail(f"{self.name} side hangs: no {cmd!r} reply within {timeout:.0f}s\n{self.stderr_tail()}")
            if got is None:
                pytest.fail(f"{self.name} side exited ({self.proc.poll()})\n{self.stderr_tail()}")
            if got.get("cmd") == cmd:
                return got

    def stderr_tail(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Arena:
    home: Path
    log: Path
    env: dict[str, str]
    ruby: Side
    py: Side
    spare: list[Side] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.home / ".scout"

    def python_side(self, name: str) -> Side:
        """Another plug-in driver process (one the test may kill)."""
        side = Side(
            name,
            [sys.executable, str(HERE / "race_py.py")],
            self.env,
            self.home,
            self.home.parent / f"{name}.stderr",
        )
        self.spare.append(side)
        side.reply("ready", timeout=120)
        return side

    def executions(self) -> collections.Counter[tuple[str, str, str]]:
        """(side, job, event) -> count, from the side log."""
        counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                side, task, ident, _pid, event = line.split()
                counts[(side, f"{task}/{ident}", event)] += 1
        return counts


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    base = tmp_path_factory.mktemp("race")
    home = base / "home"
    (home / ".scout").mkdir(parents=True)
    port = _free_port()
    server_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    server_env.update(
        PREFECT_HOME=str(base / "server-home"), PREFECT_UI_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false"
    )
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    sides: list[Side] = []
    arena_: Arena | None = None
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "prefect server start exited"
            try:
                with urllib.request.urlopen(api + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prefect server did not answer /health within 120 s"
            time.sleep(0.3)
        env = dict(os.environ)
        env.update(
            HOME=str(home),
            TZ="UTC",
            SCOUT_PERSIST_URL=str(home / ".scout"),
            RACE_LOG=str(base / "bodies.log"),
            PREFECT_API_URL=api,
            PREFECT_HOME=str(base / "client-home"),
            PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        )
        ruby = Side(
            "ruby",
            [RUBY or "ruby", *(f"-I{lib}" for lib in LIBS), str(HERE / "race.rb")],
            env,
            home,
            base / "ruby.stderr",
        )
        sides.append(ruby)
        py = Side("python", [sys.executable, str(HERE / "race_py.py")], env, home, base / "python.stderr")
        sides.append(py)
        py.reply("ready", timeout=120)
        arena_ = Arena(home, base / "bodies.log", env, ruby, py)
        yield arena_
    finally:
        for side in sides + (arena_.spare if arena_ else []):
            side.stop()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        _print_table()


def _print_table() -> None:
    if not TABLE:
        return
    print("\n\nscenario | trials | jobs | completed bodies | jobs run twice | killed | take-over | load (machine)")
    for row in TABLE:
        took = f"{row['seconds']} s" if "seconds" in row else "-"
        print(
            f"{row['scenario']} | {row['trials']} | {row['jobs']} | {row['completed']} | {row['double']} | "
            f"{row.get('killed', 0)} | {took} | {row['load']}"
        )
    out = os.environ.get("SCOUT_RACE_TABLE")
    if out:
        Path(out).write_text(json.dumps(TABLE, indent=1))


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"loadavg {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


# ------------------------------------------------------------------------------------------------ one trial
def spec(task: str, ident: str, offset: float = 0.0) -> dict[str, Any]:
    return {"task": task, "id": ident, "offset": offset}


def run_trial(
    arena: Arena, ruby_jobs: list[dict[str, Any]], py_jobs: list[dict[str, Any]], duration: float = DURATION
) -> tuple[list[Any], dict[str, Any]]:
    """Both sides start their jobs at t0 + offset; returns Ruby's exits (in order) and the plug-in's results."""
    t0 = time.time() + MARGIN
    if ruby_jobs:
        arena.ruby.send({"cmd": "run", "t0": t0, "jobs": ruby_jobs, "duration": duration})
    if py_jobs:
        arena.py.send({"cmd": "run", "t0": t0, "jobs": py_jobs, "duration": duration})
    ended = arena.ruby.reply("run")["ended"] if ruby_jobs else []
    results = arena.py.reply("run")["results"] if py_jobs else {}
    return ended, results


def check_loads(arena: Arena, jobs: list[str]) -> None:
    """Ruby loads every job as done with its value; the plug-in's second run of them is all hits (no body)."""
    specs = [spec(*job.split("/")) for job in jobs]
    arena.ruby.send({"cmd": "load", "jobs": specs})
    loaded = arena.ruby.reply("load")["jobs"]
    for job in jobs:
        got = loaded[job]
        assert (got["done"], got["status"], got["value"]) == (True, "done", expected(job)), (job, got)
    before = arena.executions()
    _, results = run_trial(arena, [], specs)
    assert {job: results.get(job) for job in jobs} == {job: expected(job) for job in jobs}
    assert arena.executions() == before, "the plug-in ran a body again for a job that is done"


def expected(job: str) -> str:
    task, ident = job.split("/")
    return f"v:{ident}" if task == "work" else f"top:v:{ident}"


def record(
    arena: Arena, scenario: str, trials: int, jobs: list[str], before: collections.Counter, killed: int = 0
) -> None:
    """Count the completed bodies of ``jobs`` since ``before``; assert each job ran once."""
    now = arena.executions()
    completed = {job: sum(now[(s, job, "end")] - before[(s, job, "end")] for s in ("py", "ruby")) for job in jobs}
    started = sum(now[(s, job, "start")] - before[(s, job, "start")] for s in ("py", "ruby") for job in jobs)
    double = sorted(job for job, n in completed.items() if n > 1)
    TABLE.append(
        {
            "scenario": scenario,
            "trials": trials,
            "jobs": len(jobs),
            "completed": sum(completed.values()),
            "started": started,
            "double": len(double),
            "killed": killed,
            "load": _load(),
        }
    )
    assert double == [], f"{scenario}: {len(double)} of {len(jobs)} jobs ran twice: {double[:10]}"
    assert [job for job, n in completed.items() if n != 1] == [], completed
    assert started == len(jobs) + killed


def ids(prefix: str, n: int = N_JOBS) -> list[str]:
    return [f"{prefix}_{i:02d}" for i in range(n)]


# ------------------------------------------------------------------------------------------------ scenarios
@pytest.mark.parametrize("first", ["ruby", "python"])
@pytest.mark.parametrize("pattern", ["staggered", "at_once"])
def test_each_job_runs_once_when_both_sides_race(arena: Arena, first: str, pattern: str) -> None:
    """20 jobs per trial; the second side starts each job after the first, by 0..0.36 s (staggered: around the
    moment the first side's body ends and it releases the lock) or 20 ms (at once)."""
    before = arena.executions()
    jobs: list[str] = []
    for trial in range(TRIALS):
        names = ids(f"{pattern}_{first}_{trial}")
        lag = [(i % 10) * 0.04 if pattern == "staggered" else 0.02 for i in range(len(names))]
        early = [spec("work", n) for n in names]
        late = [spec("work", n, d) for n, d in zip(names, lag)]
        ruby_jobs, py_jobs = (early, late) if first == "ruby" else (late, early)
        ended, results = run_trial(arena, ruby_jobs, py_jobs)
        assert [e for e in ended if e[1]["exit"] != 0] == [], ended
        assert results == {f"work/{n}": f"v:{n}" for n in names}
        jobs += [f"work/{n}" for n in names]
    record(arena, f"{first} first, {pattern}", TRIALS, jobs, before)
    check_loads(arena, jobs)


def wait_for_bodies(arena: Arena, side: str, jobs: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(arena.executions()[(side, job, "start")] for job in jobs) < len(jobs):
        assert time.monotonic() < deadline, f"the {side} bodies of {jobs} did not start within {timeout:.0f}s"
        time.sleep(0.05)


def test_kill_9_of_the_ruby_holder_mid_run(arena: Arena) -> None:
    """Ruby's processes are killed while their bodies run and the plug-in waits on their locks; it takes over."""
    names = ids("kill_ruby", 5)
    jobs = [f"work/{n}" for n in names]
    before = arena.executions()
    arena.ruby.send({"cmd": "run", "t0": time.time(), "jobs": [spec("work", n) for n in names], "duration": 60})
    pids = dict(arena.ruby.reply("forked")["pids"])
    wait_for_bodies(arena, "ruby", jobs)
    arena.py.send({"cmd": "run", "t0": time.time(), "jobs": [spec("work", n) for n in names], "duration": DURATION})
    time.sleep(2.0)  # the plug-in's tasks reach the locks Ruby holds
    killed = time.monotonic()
    for job in jobs:
        os.kill(pids[job], signal.SIGKILL)
    ended = arena.ruby.reply("run")["ended"]
    results = arena.py.reply("run")["results"]
    took = time.monotonic() - killed
    assert [e[1]["signal"] for e in ended] == [signal.SIGKILL] * len(names)
    assert results == {f"work/{n}": f"v:{n}" for n in names}
    record(arena, "kill -9 of Ruby mid-run", 1, jobs, before, killed=len(names))
    TABLE[-1]["seconds"] = round(took, 1)
    check_loads(arena, jobs)


def test_kill_9_of_the_python_holder_mid_run(arena: Arena) -> None:
    """The plug-in's process is killed while its bodies run and Ruby waits on its locks; Ruby takes over once they
    go stale by Ruby's own rule (30 s without a touch)."""
    names = ids("kill_py", 3)
    jobs = [f"work/{n}" for n in names]
    victim = arena.python_side("python-victim")
    before = arena.executions()
    victim.send({"cmd": "run", "t0": time.time(), "jobs": [spec("work", n) for n in names], "duration": 120})
    wait_for_bodies(arena, "py", jobs)
    arena.ruby.send({"cmd": "run", "t0": time.time(), "jobs": [spec("work", n) for n in names], "duration": DURATION})
    arena.ruby.reply("forked")
    time.sleep(2.0)  # Ruby's processes reach the locks the plug-in holds
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    killed = time.monotonic()
    ended = arena.ruby.reply("run")["ended"]
    took = time.monotonic() - killed
    assert [e for e in ended if e[1]["exit"] != 0] == [], ended
    record(arena, "kill -9 of Python mid-run", 1, jobs, before, killed=len(names))
    TABLE[-1]["seconds"] = round(took, 1)
    check_loads(arena, jobs)


def test_a_dependency_chain_split_across_the_two(arena: Arena) -> None:
    """Ruby's work feeds the plug-in's top, and the plug-in's work feeds Ruby's top, each started while the other
    side still runs the dependency; then Ruby rewrites the timing fields of its work jobs (as a process that only
    waited on their lock does), and the plug-in's tops are not recomputed."""
    ruby_work, py_work = ids("chain_r", 5), ids("chain_p", 5)
    before = arena.executions()
    ended, results = run_trial(
        arena,
        [spec("work", n) for n in ruby_work] + [spec("top", n, 0.1) for n in py_work],
        [spec("top", n, 0.1) for n in ruby_work] + [spec("work", n) for n in py_work],
        duration=0.5,
    )
    assert [e for e in ended if e[1]["exit"] != 0] == [], ended
    assert {k: v for k, v in results.items() if k.startswith("top/")} == {f"top/{n}": f"top:v:{n}" for n in ruby_work}
    jobs = [f"{t}/{n}" for n in ruby_work + py_work for t in ("work", "top")]
    record(arena, "chain split across the two", 1, jobs, before)

    time.sleep(1.1)  # `end` has second resolution: the rewrite must change it
    infos = {n: (arena.root / f"var/jobs/Race/work/{n}.info").read_bytes() for n in ruby_work}
    arena.ruby.send({"cmd": "rewrite", "jobs": [spec("work", n) for n in ruby_work]})
    arena.ruby.reply("rewrite")
    rewritten = {n: (arena.root / f"var/jobs/Race/work/{n}.info").read_bytes() for n in ruby_work}
    assert all(json.loads(rewritten[n])["end"] != json.loads(infos[n])["end"] for n in ruby_work)
    before = arena.executions()
    _, results = run_trial(arena, [], [spec("top", n) for n in ruby_work])
    assert results == {f"top/{n}": f"top:v:{n}" for n in ruby_work}
    now = arena.executions()
    recomputed = sorted(n for n in ruby_work if now[("py", f"top/{n}", "end")] > before[("py", f"top/{n}", "end")])
    TABLE.append(
        {
            "scenario": "Python dependents after a Ruby timing rewrite",
            "trials": 1,
            "jobs": len(ruby_work),
            "completed": len(recomputed),
            "started": len(recomputed),
            "double": len(recomputed),
            "load": _load(),
        }
    )
    assert recomputed == [], f"Python dependents recomputed after Ruby only rewrote timing fields: {recomputed}"
    check_loads(arena, jobs)


def test_a_second_ruby_waiter(arena: Arena) -> None:
    """Two Ruby processes and the plug-in race for each job (Ruby first): one body; Ruby's waiter rewrites the
    `.info` after the holder's `done` and every side still reads the job as done."""
    names = ids("waiter", 10)
    before = arena.executions()
    ended, results = run_trial(
        arena,
        [spec("work", n) for n in names] + [spec("work", n, 0.1) for n in names],
        [spec("work", n, 0.2) for n in names],
        duration=1.0,
    )
    assert [e for e in ended if e[1]["exit"] != 0] == [], ended
    assert results == {f"work/{n}": f"v:{n}" for n in names}
    jobs = [f"work/{n}" for n in names]
    record(arena, "a second Ruby waiter", 1, jobs, before)
    check_loads(arena, jobs)
