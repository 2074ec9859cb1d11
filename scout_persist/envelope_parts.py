"""The parts of a pickle envelope (version 3): the pickle stream and its out-of-band buffers, each encoded by a codec
named with its parameters (``none``, ``zstd:3``, ``blosc2:lz4:5:bitshuffle:8``) in chunks coded on all cores.

Under ``auto``, fixed-width array data goes through Blosc2 (:mod:`scout_persist.blosc_codec`); other large parts are
cut into independent zstd frames (:mod:`scout_persist.zstd_codec`); small or incompressible parts are stored plain.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from . import blosc_codec
from .checksums import Hasher, corrupt_payload, flat_view
from .codec_spec import AUTO_ZSTD_LEVEL, parse_spec
from .errors import MissingDependencyError
from .zstd_codec import zstd_frame, zstd_into

if TYPE_CHECKING:
    from typing_extensions import Buffer

_T = TypeVar("_T")

# Independent zstd frames of this many plain bytes: a large part is encoded and decoded on all cores.
ZSTD_FRAME = 4 << 20
# Under 'auto', parts smaller than this are stored plain.
AUTO_MIN = 4 << 10
# Under 'auto', a part whose first chunk encodes to more than this share of its size is stored plain.
INCOMPRESSIBLE = 0.9
# Decoded parts of this size or more get a memory mapping of their own (see _new_buffer).
MAPPED_MIN = 1 << 20


@dataclass
class EncodedParts:
    """Parts encoded for storage: ``header`` describes each part (codec with parameters, plain size, plain
    bytes per chunk, stored bytes of each chunk); ``pieces`` are the stored chunks in order."""

    header: list[dict[str, Any]] = field(default_factory=list)
    pieces: list[bytes | memoryview] = field(default_factory=list)

    @property
    def codec(self) -> str:
        """The record's ``codec``: each part's codec with its parameters, in part order, comma-separated."""
        return ",".join(p["codec"] for p in self.header)

    @property
    def size(self) -> int:
        return sum(p["size"] for p in self.header)


def _cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def part_codec(spec: str | None, nbytes: int, itemsize: int = 1) -> str:
    """The codec (with parameters) that ``spec`` gives a part of ``nbytes`` bytes made of ``itemsize``-byte items.

    ``auto``: Blosc2 (LZ4 level 5 after a bit-shuffle by item size) for fixed-width data of 32 MiB or more,
    zstd:3 for the rest, and zstd:3 for everything when Blosc2 is not installed; parts under 4 KiB are stored
    plain (less than a file system block to gain, and no codec to import when reading).
    """
    codec, level = parse_spec(spec)
    if codec == "none" or (codec == "auto" and nbytes < AUTO_MIN):
        return "none"
    if codec == "zstd":
        return f"zstd:{level}"
    if 2 <= itemsize <= 255 and nbytes >= blosc_codec.BLOSC2_MIN and blosc_codec.load() is not None:
        return f"blosc2:{blosc_codec.BLOSC2_INNER}:{blosc_codec.BLOSC2_LEVEL}:bitshuffle:{itemsize}"
    return f"zstd:{AUTO_ZSTD_LEVEL}"


def _parse_part_codec(text: Any, where: str) -> tuple[Any, ...]:
    """``("none",)``, ``("zstd", level)`` or ``("blosc2", inner, level, filter, typesize)``."""
    fields = text.split(":") if isinstance(text, str) else []
    try:
        if fields == ["none"]:
            return ("none",)
        if len(fields) == 2 and fields[0] == "zstd" and 1 <= int(fields[1]) <= 22:
            return ("zstd", int(fields[1]))
        if (
            len(fields) == 5
            and fields[0] == "blosc2"
            and fields[1] in blosc_codec.INNER_CODECS
            and 0 <= int(fields[2]) <= 9
            and fields[3] in blosc_codec.FILTERS
            and 1 <= int(fields[4]) <= 255
        ):
            return ("blosc2", fields[1], int(fields[2]), fields[3], int(fields[4]))
    except ValueError:
        pass
    raise corrupt_payload(
        where,
        f"a part names the codec {text!r:.60}, unknown to this scout-persist (written by a newer "
        "version?); upgrade scout-persist or recompute the entry",
    )


def _chunk_size(codec: str, size: int) -> int:
    parsed = _parse_part_codec(codec, "")
    if parsed[0] == "zstd":
        return ZSTD_FRAME
    if parsed[0] == "blosc2":
        typesize: int = parsed[4]
        return max(blosc_codec.BLOSC2_CHUNK // typesize, 1) * typesize
    return max(size, 1)


def _run(jobs: Sequence[Callable[[], _T]], threads: int) -> list[_T]:
    """Call each job (a no-argument function) on up to ``threads`` threads; results in order."""
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def encode_parts(
    buffers: Sequence[Buffer],
    itemsizes: Sequence[int] | None = None,
    spec: str | None = None,
    digest: Hasher | None = None,
) -> EncodedParts:
    """Encode ``buffers`` (any contiguous buffers; read in place, never copied) by ``spec`` (see
    :func:`part_codec`; ``None`` reads ``$SCOUT_PERSIST_COMPRESSION``). ``itemsizes`` are the bytes per item of
    each buffer (8 for float64 array data; 1, the default, for opaque bytes).  ``digest`` (a checksum hasher) is
    fed the stored chunks in order, each as it is made while no earlier one is still being encoded: the checksum
    of the stored bytes costs no pass of its own over them.

    Under ``auto`` a part whose first chunk shrinks by less than a tenth is stored plain instead (recorded as
    ``none``): random-looking data costs encode and decode time for next to no space."""
    auto = parse_spec(spec)[0] == "auto"  # a bad spec fails here, naming the variable
    itemsizes = list(itemsizes) if itemsizes is not None else [1] * len(buffers)
    threads = _cores()
    out = EncodedParts()
    # (part, chunk index, piece index, job): frames encoded on all cores at the end
    zstd_jobs: list[tuple[dict[str, Any], int, int, Callable[[], bytes]]] = []
    hashed = 0  # pieces fed to digest so far (the rest wait for the zstd frames before them)
    for buffer, itemsize in zip(buffers, itemsizes):
        view = flat_view(buffer)
        size = view.nbytes
        codec = part_codec(spec, size, itemsize)
        encode = _chunk_encoder(codec, threads)
        chunk = _chunk_size(codec, size)
        first = encode(view[:chunk]) if encode is not None and size else None
        if auto and first is not None and len(first) > INCOMPRESSIBLE * min(chunk, size):
            codec, encode, chunk, first = "none", None, max(size, 1), None
        part: dict[str, Any] = {"codec": codec, "size": size, "chunk": chunk, "stored": []}
        out.header.append(part)
        for j, start in enumerate(range(0, size, chunk)):
            piece = view[start : start + chunk]
            stored: bytes | memoryview
            if encode is None:  # plain: the value's own memory, copied once when the envelope is joined
                stored = piece
            elif j == 0:
                assert first is not None  # encoded above: this part has bytes and a codec
                stored = first
            elif codec.startswith("zstd:"):
                stored = b""
                zstd_jobs.append((part, j, len(out.pieces), partial(encode, piece)))
            else:  # Blosc2 runs its own threads on each chunk
                stored = encode(piece)
            part["stored"].append(len(stored))
            out.pieces.append(stored)
            if digest is not None and not zstd_jobs:
                digest.update(stored)
                hashed += 1
    for (part, j, k, _), frame in zip(zstd_jobs, _run([job for *_, job in zstd_jobs], threads)):
        part["stored"][j] = len(frame)
        out.pieces[k] = frame
    if digest is not None:
        for waited in out.pieces[hashed:]:
            digest.update(waited)
    return out


def _chunk_encoder(codec: str, threads: int) -> Callable[[memoryview], bytes] | None:
    """``piece -> stored bytes`` for ``codec``; None for plain parts."""
    parsed = _parse_part_codec(codec, "")
    if parsed[0] == "zstd":
        return lambda piece: zstd_frame(piece, parsed[1])
    if parsed[0] == "blosc2":
        blosc2 = blosc_codec.load()
        return lambda piece: blosc_codec.encode_chunk(blosc2, piece, parsed, threads)
    return None


def _check_header(header: Any, payload_size: int, where: str) -> list[tuple[tuple[Any, ...], str, int, int, list[int]]]:
    """``(parsed codec, codec, size, chunk, stored sizes)`` per part after checking that the header is
    coherent and accounts for exactly ``payload_size`` stored bytes."""
    if not isinstance(header, list) or not header:
        raise corrupt_payload(where, "the envelope header lists no parts")
    parts, total = [], 0
    for i, p in enumerate(header):
        size: Any  # read from the header, checked below
        chunk: Any
        ok = isinstance(p, dict) and isinstance(p.get("stored"), list)
        size, chunk = (p.get("size"), p.get("chunk")) if ok else (None, None)
        ok = ok and all(type(x) is int and x >= 0 for x in (size, chunk, *p["stored"])) and chunk >= 1
        if not ok or len(p["stored"]) != -(-size // chunk):
            raise corrupt_payload(where, f"the envelope header of part {i} is damaged ({p!s:.120})")
        parsed = _parse_part_codec(p.get("codec"), where)
        if parsed[0] == "none" and p["stored"] != [min(chunk, size - s) for s in range(0, size, chunk)]:
            raise corrupt_payload(where, f"part {i} is stored plain but its stored sizes differ from its plain sizes")
        total += sum(p["stored"])
        parts.append((parsed, p["codec"], size, chunk, p["stored"]))
    if total != payload_size:
        raise corrupt_payload(
            where,
            f"the envelope header accounts for {total} stored bytes but {payload_size} are there "
            "(truncated or damaged)",
        )
    return parts


def decode_parts(
    header: Any, payload: Buffer, where: str = "", into: Sequence[Buffer | None] | None = None
) -> list[memoryview]:
    """The plain bytes of each part described by ``header`` (from :func:`encode_parts`) whose stored chunks are
    ``payload``, each in a new writable buffer of its own (aligned for array data), or decoded straight into the
    buffer ``into`` gives for it (a writable contiguous buffer of exactly the part's size, e.g. ``np.empty``'s; None
    for a new one): no copy afterwards.

    A header that does not match the payload, a chunk that does not decode to its recorded size, or a zstd frame
    whose content checksum fails raises CorruptPayloadError naming ``where``; a part that needs Blosc2 without
    it installed raises MissingDependencyError.
    """
    stored_bytes = flat_view(payload)
    parts = _check_header(header, stored_bytes.nbytes, where)
    targets = list(into) if into is not None else [None] * len(parts)
    if len(targets) != len(parts):
        raise corrupt_payload(where, f"{len(parts)} parts are stored where {len(targets)} were expected")
    outs: list[memoryview] = []
    zstd_jobs: list[Callable[[], None]] = []
    blosc2_jobs: list[tuple[memoryview, memoryview, str]] = []
    pos = 0
    for (parsed, codec, size, chunk, stored), target in zip(parts, targets):
        out = memoryview(_new_buffer(size)) if target is None else _destination(target, size, where)
        outs.append(out)
        for j, n in enumerate(stored):
            src, dst = stored_bytes[pos : pos + n], out[j * chunk : min((j + 1) * chunk, size)]
            pos += n
            if parsed[0] == "none":
                dst[:] = src
            elif parsed[0] == "zstd":
                zstd_jobs.append(partial(zstd_into, src, dst, where))
            else:
                blosc2_jobs.append((src, dst, codec))
    if blosc2_jobs:
        blosc2 = blosc_codec.load()
        if blosc2 is None:
            raise MissingDependencyError(
                f"payload {where or '<unnamed>'} has a part encoded with {blosc2_jobs[0][2]!r}, which needs the "
                f"blosc2 package; install it: {blosc_codec.ARRAYS_EXTRA}"
            )
        threads = _cores()
        for src, dst, _ in blosc2_jobs:
            blosc_codec.decode_into(blosc2, src, dst, threads, where)
    _run(zstd_jobs, _cores())
    return outs


def _destination(target: Buffer, size: int, where: str) -> memoryview:
    """``target`` as a flat writable view of exactly ``size`` bytes; CorruptPayloadError when the stored part has
    another size than the value it decodes into (its record says so)."""
    view = flat_view(target)
    if view.readonly:
        raise ValueError("decode_parts writes into its destination buffers: pass writable ones")
    if view.nbytes != size:
        raise corrupt_payload(where, f"a part holds {size} plain bytes where {view.nbytes} were recorded")
    return view


def _new_buffer(size: int) -> bytearray | mmap.mmap:
    """A writable buffer of ``size`` bytes for decoded data.  Large ones are private anonymous mappings: page
    aligned, and not zeroed by a pass of their own (the kernel hands out zero pages as the decoder first writes
    them, on all its threads), which a bytearray would do first."""
    if size < MAPPED_MIN or not hasattr(mmap, "MAP_PRIVATE"):
        return bytearray(size)
    mapped = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):  # as numpy does for its large arrays: far fewer page faults
        try:
            mapped.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return mapped
