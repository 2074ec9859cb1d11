"""N concurrent claimers on one S3 endpoint: throughput, requests per job, duplicates (must be 0).

The endpoint is the moto S3 server behind the tests' fault proxy (tests/faulty_proxy.py), which adds ``--latency``
to every request (a bucket in another region) and counts them. Claimers run in child processes — ``threads``: one
process of N threads; ``processes``: up to 16 processes sharing the N threads — and use the core's claim path only
(the plug-in's lock manager does the same through Prefect): ``scout_persist.lease.job_lease`` observes the job's
``.info`` (one GET), a ``done`` job is a hit (the result GET, verified against the ``.info`` record), a job another
live holder runs is polled until it is done, anything else is claimed by ``JobWriter.begin`` (the conditional PUT of
``.info`` ``start`` *is* the lease; a 412 means another claimer won), computed (``--work``), saved (conditional PUT)
and committed (``done``, conditional PUT).

Demand overlaps as in a team's flows: claimers come in groups of ``--overlap``; every claimer of a group wants the
same jobs in the same order (the worst case: they reach each job together), and the groups split the jobs. Every
claimer checks each value it is served; a job computed twice, a wrong value or a job left undone fails the run.

    python bench/contention.py                # 300 jobs, 10 ms latency, N = 10 and 200 (threads and processes)
    python bench/contention.py --full         # 10 000 jobs, N = 1, 10, 50, 100, 200 (threads and processes)
    python bench/contention.py --renewals     # also: lease renewals of held jobs, counted for 25 s

``run() -> dict`` returns the table's rows.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
WORKFLOW, TASK = "Contention", "claim"
MAX_PROCESSES = 16
LEASE = 30.0  # seconds: the plug-in's default job lease


# -- the claimer (a child process) ---------------------------------------------------------------------------
def job_key(j: int) -> str:
    return f"var/jobs/{WORKFLOW}/{TASK}/job{j:06d}"


def value_of(j: int) -> int:
    return j * j + 7


def claim(store, j: int, work: float, poll: float, lease_seconds: float) -> tuple[str, int]:
    """Get job ``j``'s value through the core's lease: ``(how, value)``, how = computed | hit | waited."""
    from scout_persist import payload
    from scout_persist.job import JobWriter
    from scout_persist.lease import job_lease
    from scout_persist.store import Conflict

    key = job_key(j)
    lease = job_lease(store, key, lease=lease_seconds)
    info = lease.observe()
    waited = False
    while True:
        if info is not None and info.get("status") == "done":
            record = payload.record_of(info)
            value = payload.decode(store.get(key), record, key=key, scout_type="integer")
            return ("waited" if waited else "hit"), value
        if lease.busy_reason(info) is not None:
            waited = True
            time.sleep(poll)
            info = lease.observe()
            continue
        writer = JobWriter(
            store,
            key,
            workflow=WORKFLOW,
            task=TASK,
            type="integer",
            lease=lease,
            previous_info=lease.seen.data if lease.seen else None,
        )
        try:
            writer.begin(inputs=[j], input_names=["j"])  # the conditional .info PUT: the acquisition
        except Conflict:
            waited = True
            info = lease.observe()  # another claimer was first
            continue
        try:
            time.sleep(work)
            writer.save(value_of(j), "integer")
            writer.done()
        except BaseException as exc:
            writer.error(exc)
            raise
        finally:
            lease.release()
        return "computed", int(writer.value)


def claimer_main(args: argparse.Namespace) -> None:
    """Child process: ``--threads`` claimers (ids from ``--first``), started together when ``--go`` appears."""
    from scout_persist.store import Store

    store = Store(args.root)
    plan = json.loads(args.plan)
    results: dict[int, collections.Counter[str]] = {}
    wrong: list[int] = []
    computed: list[int] = []
    errors: list[str] = []
    guard = threading.Lock()

    def one(claimer: int) -> None:
        counts: collections.Counter[str] = collections.Counter()
        try:
            for j in range(plan["groups"][claimer], plan["jobs"], plan["n_groups"]):
                how, value = claim(store, j, args.work_s, args.poll_s, LEASE)
                counts[how] += 1
                if value != value_of(j):
                    with guard:
                        wrong.append(j)
                if how == "computed":
                    with guard:
                        computed.append(j)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
            with guard:
                errors.append(f"claimer {claimer}: {type(exc).__name__}: {exc}")
        with guard:
            results[claimer] = counts

    threads = [threading.Thread(target=one, args=(args.first + i,)) for i in range(args.threads)]
    go = Path(args.go)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total: collections.Counter[str] = collections.Counter()
    for c in results.values():
        total.update(c)
    print(json.dumps({"counts": dict(total), "computed": computed, "wrong": wrong, "errors": errors}), flush=True)


# -- the driver ------------------------------------------------------------------------------------------------
class Endpoint:
    """The S3 endpoint: ``moto_server`` in a process of its own (the server side gets its own interpreter), the
    latency proxy in this process counting every request; ``env()`` points children at the proxy."""

    def __init__(self, latency: float) -> None:
        sys.path[:0] = [str(TESTS)]
        import socket
        import urllib.request

        from faulty_proxy import FaultyProxy
        from s3_server import CREDENTIALS

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.credentials = CREDENTIALS
        exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.moto = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=2):
                    break
            except OSError:
                if self.moto.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {self.url}") from None
                time.sleep(0.1)
        self.proxy = FaultyProxy(self.url, latency=latency).start()

    def create_bucket(self) -> str:
        import uuid

        import boto3

        name = f"contention-{uuid.uuid4().hex[:16]}"
        c = self.credentials
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=c["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
            region_name=c["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FSSPEC_", "SCOUT_PERSIST_URL"))}
        env.update(self.credentials)
        env.update(
            FSSPEC_S3_ENDPOINT_URL=self.proxy.url,
            FSSPEC_S3_KEY=self.credentials["AWS_ACCESS_KEY_ID"],
            FSSPEC_S3_SECRET=self.credentials["AWS_SECRET_ACCESS_KEY"],
        )
        return env

    def stop(self) -> None:
        self.proxy.stop()
        self.moto.terminate()
        self.moto.wait(30)


def groups_of(n: int, overlap: int) -> tuple[list[int], int]:
    """Claimer -> its group; claimers come in groups of ``overlap`` (the last ones join groups round robin)."""
    n_groups = max(1, n // max(1, overlap))
    return [c % n_groups for c in range(n)], n_groups


def run_case(
    endpoint: Endpoint, mode: str, n: int, jobs: int, overlap: int, work: float, poll: float, root: str | None = None
) -> dict:
    """One run of ``n`` claimers over ``jobs`` jobs on a fresh bucket (or on ``root`` as it is)."""
    fresh = root is None
    root = root or f"s3://{endpoint.create_bucket()}/bench"
    groups, n_groups = groups_of(n, overlap)
    plan = json.dumps({"groups": groups, "n_groups": n_groups, "jobs": jobs})
    processes = 1 if mode == "threads" else min(n, MAX_PROCESSES)
    shares = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    go = Path(tempfile.mkdtemp(prefix="contention-")) / "go"
    children, first = [], 0
    for share in shares:
        argv = [sys.executable, __file__, "--claimer", "--root", root, "--plan", plan, "--first", str(first)]
        argv += ["--threads", str(share), "--go", str(go), "--work-s", str(work), "--poll-s", str(poll)]
        children.append(subprocess.Popen(argv, env=endpoint.env(), stdout=subprocess.PIPE, text=True))
        first += share
    for child in children:  # every child imported and ready: start them together
        assert child.stdout is not None and child.stdout.readline().strip() == "ready", "a claimer did not start"
    log_start = len(endpoint.proxy.log)
    started = time.perf_counter()
    go.write_text("go")
    outs = [json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    seconds = time.perf_counter() - started
    lines = endpoint.proxy.log[log_start:]
    errors = [e for o in outs for e in o["errors"]]
    computed = collections.Counter(j for o in outs for j in o["computed"])
    counts: collections.Counter[str] = collections.Counter()
    for o in outs:
        counts.update(o["counts"])
    methods = collections.Counter(line.split(" ", 1)[0] for line in lines)
    return {
        "mode": mode,
        "claimers": n,
        "processes": processes,
        "jobs": jobs,
        "overlap": max(collections.Counter(groups).values()),  # claimers wanting each job
        "seconds": seconds,
        "jobs_per_s": jobs / seconds,
        "requests": len(lines),
        "requests_per_job": len(lines) / jobs,
        "by_method": dict(methods),
        "computed": sum(computed.values()),
        "duplicates": sum(c - 1 for c in computed.values() if c > 1),
        "missing": jobs - len(computed) if fresh else 0,  # on a warm store nothing is left to compute
        "wrong_values": sum(len(o["wrong"]) for o in outs),
        "served": dict(counts),
        "errors": errors[:5],
    }


def measure_renewals(endpoint: Endpoint, held: int = 10, seconds: float = 25.0) -> dict:
    """Hold ``held`` jobs for ``seconds`` in this process and count the renewal PUTs their leases make."""
    import fsspec.config

    from scout_persist.job import JobWriter
    from scout_persist.lease import job_lease
    from scout_persist.store import Store

    os.environ.update(endpoint.env())
    fsspec.config.set_conf_env(fsspec.config.conf)
    store = Store(f"s3://{endpoint.create_bucket()}/renewals")
    leases = []
    for j in range(held):
        lease = job_lease(store, job_key(j), lease=LEASE)
        lease.observe()
        writer = JobWriter(store, job_key(j), workflow=WORKFLOW, task=TASK, type="integer", lease=lease)
        writer.begin(inputs=[j], input_names=["j"])
        leases.append(lease)
    start = len(endpoint.proxy.log)
    time.sleep(seconds)
    puts = sum(1 for line in endpoint.proxy.log[start:] if line.startswith("PUT "))
    for lease in leases:
        lease.release()
    return {
        "held": held,
        "seconds": seconds,
        "lease": LEASE,
        "refresh": leases[0].refresh,
        "renewals": puts,
        "per_job_per_minute": puts / held / (seconds / 60),
    }


def run(
    full: bool = False,
    latency_ms: float = 10.0,
    overlap: int = 4,
    work_ms: float = 5.0,
    poll_ms: float = 50.0,
    jobs: int | None = None,
    claimers: list[int] | None = None,
    renewals: bool = False,
) -> dict:
    jobs = jobs or (10_000 if full else 300)
    sweep = claimers or ([1, 10, 50, 100, 200] if full else [10, 200])
    endpoint = Endpoint(latency_ms / 1000)
    rows = []
    try:
        # one claimer alone: the cost of a save, then of a hit, with nobody in the way
        root = f"s3://{endpoint.create_bucket()}/single"
        for label in ("1 cold", "1 warm"):
            row = run_case(endpoint, "threads", 1, min(jobs, 200), 1, work_ms / 1000, poll_ms / 1000, root)
            row["mode"] = label
            rows.append(row)
            print(_line(row), flush=True)
        for n in sweep:
            for mode in ("threads", "processes"):
                if mode == "processes" and n == 1:
                    continue
                row = run_case(endpoint, mode, n, jobs, overlap, work_ms / 1000, poll_ms / 1000)
                rows.append(row)
                print(_line(row), flush=True)
        extra = measure_renewals(endpoint) if renewals else None
    finally:
        endpoint.stop()
    return {"latency_ms": latency_ms, "work_ms": work_ms, "poll_ms": poll_ms, "rows": rows, "renewals": extra}


HEADER = (
    f"{'mode':<10} {'N':>4} {'procs':>5} {'jobs':>6} {'K':>2} {'s':>7} {'jobs/s':>7} {'req/job':>7} "
    f"{'GET':>7} {'PUT':>7} {'dup':>4} {'miss':>4} {'wrong':>5}  served (hit/waited/computed)"
)


def _line(r: dict) -> str:
    m, s = r["by_method"], r["served"]
    return (
        f"{r['mode']:<10} {r['claimers']:>4} {r['processes']:>5} {r['jobs']:>6} {r['overlap']:>2} {r['seconds']:>7.1f} "
        f"{r['jobs_per_s']:>7.1f} {r['requests_per_job']:>7.2f} {m.get('GET', 0) / r['jobs']:>7.2f} "
        f"{m.get('PUT', 0) / r['jobs']:>7.2f} {r['duplicates']:>4} {r['missing']:>4} {r['wrong_values']:>5}  "
        f"{s.get('hit', 0)}/{s.get('waited', 0)}/{s.get('computed', 0)}"
        + (f"  ERRORS {r['errors']}" if r["errors"] else "")
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="10 000 jobs, N = 1, 10, 50, 100, 200")
    p.add_argument("--jobs", type=int, help="jobs per case (default 300; 10 000 with --full)")
    p.add_argument("--claimers", type=int, nargs="+", help="the N to run (default 10 200)")
    p.add_argument("--latency", type=float, default=10.0, help="ms the proxy adds to every request (default 10)")
    p.add_argument("--overlap", type=int, default=4, help="claimers wanting each job (default 4)")
    p.add_argument("--work", type=float, default=5.0, help="ms of computation per job (default 5)")
    p.add_argument("--poll", type=float, default=50.0, help="ms between looks at a job another claimer runs")
    p.add_argument("--renewals", action="store_true", help="also count lease renewals of held jobs (25 s)")
    p.add_argument("--json", help="write the rows to this file")
    # a claimer child
    p.add_argument("--claimer", action="store_true", help=argparse.SUPPRESS)
    for name in ("--root", "--plan", "--go"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--work-s", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--poll-s", type=float, default=0.05, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.claimer:
        claimer_main(args)
        return 0
    print(f"latency {args.latency:g} ms per request, {args.work:g} ms work per job, overlap {args.overlap}")
    print(HEADER, flush=True)
    out = run(args.full, args.latency, args.overlap, args.work, args.poll, args.jobs, args.claimers, args.renewals)
    if out["renewals"]:
        r = out["renewals"]
        print(
            f"renewals: {r['held']} jobs held {r['seconds']:g}s with a {r['lease']:g}s lease (refresh every "
            f"{r['refresh']:g}s): {r['renewals']} PUTs, {r['per_job_per_minute']:.1f} per job per minute"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    bad = [r for r in out["rows"] if r["duplicates"] or r["missing"] or r["wrong_values"] or r["errors"]]
    bad += [r for r in out["rows"] if r["mode"] == "1 warm" and r["served"].get("computed")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
