"""Crash states of a save on a local store, read back with the real readers (after ALICE, OSDI 2014, and
CrashMonkey, OSDI 2018).

Each save of crash_saves.py (a scout job of a Scout type and a pickled one, first run and rewrite, with file
outputs; a persist() entry; a registry version; a run record) runs once in a child process under the tracer
(fs_trace.py), which records its write, rename, link, unlink, mkdir and fsync calls.  crash_model.py then gives, for
every crash point and every loss or reordering that ext4 (data=ordered, delayed allocation) and POSIX allow for what
was not synced, the state on the disk.  Each state is written at the save's own root and read back:

- a job: the plug-in's hit check in core terms (``.info`` read once, ``done``, the result read and decoded by its
  record), ``Job(...).load()``, ``Job.status``, Ruby's rule (a result file that exists is read as it is: its bytes,
  and those of every file in ``<job>.files/``, must be the old or the new ones), the job's files through its
  ``.info``, the liveness ``ls``/``clean`` judge it by (a job left in a running status must be judged dead, and
  ``scout-persist clean`` must remove it: run once per crash point, it costs 20 ms), and a recompute (the lease
  taken, the job rewritten, then read back: what ``resume`` and the plug-in's next run do);
- a persist() entry: ``persist()`` itself, and its bytes as Ruby reads them;
- a registry version: every listed version resolves and reads back verified; logging again works;
- a run record: ``read_run`` and ``list_runs``.

A reader must get the old value, the new value or a miss: never a wrong value, never another exception, never a job
that cannot be recomputed.  Writes that cannot be recomputed (registry versions, run records) must also hold the new
value in every state after the save returned.  And every fsync the code makes must be needed: the same trace
without it must have a violating state (else the fsync is habit, not evidence, and should go).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crash_model import CrashModel, State, Trace
from crash_saves import ARTIFACT, ENTRY, JOB, RUN, WORKLOADS, Workload, save_job
from fs_trace import tracing
from scout_persist import payload, persist, runs
from scout_persist.cli import main as cli_main
from scout_persist.errors import (
    CorruptPayloadError,
    InfoFormatError,
    JobNotFound,
    KeyNotFound,
    UntrustedPayloadError,
)
from scout_persist.info import loads_info
from scout_persist.job import Job
from scout_persist.liveness import RUNNING_STATUSES, job_liveness
from scout_persist.persist_cache import locate
from scout_persist.registry import Registry
from scout_persist.store import Store, Sync

pytestmark = pytest.mark.slow  # about 40 s on 2 busy cores

HERE = Path(__file__).parent
MISSES = (JobNotFound, KeyNotFound, CorruptPayloadError, InfoFormatError, UntrustedPayloadError)
RECOMPUTED = "recomputed after the crash"
# prov's statuses a crash may leave (Job.status): a running one is "aborted" once its writer is gone (clean removes
# it), "unsync" is a done .info whose result the crash lost (a miss: recomputed)
STATUSES = {"missing", "noinfo", "notfound", "setup", "start", "aborted", "done", "unsync"}


# -- recording ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[str, tuple[Trace, dict[str, Any], str]]]:
    """Every workload recorded once, in parallel child processes: name -> (trace, tree it left, its root).

    In memory (/dev/shm) where there is one: the states are written there again and again, and the model, not the
    disk, decides what a crash keeps."""
    base = Path(tempfile.mkdtemp(prefix="scout-crash-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        yield _record_all(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _record_all(base: Path) -> dict[str, tuple[Trace, dict[str, Any], str]]:
    procs = {}
    for name in WORKLOADS:
        root, out = str(base / name), str(base / f"{name}.pickle")
        cmd = [sys.executable, str(HERE / "crash_saves.py"), name, root, out]
        procs[name] = (subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True), root, out)
    result = {}
    for name, (proc, root, out) in procs.items():
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"recording {name} failed:\n{err[-4000:]}"
        with open(out, "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - the trace our own child process just wrote
        trace = Trace(data["initial_files"], data["initial_ids"], data["initial_dirs"], data["ops"])
        result[name] = (trace, data["left"], root)
    return result


# -- reading a state back ----------------------------------------------------------------------------------------
class Verdict:
    """What the readers found in one state: ``outcome`` old | new | miss, and the ``problems`` (violations)."""

    def __init__(self) -> None:
        self.outcomes: set[str] = set()
        self.problems: list[str] = []
        self.cleaned = False

    def saw(self, reader: str, got: Any, w: Workload) -> None:
        if w.old is not None and got == w.old:
            self.outcomes.add("old")
        elif got == w.new:
            self.outcomes.add("new")
        else:
            self.problems.append(f"{reader} returned a wrong value: {_short(got)}")

    def miss(self) -> None:
        self.outcomes.add("miss")

    def failed(self, reader: str, exc: BaseException) -> None:
        self.problems.append(f"{reader} raised {type(exc).__name__}: {str(exc)[:300]}")

    @property
    def outcome(self) -> str:
        return "new" if self.outcomes == {"new"} else "old" if "old" in self.outcomes else "miss"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def read(reader: str, verdict: Verdict, fn: Callable[[], Any], w: Workload) -> None:
    """Run one reader: a value is judged, a miss noted, any other exception is a violation."""
    try:
        got = fn()
    except MISSES:
        verdict.miss()
        return
    except Exception as exc:  # noqa: BLE001 - the point: any other exception is a finding
        verdict.failed(reader, exc)
        return
    verdict.saw(reader, got, w)


@dataclass(frozen=True)
class Case:
    """One state to read back: the workload ``w``, the ``root`` it is written at, the files before the save
    (``initial``) and after it (``left``); ``clean``: also run ``scout-persist clean`` on a job left running."""

    w: Workload
    root: str
    initial: dict[str, bytes]
    left: dict[str, bytes]
    clean: bool = False


def hit_check(store: Store) -> Any:
    """The plug-in's hit verdict in core terms: ``.info`` read once, ``done``, the result read by its record and
    decoded (verified); a miss otherwise."""
    raw = store.get(JOB + ".info")
    info = loads_info(raw, JOB + ".info")
    if info.get("status") != "done":
        raise JobNotFound(f"status {info.get('status')!r}")
    record = payload.record_of(info)
    data = payload.read(store, JOB, record)
    return payload.decode(
        data, record, key=JOB, scout_type=info.get("type"), location=JOB, relocate=Job.at(store, JOB).relocate
    )


def check_job(case: Case, verdict: Verdict) -> None:
    w, root, initial, left = case.w, case.root, case.initial, case.left
    store = Store(root)
    job = Job(os.path.join(root, JOB))
    read("hit check", verdict, lambda: hit_check(store), w)
    read("Job.load()", verdict, lambda: Job(os.path.join(root, JOB)).load(), w)
    try:
        status = job.status
    except Exception as exc:  # noqa: BLE001
        verdict.failed("Job.status", exc)
        status = None
    if status is not None and status not in STATUSES:
        verdict.problems.append(f"Job.status is {status!r}")
    if w.ruby_reads and os.path.isfile(os.path.join(root, JOB)):
        with open(os.path.join(root, JOB), "rb") as fh:
            data = fh.read()
        if data not in (initial.get(JOB), left.get(JOB)):
            verdict.problems.append(f"Ruby's rule (the result file exists: it is the result) reads {_short(data)}")
    files_dir = os.path.join(root, JOB + ".files")
    for dirpath, _, filenames in os.walk(files_dir):  # Ruby reads a job's files as they are, whatever its .info says
        for f in filenames:
            name = os.path.relpath(os.path.join(dirpath, f), files_dir)
            with open(os.path.join(dirpath, f), "rb") as fh:
                data = fh.read()
            if data not in (w.old_files.get(name), w.new_files.get(name)):
                verdict.problems.append(f"Ruby's rule reads {JOB}.files/{name} as {_short(data)}")
    if status == "done":
        try:
            names = job.files()
        except Exception as exc:  # noqa: BLE001
            verdict.failed("Job.files()", exc)
            names = []
        for name in names:
            expected = {w.old_files.get(name), w.new_files.get(name)} - {None}
            try:
                data = job.read_file(name)
            except MISSES:
                continue
            except Exception as exc:  # noqa: BLE001
                verdict.failed(f"Job.read_file({name!r})", exc)
                continue
            if data not in expected:
                verdict.problems.append(f"Job.read_file({name!r}) returned wrong bytes {_short(data)}")
    if status in RUNNING_STATUSES:
        try:
            alive = job_liveness(store, JOB, job.info)
        except Exception as exc:  # noqa: BLE001
            verdict.failed("job_liveness", exc)
        else:
            if not alive.dead:
                verdict.problems.append(f"a job left {status!r} by the crash is judged {alive.state}: {alive.reason}")
        if case.clean:
            verdict.cleaned = True
            clean(root, verdict)
    recovered = "recomputed " + (w.type or "value")
    try:
        save_job(Store(root), recovered, w.type, {}, timeout=0.5)
        after = Job(os.path.join(root, JOB)).load()
    except Exception as exc:  # noqa: BLE001
        verdict.failed("recomputing the job", exc)
    else:
        if after != recovered:
            verdict.problems.append(f"the recomputed job loads {_short(after)}")


def check_persist(case: Case, verdict: Verdict) -> None:
    w, root, initial, left = case.w, case.root, case.initial, case.left
    key = locate(ENTRY, store=root).key
    path = os.path.join(root, key)
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            data = fh.read()
        if data not in (initial.get(key), left.get(key)):
            verdict.problems.append(f"the entry's bytes, as Ruby reads them, are {_short(data)}")
    try:
        got = persist(ENTRY, w.type, lambda: RECOMPUTED, store=root)
    except Exception as exc:  # noqa: BLE001
        verdict.failed("persist()", exc)
        return
    if got == RECOMPUTED:
        verdict.miss()
    else:
        verdict.saw("persist()", got, w)


def check_registry(case: Case, verdict: Verdict) -> None:
    w, root = case.w, case.root
    registry = Registry(Store(root))
    try:
        versions = registry.versions(ARTIFACT)
    except Exception as exc:  # noqa: BLE001
        verdict.failed("Registry.versions", exc)
        return
    for version in versions:  # a listed version is a promise: it must read back, verified
        try:
            data = registry.resolve(f"{ARTIFACT}:{version}").read("weights.bin")
        except Exception as exc:  # noqa: BLE001
            verdict.failed(f"reading {ARTIFACT}:{version}", exc)
            continue
        expected = w.old if version == "v0" else w.new
        if data != expected:
            verdict.problems.append(f"{ARTIFACT}:{version} reads {_short(data)}")
    verdict.outcomes.add("new" if "v1" in versions else "old" if versions else "miss")
    try:
        again = Registry(Store(root)).log_artifact(ARTIFACT, {"weights.bin": w.new})
        if again.read("weights.bin") != w.new:
            verdict.problems.append(f"logging again gives {again.ref} holding other bytes")
    except Exception as exc:  # noqa: BLE001
        verdict.failed("logging the artifact again", exc)


def check_run(case: Case, verdict: Verdict) -> None:
    w, root = case.w, case.root
    store = Store(root)
    try:
        runs.list_runs(store)
        run = runs.read_run(store, *RUN)
    except Exception as exc:  # noqa: BLE001 - the record existed before the save: it may not vanish either
        verdict.failed("reading the run record", exc)
        return
    verdict.saw("read_run", run.record.get("status"), w)


def clean(root: str, verdict: Verdict) -> None:
    """``scout-persist clean ROOT`` (error and aborted jobs): a job the crash left running is removed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["clean", root])
    status = Job(os.path.join(root, JOB)).status
    if code != 0 or status != "missing":
        verdict.problems.append(f"scout-persist clean exited {code}, the job is {status!r}: {err.getvalue()[-300:]}")


