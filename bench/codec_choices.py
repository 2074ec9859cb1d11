"""The measurements behind the codec and checksum choice: raw library speeds on this machine, in one process.

Not part of ``make bench`` (which measures the whole layer against other systems); run it to re-check the
choice on new hardware: ``python bench/codec_choices.py [--size-mb 200] [--repeat 3]``.  Each number is the
median of ``--repeat`` runs; the arrays are the large-result benchmark's array (int64 codes + noise) and a
float64 array of random noise (the hard case).  Libraries that are not installed are skipped.

It also measures where Blosc2 starts to pay for its import (``blosc_codec.BLOSC2_MIN``): encode + decode time of the
codes array through ``envelope_parts.encode_parts``/``decode_parts`` with zstd:3 and with Blosc2, by size, next to the
time ``import blosc2`` takes in a fresh process (paid once by the writer's process and once by the reader's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def arrays(size_mb: int) -> dict:
    import numpy as np

    from large_result import make_data

    n = size_mb * 1024 * 1024 // 8
    return {"codes": make_data(size_mb), "noise": np.random.default_rng(1).standard_normal(n)}


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def codecs() -> dict:
    """name -> (compress(view) -> list of stored chunks, decompress(chunks, out view))."""
    import zstandard

    out = {}
    for level in (1, 3):

        def zc(view, level=level):
            return [zstandard.ZstdCompressor(level=level, threads=-1).compress(view)]

        def zd(chunks, dst):
            dst[:] = zstandard.ZstdDecompressor().decompress(chunks[0])

        out[f"zstd:{level} (1 frame, mt encode)"] = (zc, zd)

    def framed(level: int, frame: int):
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(2)

        def c(view):
            pieces = [view[i : i + frame] for i in range(0, len(view), frame)]
            return list(pool.map(lambda p: zstandard.ZstdCompressor(level=level).compress(p), pieces))

        def d(chunks, dst):
            def one(i):
                dst[i * frame : (i + 1) * frame] = zstandard.ZstdDecompressor().decompress(chunks[i])

            list(pool.map(one, range(len(chunks))))

        return c, d

    out["zstd:1 (8 MiB frames, 2 threads)"] = framed(1, 8 << 20)
    out["zstd:3 (8 MiB frames, 2 threads)"] = framed(3, 8 << 20)
    try:
        import blosc2
    except ImportError:
        blosc2 = None
    if blosc2 is not None:

        def b2(codec, level, filt, chunk, threads=2):
            cp = {"codec": codec, "clevel": level, "filters": [filt], "typesize": 8, "nthreads": threads}

            def c(view):
                return [blosc2.compress2(view[i : i + chunk], **cp) for i in range(0, len(view), chunk)]

            def d(chunks, dst):
                off = 0
                for ch in chunks:
                    n = blosc2.get_cbuffer_sizes(ch)[0]
                    blosc2.decompress2(ch, dst=dst[off : off + n], nthreads=threads)
                    off += n

            return c, d

        Z, LZ4 = blosc2.Codec.ZSTD, blosc2.Codec.LZ4
        BIT, BYTE = blosc2.Filter.BITSHUFFLE, blosc2.Filter.SHUFFLE
        out["blosc2 zstd:1 bitshuffle 16 MiB"] = b2(Z, 1, BIT, 16 << 20)
        out["blosc2 zstd:1 bitshuffle 64 MiB"] = b2(Z, 1, BIT, 64 << 20)
        out["blosc2 zstd:1 shuffle 16 MiB"] = b2(Z, 1, BYTE, 16 << 20)
        out["blosc2 zstd:3 bitshuffle 16 MiB"] = b2(Z, 3, BIT, 16 << 20)
        out["blosc2 lz4:5 bitshuffle 16 MiB"] = b2(LZ4, 5, BIT, 16 << 20)
    return out


def checksums() -> dict:
    out = {
        "sha256": lambda v: hashlib.sha256(v).hexdigest(),
        "blake2b": lambda v: hashlib.blake2b(v).hexdigest(),
        "sha1 (reference, not collision resistant)": lambda v: hashlib.sha1(v).hexdigest(),
        "crc32 (reference, not cryptographic)": lambda v: zlib.crc32(v),
    }
    try:
        import blake3
    except ImportError:
        return out
    out["blake3 (1 thread)"] = lambda v: blake3.blake3(v).hexdigest()
    out["blake3 (all cores)"] = lambda v: blake3.blake3(v, max_threads=blake3.blake3.AUTO).hexdigest()
    return out


def import_seconds(module: str, after: str = "numpy", repeat: int = 5) -> float:
    """Median time of ``import module`` in fresh processes that already imported ``after``."""
    import subprocess

    code = f"import {after}, time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(repeat)
    ]
    return statistics.median(times)


def breakeven(sizes=(4, 16, 32, 64, 128), repeat: int = 3) -> dict:
    from large_result import make_data
    from scout_persist import blosc_codec, envelope_parts

    out = {}
    saved_min = blosc_codec.BLOSC2_MIN
    blosc_codec.BLOSC2_MIN = 0
    try:
        for mb in sizes:
            a = make_data(mb)
            row = {}
            for spec in ("zstd:3", "auto"):
                enc = envelope_parts.encode_parts([a], [8], spec)
                payload = b"".join(enc.pieces)
                row[spec] = _median(lambda: envelope_parts.encode_parts([a], [8], spec), repeat) + _median(
                    lambda: envelope_parts.decode_parts(enc.header, payload, "x"), repeat
                )
            out[mb] = row
    finally:
        blosc_codec.BLOSC2_MIN = saved_min
    return out


def run(size_mb: int = 200, repeat: int = 3) -> dict:
    data = arrays(size_mb)
    result: dict = {"size_mb": size_mb, "repeat": repeat, "codecs": {}, "checksums": {}}
    for aname, arr in data.items():
        view = memoryview(arr).cast("B")
        dst = memoryview(bytearray(len(view)))
        for cname, (c, d) in codecs().items():
            chunks = c(view)
            stored = sum(len(x) for x in chunks)
            d(chunks, dst)
            assert dst == view, cname
            result["codecs"][f"{aname} | {cname}"] = {
                "compress_s": _median(lambda: c(view), repeat),
                "decompress_s": _median(lambda: d(chunks, dst), repeat),
                "ratio": stored / len(view),
            }
    try:
        result["import_blosc2_s"] = {
            "after numpy": import_seconds("blosc2"),
            "after prefect": import_seconds("blosc2", "prefect, numpy"),
        }
        result["breakeven"] = breakeven(repeat=repeat)
    except Exception as exc:  # noqa: BLE001 - blosc2 or prefect missing
        result["breakeven_error"] = repr(exc)
    view = memoryview(data["noise"]).cast("B")
    for hname, h in checksums().items():
        s = _median(lambda: h(view), repeat)
        result["checksums"][hname] = {"seconds": s, "mb_per_s": len(view) / s / 1e6}
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    r = run(a.size_mb, a.repeat)
    print(f"{'array | codec':<48} {'compress s':>10} {'decompress s':>12} {'stored/plain':>12}")
    for k, v in r["codecs"].items():
        print(f"{k:<48} {v['compress_s']:>10.3f} {v['decompress_s']:>12.3f} {v['ratio']:>12.3f}")
    if "breakeven" in r:
        imp = r["import_blosc2_s"]
        print(
            f"\nimport blosc2: {imp['after numpy']:.3f} s after numpy, {imp['after prefect']:.3f} s after prefect"
            " (once per process, writer and reader)"
        )
        print(f"{'codes array, encode + decode':<48} {'zstd:3 s':>10} {'auto s':>12} {'saved s':>8}")
        for mb, row in r["breakeven"].items():
            print(
                f"{str(mb) + ' MiB':<48} {row['zstd:3']:>10.3f} {row['auto']:>12.3f} "
                f"{row['zstd:3'] - row['auto']:>8.3f}"
            )
    print(f"\n{'checksum of ' + str(a.size_mb) + ' MiB':<48} {'seconds':>10} {'MB/s':>12}")
    for k, v in r["checksums"].items():
        print(f"{k:<48} {v['seconds']:>10.3f} {v['mb_per_s']:>12.0f}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
