"""Peak memory of persisting and loading a large compressible payload through the store.

    python bench/bench_store_memory.py [--size-mb 1024] [--url URL] [--spec zstd:3]

The payload goes through the streaming path every large result takes: ``zstd_codec.compress_stream`` into
``Store.writer`` (atomic), then ``Store.open`` + ``zstd_codec.open_decompressed`` with the payload record checked.

Two modes, each in a fresh child process so nothing else inflates its memory:

- ``bytes``:  the payload is already in memory (a bytearray of SIZE); it is persisted, dropped, and loaded
              back into a new buffer of SIZE. Extra = peak RSS - RSS before the payload existed - SIZE
              (one copy of the payload is the value itself, not overhead).
- ``stream``: the payload is produced and consumed in chunks and never held whole.
              Extra = peak RSS - RSS after imports.

Memory is the child's peak resident set size (Linux ``VmHWM``, reset after set-up through
``/proc/self/clear_refs``; ``ru_maxrss`` elsewhere) rather than tracemalloc, because zstd's buffers and
worker threads allocate in C where tracemalloc does not look. The target is extra / SIZE < 0.5.

The payload is tab-separated text rows (ids, words, numbers) from a seeded generator: compressible like
real tables (about 2.8x with zstd:3), not a run of zeros.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
CHUNK = MiB
TARGET = 0.5


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


def _reset_peak() -> None:
    """Start peak tracking now (Linux: writing 5 to clear_refs resets VmHWM), so set-up does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # elsewhere the peak covers the whole process: an over-estimate, never an under-estimate


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _base_block(size: int = 8 * MiB) -> bytes:
    rng = random.Random(42)
    words = [f"gene_{i:05d}".encode() for i in range(3000)] + [b"ENSG", b"chr1", b"chrX", b"+", b"-"]
    rows, total = [], 0
    while total < size:
        row = b"%d\t%s\t%s\t%.4f\t%d\n" % (
            rng.randrange(10**6),
            rng.choice(words),
            rng.choice(words),
            rng.random(),
            rng.randrange(100),
        )
        rows.append(row)
        total += len(row)
    return b"".join(rows)[:size]


def _payload_chunks(size: int, base: bytes):
    """``size`` bytes in CHUNK pieces: the base block rotated differently for every chunk."""
    sent, k = 0, 0
    while sent < size:
        offset = (k * 7919 * 131) % (len(base) - CHUNK)
        piece = base[offset : offset + min(CHUNK, size - sent)]
        yield piece
        sent += len(piece)
        k += 1


class _ChunkReader:
    """A file-like reader over a chunk iterator (the ``stream`` source)."""

    def __init__(self, chunks):
        self.chunks = chunks

    def read(self, n: int = -1) -> bytes:
        return next(self.chunks, b"")


class _BufferReader:
    """A file-like reader over an in-memory buffer that hands out CHUNK-sized copies, never the whole."""

    def __init__(self, buffer):
        self.view = memoryview(buffer)
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        piece = bytes(self.view[self.pos : self.pos + n])
        self.pos += len(piece)
        return piece


