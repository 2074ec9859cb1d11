"""The measurements behind the codec and checksum choice: raw library speeds on this machine, in one process.

Not part of ``make bench`` (which measures the whole layer against other systems); run it to re-check the
choice on new hardware: ``python bench/codec_choices.py [--size-mb 200] [--repeat 3]``.  Each number is the
median of ``--repeat`` runs; the arrays are the large-result benchmark's array (int64 codes + noise) and a
float64 array of random noise (the hard case).  Libraries that are not installed are skipped.
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
            pieces = [view[i:i + frame] for i in range(0, len(view), frame)]
            return list(pool.map(lambda p: zstandard.ZstdCompressor(level=level).compress(p), pieces))

        def d(chunks, dst):
            def one(i):
                dst[i * frame:(i + 1) * frame] = zstandard.ZstdDecompressor().decompress(chunks[i])
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
                return [blosc2.compress2(view[i:i + chunk], **cp) for i in range(0, len(view), chunk)]

            def d(chunks, dst):
                off = 0
                for ch in chunks:
                    n = blosc2.get_cbuffer_sizes(ch)[0]
                    blosc2.decompress2(ch, dst=dst[off:off + n], nthreads=threads)
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
    print(f"\n{'checksum of ' + str(a.size_mb) + ' MiB':<48} {'seconds':>10} {'MB/s':>12}")
    for k, v in r["checksums"].items():
        print(f"{k:<48} {v['seconds']:>10.3f} {v['mb_per_s']:>12.0f}")
    if a.json:
        a.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