CHECKS = {"job": check_job, "persist": check_persist, "registry": check_registry, "run": check_run}


class Reader:
    """Reads the crash states of one workload, each distinct state once (a cache shared by the fsync analysis)."""

    def __init__(self, w: Workload, trace: Trace, left: dict[str, bytes], root: str) -> None:
        self.w, self.trace, self.left, self.root = w, trace, left, root
        self.cache: dict[State, Verdict] = {}
        self.cleaned: set[int] = set()  # crash points at which `clean` ran on a job left running (once each)

    def verdict(self, state: State) -> Verdict:
        found = self.cache.get(state)
        if found is None:
            state.materialise(self.root)
            found = Verdict()
            case = Case(self.w, self.root, self.trace.initial_files, self.left, state.crash_point not in self.cleaned)
            CHECKS[self.w.kind](case, found)
            if found.cleaned:
                self.cleaned.add(state.crash_point)
            self.cache[state] = found
        return found

    def violations(self, trace: Trace) -> tuple[int, int, list[tuple[State, list[str]]]]:
        """(combinations enumerated, distinct states, [(state, its violations)]) of ``trace``'s crash states."""
        model = CrashModel(trace)
        bad: list[tuple[State, list[str]]] = []
        distinct: set[State] = set()
        for state in model.states():
            distinct.add(state)
            verdict = self.verdict(state)
            problems = list(verdict.problems)
            if self.w.durable and state.crash_point == len(trace.ops) and verdict.outcome != "new":
                problems.append(f"the save returned, yet the state holds the {verdict.outcome} value")
            if problems:
                bad.append((state, problems))
        return model.enumerated, len(distinct), bad


