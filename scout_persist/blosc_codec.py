"""Blosc2 for fixed-width array data (an optional dependency, the ``arrays`` extra): when it pays, how a chunk is
encoded (bit-shuffle by item size, then LZ4, on all cores) and decoded into its buffer.  Every array payload uses it
through :mod:`scout_persist.envelope_parts`: NPY results, safetensors arrays, a pickle's out-of-band buffers."""

from __future__ import annotations

from typing import Any

from .checksums import corrupt_payload

ARRAYS_EXTRA = "pip install 'scout-persist[arrays]'"
# Blosc2 chunks (each encoded on all cores by Blosc2's own threads; one call holds < 2 GiB).
BLOSC2_CHUNK = 16 << 20
# Smaller array buffers use zstd frames: importing Blosc2 costs 0.05-0.17 s in a Prefect process and 0.16-0.31 s in
# a bare one, on the writer's side and again on the reader's, which is more than its speed saves on less than ~32
# MiB (bench/codec_choices.py: encode + decode of the codes array, zstd:3 frames minus Blosc2, saves 0.14 s at 16
# MiB, 0.18 s at 32 MiB, 0.41 s at 64 MiB; 2 busy cores, 2026-12-08).
BLOSC2_MIN = 32 << 20
# Inside Blosc2, after the bit-shuffle: LZ4 encodes 1.7-2.9x faster than zstd level 1 and decodes ~2x faster, for
# 0-5% more bytes on numeric arrays (bench/codec_choices.py); the bitshuffle HDF5 filter makes the same choice.
BLOSC2_INNER = "lz4"
BLOSC2_LEVEL = 5
# What a stored part may name (a reader accepts every choice a writer could have made).
INNER_CODECS = ("zstd", "lz4", "blosclz")
FILTERS = ("bitshuffle", "shuffle", "nofilter")


def load() -> Any:  # the blosc2 module (no type stubs), or None
    """The blosc2 module, or None when it is not installed."""
    try:
        import blosc2  # optional (arrays extra): loaded for array payloads only
    except ImportError:
        return None
    return blosc2


def encode_chunk(blosc2: Any, piece: memoryview, parsed: tuple[Any, ...], threads: int) -> bytes:
    """The stored bytes of ``piece`` under ``parsed`` (``("blosc2", inner, level, filter, typesize)``)."""
    _, inner, level, filt, typesize = parsed
    stored: bytes = blosc2.compress2(
        piece,
        codec=getattr(blosc2.Codec, inner.upper()),
        clevel=level,
        filters=[getattr(blosc2.Filter, filt.upper())],
        typesize=typesize,
        nthreads=threads,
    )
    return stored


def decode_into(blosc2: Any, src: memoryview, dst: memoryview, threads: int, where: str) -> None:
    """Decode the chunk ``src`` into ``dst`` (exactly its size); CorruptPayloadError naming ``where`` on damage."""
    # Blosc2 writes as many bytes as the chunk header says, whatever dst holds: check them first.
    try:
        nbytes, cbytes, _ = blosc2.get_cbuffer_sizes(src)
    except (ValueError, RuntimeError) as exc:
        raise corrupt_payload(where, f"a blosc2 chunk header is damaged ({exc})") from exc
    if nbytes != dst.nbytes or cbytes != src.nbytes:
        raise corrupt_payload(
            where,
            f"a blosc2 chunk says {nbytes} plain / {cbytes} stored bytes where "
            f"{dst.nbytes} / {src.nbytes} were recorded",
        )
    try:
        blosc2.decompress2(src, dst=dst, nthreads=threads)
    except (ValueError, RuntimeError) as exc:
        raise corrupt_payload(where, f"a blosc2 chunk is damaged ({exc})") from exc