def _child(size_mb: int, url: str, spec: str, mode: str) -> dict:
    from scout_persist.store import Store
    from scout_persist.zstd_codec import compress_stream, open_decompressed

    size = size_mb * MiB
    store = Store(url)
    key = "var/jobs/Bench/large/Default"
    base = _base_block()  # the generator's seed data is not overhead of the store
    store.exists(key)  # connect once (botocore loads its service models): set-up, not per-payload memory
    base_rss = _rss_mb()
    _reset_peak()
    expected = hashlib.sha256()

    if mode == "bytes":
        payload = bytearray(size)
        pos = 0
        for piece in _payload_chunks(size, base):
            payload[pos : pos + len(piece)] = piece
            pos += len(piece)
        expected.update(payload)
        source = _BufferReader(payload)
    else:

        def hashed(chunks):
            for piece in chunks:
                expected.update(piece)
                yield piece

        source = _ChunkReader(hashed(_payload_chunks(size, base)))

    started = time.perf_counter()
    with store.writer(key) as fh:
        record = compress_stream(source, fh, spec)
    persist_s = time.perf_counter() - started
    peak_persist = _peak_mb()
    if mode == "bytes":
        del source, payload  # the caller's value goes away; loading makes it again

    started = time.perf_counter()
    got = hashlib.sha256()
    with store.open(key) as raw:
        reader = open_decompressed(raw, store.where(key), record)
        if mode == "bytes":
            loaded = bytearray(record["size"])
            view = memoryview(loaded)
            pos = 0
            while pos < len(loaded):
                n = reader.readinto(view[pos : pos + CHUNK])
                if not n:
                    break
                pos += n
            assert reader.read(1) == b"", "payload longer than its record"
            got.update(loaded)
        else:
            while piece := reader.read(CHUNK):
                got.update(piece)
    load_s = time.perf_counter() - started
    assert got.hexdigest() == expected.hexdigest(), "loaded payload differs from the persisted one"

    peak = _peak_mb()
    value_mb = size_mb if mode == "bytes" else 0
    extra = max(peak - base_rss - value_mb, 0.0)
    store.delete(key)
    return {
        "mode": mode,
        "url": url,
        "spec": spec,
        "size_mb": size_mb,
        "stored_mb": round(record["stored_size"] / MiB, 1),
        "persist_s": round(persist_s, 2),
        "load_s": round(load_s, 2),
        "base_rss_mb": round(base_rss, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_persist_rss_mb": round(peak_persist, 1),
        "extra_mb": round(extra, 1),
        "ratio": round(extra / size_mb, 3),
    }


def _run_child(size_mb: int, url: str, spec: str, mode: str, env: dict | None = None) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        mode,
        "--size-mb",
        str(size_mb),
        "--url",
        url,
        "--spec",
        spec,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


_MOTO_LAUNCHER = r"""
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # run until the benchmark closes our stdin
"""


def _start_moto() -> tuple[subprocess.Popen, str, dict]:
    """A moto S3 server in its own process (its memory is not the store's), a bucket, and the env for it."""
    import boto3

    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO_LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    endpoint = f"http://127.0.0.1:{int(proc.stdout.readline())}"
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_KEY": "bench",
        "FSSPEC_S3_SECRET": "bench",
    }
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    ).create_bucket(Bucket="bench")
    return proc, "s3://bench/store", env


def run(size_mb: int = 1024, url: str | None = None, spec: str = "zstd:3") -> dict:
    """Measure both modes; returns {"size_mb", "ratio" (worst mode), "target", "bytes": {...}, "stream": {...}}.

    ``url``: a store URL, None for a temporary local folder, or ``"moto"`` for S3 through s3fs against a
    moto server started for the run.
    """
    moto = None
    env = None
    try:
        if url == "moto":
            moto, url, extra_env = _start_moto()
            env = {**os.environ, **extra_env}
        with tempfile.TemporaryDirectory(prefix="scout-bench-store-") as tmp:
            target_url = url or os.path.join(tmp, "store")
            results = {mode: _run_child(size_mb, target_url, spec, mode, env) for mode in ("bytes", "stream")}
    finally:
        if moto is not None:
            moto.stdin.close()
            moto.terminate()
            moto.wait(timeout=30)
    worst = max(r["ratio"] for r in results.values())
    return {"size_mb": size_mb, "ratio": worst, "target": TARGET, "ok": worst < TARGET, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument(
        "--url", default=None, help="store URL (default: a temporary local folder; 'moto': S3 on a local moto server)"
    )
    parser.add_argument("--spec", default="zstd:3", help="compression spec, e.g. zstd:3, zstd:19, none")
    parser.add_argument("--child", choices=("bytes", "stream"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.size_mb, args.url, args.spec, args.child)))
        return 0
    result = run(args.size_mb, args.url, args.spec)
    print(f"store memory benchmark: {args.size_mb} MiB payload, {args.spec}, store {args.url or 'local temp dir'}")
    print(
        f"{'mode':8} {'stored MiB':>10} {'persist s':>10} {'load s':>8} {'extra MiB':>10} "
        f"{'extra/payload':>14} {'target':>7}"
    )
    for mode in ("bytes", "stream"):
        r = result[mode]
        print(
            f"{mode:8} {r['stored_mb']:>10} {r['persist_s']:>10} {r['load_s']:>8} {r['extra_mb']:>10} "
            f"{r['ratio']:>14} {'< ' + str(TARGET):>7}"
        )
    print(f"worst ratio {result['ratio']} -> {'OK' if result['ok'] else 'ABOVE TARGET'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