def _explain(bad: list[tuple[State, list[str]]], limit: int = 6) -> str:
    return "\n".join(f"- {state.how}:\n    " + "\n    ".join(problems) for state, problems in bad[:limit])


@pytest.fixture(scope="module")
def readers(recorded) -> dict[str, Reader]:
    return {name: Reader(WORKLOADS[name], trace, left[0], root) for name, (trace, left, root) in recorded.items()}


# -- the tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_the_tracer_sees_every_write(recorded, name):
    """The recorded operations, all applied, give exactly the tree the save left: nothing was written unseen."""
    trace, (left_files, left_dirs), _ = recorded[name]
    files, dirs = CrashModel(trace).final_state()
    assert files == left_files
    assert dirs == left_dirs


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_crash_state_reads_old_new_or_miss(recorded, readers, name, capsys):
    trace = recorded[name][0]
    enumerated, distinct, bad = readers[name].violations(trace)
    with capsys.disabled():
        print(
            f"\ncrash states: {name}: {enumerated} enumerated, {distinct} distinct, {distinct - len(bad)} ok "
            f"({len(trace.ops)} operations)"
        )
    assert bad == [], f"{len(bad)} of {distinct} crash states break a reader, e.g.:\n{_explain(bad)}"
    assert distinct > 2  # the model did enumerate crash states


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_fsync_is_needed(recorded, readers, name, capsys):
    """Each fsync the save makes is needed: without it some crash state breaks a reader (the evidence for it)."""
    trace = recorded[name][0]
    syncs = [i for i, op in enumerate(trace.ops) if op[0] in ("fsync", "fsync_dir")]
    habits = []
    for i in syncs:
        _, _, bad = readers[name].violations(trace.without(i))
        what = " ".join(str(x) for x in trace.ops[i])
        with capsys.disabled():
            print(f"\nfsync analysis: {name}: without op {i} ({what}): {len(bad)} crash states break a reader")
            if bad:
                print(_explain(bad, 1))
        if not bad:
            habits.append(what)
    assert habits == [], f"fsyncs no crash state needs (make them go): {habits}"


def test_the_local_store_syncs_each_kind_of_write_as_asked(tmp_path, monkeypatch):
    """The levels the evidence above chose, as the local store carries them out: nothing for ``NONE``, the bytes for
    ``DATA``, the bytes then the folder for ``ALL`` (and the folders on the way that this process made), nothing at
    all under ``SCOUT_PERSIST_DURABILITY=fast``."""
    root = tmp_path / "root"
    root.mkdir()
    store = Store(str(root))
    with tracing(str(root)) as rec:
        store.put("a/b/none", b"1", durable=Sync.NONE)
        store.put("a/b/data", b"2", durable=Sync.DATA)
        store.put("c/d/all", b"3", durable=Sync.ALL)  # c and c/d are new: their names are synced in their parents
        store.put("c/d/again", b"4", durable=True)  # known on the disk now: only the folder of the new name
        assert store.create("a/b/created", b"5")  # exclusive create, durable by default: also its folder's chain
        with store.writer("a/b/streamed", durable=Sync.DATA) as fh:
            fh.write(b"6")
        monkeypatch.setenv("SCOUT_PERSIST_DURABILITY", "fast")
        store.put("c/d/fast", b"7", durable=Sync.ALL)
    content = {op[1]: op[3] for op in rec.ops if op[0] == "write"}  # file id -> its bytes (one write each)
    synced = [("fsync", content[op[1]]) if op[0] == "fsync" else op for op in rec.ops if op[0].startswith("fsync")]
    assert synced == [
        ("fsync", b"2"),
        ("fsync", b"3"),
        ("fsync_dir", "c/d"),
        ("fsync_dir", "c"),
        ("fsync_dir", "."),
        ("fsync", b"4"),
        ("fsync_dir", "c/d"),
        ("fsync", b"5"),
        ("fsync_dir", "a/b"),
        ("fsync_dir", "a"),
        ("fsync_dir", "."),
        ("fsync", b"6"),
    ]
