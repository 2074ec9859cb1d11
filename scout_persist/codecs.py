"""Payload codecs and checksums: zstd, Blosc2 (arrays), gzip (read only) and plain; one checksum API.

A compressed payload describes itself twice: zstd frames carry their own content checksum, and the writer
returns a *record* for the job's ``.info``::

    {"codec": "zstd", "level": 3, "size": <plain bytes>, "stored_size": <stored bytes>,
     "checksum": "blake3:<hex digest of the stored bytes>"}

The checksum covers the bytes as stored (after compression), so a damaged file is detected before it is
decoded and a plain payload is covered as well. Damage (truncation, a flipped byte, a record that does not
match) raises :class:`CorruptPayloadError` naming the payload; wrong data is never returned.

Checksums: :func:`checksum` writes ``blake3:<hex>`` (``sha256:<hex>`` when the blake3 package is missing);
:func:`checksum_matches` reads both, so records written before blake3 keep verifying.

*Parts* (:func:`encode_parts` / :func:`decode_parts`) are the buffers of a pickle envelope, each encoded by a codec
named with its parameters (``none``, ``zstd:3``, ``blosc2:lz4:5:bitshuffle:8``): fixed-width array data goes
through Blosc2 (bit-shuffle, then LZ4, on all cores) under ``auto``; other large parts are cut into independent
zstd frames encoded and decoded on all cores.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import mmap
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, cast

from . import settings
from .errors import CorruptPayloadError, InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    import zstandard
    from typing_extensions import Buffer

_T = TypeVar("_T")


class Hasher(Protocol):
    """What :func:`new_checksum` returns: hashlib's sha256 or a blake3 hasher."""

    def update(self, data: Buffer, /) -> object: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


ENV_VAR = settings.COMPRESSION.name
DEFAULT_SPEC = "auto"
SPEC_HELP = "'auto' (the default), 'zstd', 'zstd:<level 1-22>' (e.g. 'zstd:19') or 'none'"
# What 'auto' gives bytes that are not fixed-width array data, and what it falls back to without Blosc2.
AUTO_ZSTD_LEVEL = 3
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
# Below this many bytes a payload is compressed on one thread: starting workers costs more than it saves.
MULTITHREAD_MIN = 4 << 20
CHECKSUM_ALGORITHM = "blake3"  # written when the blake3 package is installed (a dependency)
FALLBACK_CHECKSUM = "sha256"  # written without it; also every record written before blake3
CHECKSUM_SIZE = 32  # bytes of a digest, both algorithms
# Below this many bytes blake3 hashes on one thread: starting workers costs more than it saves.
THREADED_HASH_MIN = 4 << 20
ARRAYS_EXTRA = "pip install 'scout-persist[arrays]'"


# -- specs ----------------------------------------------------------------------
def parse_spec(spec: str | None = None) -> tuple[str, int | None]:
    """``"zstd:3"`` -> ``("zstd", 3)``, ``"zstd"`` -> ``("zstd", 3)``, ``"none"`` -> ``("none", None)``,
    ``"auto"`` -> ``("auto", None)``.

    ``None`` reads ``$SCOUT_PERSIST_COMPRESSION`` (default ``auto``: Blosc2 for array data, zstd:3 for the rest).
    """
    source = "compression spec"
    if spec is None:
        spec = settings.compression() or DEFAULT_SPEC
        source = f"${ENV_VAR}"
    if not isinstance(spec, str):
        raise InvalidInputError(f"{source} {spec!r} is a {type(spec).__name__}; use a string: {SPEC_HELP}")
    text = spec.strip().lower()
    if text in ("none", "plain", "off"):
        return "none", None
    if text == "auto":
        return "auto", None
    codec, _, level_text = text.partition(":")
    if codec != "zstd":
        raise InvalidInputError(f"{source} {spec!r} names an unknown codec {codec!r}; use {SPEC_HELP}")
    if not level_text:
        return "zstd", 3
    try:
        level = int(level_text)
    except ValueError:
        level = 0
    if not 1 <= level <= 22:
        raise InvalidInputError(
            f"{source} {spec!r} has zstd level {level_text!r}; zstd levels are integers 1-22 (e.g. 'zstd:19'); "
            f"use {SPEC_HELP}"
        )
    return "zstd", level


def _bytes_codec(spec: str | None) -> tuple[str, int | None]:
    """The codec of an opaque byte payload (no item size to shuffle by): ``auto`` is zstd:3."""
    codec, level = parse_spec(spec)
    return ("zstd", AUTO_ZSTD_LEVEL) if codec == "auto" else (codec, level)


# -- checksums ----------------------------------------------------------------------
def _blake3() -> ModuleType | None:
    try:
        import blake3  # lazy: codec libraries load on first use, import scout_persist stays light
    except ImportError:
        return None
    return blake3


def checksum_algorithm() -> str:
    """The algorithm :func:`checksum` writes here: ``blake3``, or ``sha256`` without the blake3 package."""
    return CHECKSUM_ALGORITHM if _blake3() is not None else FALLBACK_CHECKSUM


def new_checksum(algorithm: str | None = None, size_hint: int = 0) -> Hasher:
    """An incremental hasher (``update``, ``digest``, ``hexdigest``, ``copy``) for streams.

    ``algorithm`` is ``blake3`` or ``sha256`` (default: :func:`checksum_algorithm`); ``size_hint`` (bytes to
    come) lets blake3 hash large inputs on all cores.
    """
    algorithm = algorithm or checksum_algorithm()
    if algorithm == FALLBACK_CHECKSUM:
        return hashlib.sha256()
    if algorithm != CHECKSUM_ALGORITHM:
        raise InvalidInputError(
            f"checksum algorithm {algorithm!r} is unknown; scout-persist checksums are "
            f"'{CHECKSUM_ALGORITHM}:<hex>' or '{FALLBACK_CHECKSUM}:<hex>'"
        )
    blake3 = _blake3()
    if blake3 is None:
        raise MissingDependencyError(
            "this checksum is blake3 but the blake3 package is not installed; install it: pip install blake3 "
            "(a dependency of scout-persist: pip install scout-persist installs it)"
        )
    threads = blake3.blake3.AUTO if size_hint >= THREADED_HASH_MIN else 1
    hasher: Hasher = blake3.blake3(max_threads=threads)
    return hasher


def _bytes_view(data: Any) -> memoryview:
    """``data`` as a flat byte view (no copy), whatever its item format; TypeError when it has no contiguous bytes."""
    if isinstance(data, str):
        raise TypeError("checksum() takes bytes, bytearray or memoryview, not str; encode the text first")
    try:
        view = _flat(data)
        if not view.c_contiguous:
            raise BufferError("this one is strided")
    except (TypeError, ValueError, BufferError) as exc:
        raise TypeError(f"checksum() needs a contiguous buffer (bytes, bytearray, memoryview); {exc}") from exc
    return view


def checksum(data: Any) -> str:
    """``"<algorithm>:<hex>"`` of ``data`` (bytes, bytearray, memoryview; hashed in place, no copy)."""
    view = _bytes_view(data)
    h = new_checksum(size_hint=view.nbytes)
    h.update(view)
    return f"{checksum_algorithm()}:{h.hexdigest()}"


def parse_checksum(expected: Any) -> tuple[str, str]:
    """``(algorithm, hex)`` of a recorded checksum; InvalidInputError naming it when it is not one."""
    text = expected if isinstance(expected, str) else ""
    algorithm, _, value = text.partition(":")
    value = value.lower()
    if (
        algorithm not in (CHECKSUM_ALGORITHM, FALLBACK_CHECKSUM)
        or len(value) != 2 * CHECKSUM_SIZE
        or value.strip("0123456789abcdef")
    ):
        raise InvalidInputError(
            f"recorded checksum {expected!r:.90} is not '<algorithm>:<{2 * CHECKSUM_SIZE} hex digits>' with a known "
            f"algorithm ({CHECKSUM_ALGORITHM}, {FALLBACK_CHECKSUM}); the record was not written by scout-persist "
            "or is damaged: recompute the entry"
        )
    return algorithm, value


def checksum_matches(expected: str, data: Any) -> bool:
    """Whether ``data`` has the recorded checksum ``expected`` (``blake3:<hex>`` or ``sha256:<hex>``).

    A malformed or unknown ``expected`` raises InvalidInputError (it cannot be checked, which is not the same as a
    mismatch); a blake3 checksum without the blake3 package raises MissingDependencyError.
    """
    algorithm, value = parse_checksum(expected)
    view = _bytes_view(data)
    h = new_checksum(algorithm, view.nbytes)
    h.update(view)
    return hmac.compare_digest(h.hexdigest(), value)


def detect(head: bytes | memoryview) -> str:
    """The codec of a payload from its first bytes: ``"zstd"``, ``"gzip"`` or ``"none"``."""
    if len(head) >= 2 and ZSTD_MAGIC.startswith(head[:4]):
        # Two or three bytes of the magic are a zstd payload cut short (no text or pickle starts "(\xb5").
        return "zstd"
    if len(head) >= 4 and sum(a == b for a, b in zip(head[:4], ZSTD_MAGIC)) == 3:
        # One damaged magic byte: still zstd (the frame walker reports it). Neither UTF-8 text nor pickle
        # can hold three of "\x28\xb5\x2f\xfd" in place.
        return "zstd"
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    return "none"


def _compressor(level: int, size_hint: int) -> zstandard.ZstdCompressor:
    import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

    threads = -1 if size_hint >= MULTITHREAD_MIN else 0
    return zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)


# -- whole payloads ---------------------------------------------------------------
def compress(data: bytes | bytearray | memoryview, spec: str | None = None) -> bytes:
    """``data`` encoded by ``spec`` (zstd frame with content checksum, or unchanged for ``none``)."""
    return compress_with_record(data, spec)[0]


def compress_with_record(data: bytes | bytearray | memoryview, spec: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """``(stored bytes, record)``: the record is what the job's ``.info`` keeps about the payload."""
    codec, level = _bytes_codec(spec)
    if codec == "none":
        stored = bytes(data)
    else:
        assert level is not None  # zstd has a level
        stored = _compressor(level, len(data)).compress(data)
    record = {
        "codec": codec,
        "level": level,
        "size": len(data),
        "stored_size": len(stored),
        "checksum": checksum(stored),
    }
    return stored, record


def decompress(data: bytes | memoryview, where: str = "", record: dict[str, Any] | None = None) -> bytes:
    """The plain bytes of a zstd, gzip or plain payload; CorruptPayloadError naming ``where`` on damage.

    With ``record`` (from :func:`compress_with_record` / :func:`compress_stream`), sizes and the checksum of
    the stored bytes are verified too.
    """
    if record is not None:
        _verify_stored(record, len(data), data, where)
    codec = detect(data[:4])
    if record is not None and record.get("codec") not in (None, codec):
        raise _corrupt(where, f"the record says codec {record.get('codec')!r} but the bytes are {codec}")
    if codec == "none":
        plain = bytes(data)
    elif codec == "gzip":
        try:
            plain = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise _corrupt(where, f"gzip stream is damaged ({exc})") from exc
    else:
        frames = _ZstdFrames(where)
        frames.feed(data)
        frames.finish()
        plain = _zstd_decode_all(data, where)
    if record is not None and record.get("size") is not None and record["size"] != len(plain):
        raise _corrupt(where, f"decodes to {len(plain)} bytes but the record says {record['size']}")
    return plain


def decompress_into(payload: bytes | memoryview, size: int, where: str = "") -> memoryview:
    """Decode ``payload`` (zstd or plain) into one new writable buffer of exactly ``size`` bytes.

    A payload that decodes to another size, or whose zstd content checksum fails, raises CorruptPayloadError.
    """
    out = bytearray(size)
    view = memoryview(out)
    if detect(bytes(payload[:4])) == "none":
        if len(payload) != size:
            raise _corrupt(where, f"holds {len(payload)} bytes where {size} were recorded")
        view[:] = payload
        return view
    _zstd_into(memoryview(payload), view, where)
    return view


def _zstd_decode_all(data: bytes | memoryview, where: str) -> bytes:
    import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

    parts = []
    rest: bytes | memoryview = data
    try:
        while rest:
            obj = zstandard.ZstdDecompressor().decompressobj()
            parts.append(obj.decompress(rest))
            rest = obj.unused_data
    except zstandard.ZstdError as exc:
        raise _corrupt(where, f"zstd frame is damaged ({exc})") from exc
    return b"".join(parts)


# -- parts: the buffers of a pickle envelope (version 3) ----------------------------------------------
# Independent zstd frames of this many plain bytes: a large part is encoded and decoded on all cores.
ZSTD_FRAME = 4 << 20
# Blosc2 chunks (each encoded on all cores by Blosc2's own threads; one call holds < 2 GiB).
BLOSC2_CHUNK = 16 << 20
# Smaller array buffers use zstd: importing Blosc2 costs ~0.05 s in a Prefect process and ~0.16 s in a bare one, on
# the writer's side and again on the reader's, which is more than its speed saves on less than ~32 MiB (measured on
# fresh processes, bench/large_result.py with a smaller size).
BLOSC2_MIN = 32 << 20
# Inside Blosc2, after the bit-shuffle: LZ4 encodes 1.7-2.9x faster than zstd level 1 and decodes ~2x faster, for
# 0-5% more bytes on numeric arrays (bench/codec_choices.py); the bitshuffle HDF5 filter makes the same choice.
BLOSC2_INNER = "lz4"
BLOSC2_LEVEL = 5
# Under 'auto', parts smaller than this are stored plain.
AUTO_MIN = 4 << 10
# Under 'auto', a part whose first chunk encodes to more than this share of its size is stored plain.
INCOMPRESSIBLE = 0.9
# Decoded parts of this size or more get a memory mapping of their own (see _new_buffer).
MAPPED_MIN = 1 << 20
_BLOSC2_INNER = ("zstd", "lz4", "blosclz")
_BLOSC2_FILTERS = ("bitshuffle", "shuffle", "nofilter")


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


def _blosc2() -> Any:  # the blosc2 module (no type stubs), or None
    try:
        import blosc2  # optional (arrays extra): loaded for array payloads only
    except ImportError:
        return None
    return blosc2


def _flat(buffer: Buffer) -> memoryview:
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


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
    if 2 <= itemsize <= 255 and nbytes >= BLOSC2_MIN and _blosc2() is not None:
        return f"blosc2:{BLOSC2_INNER}:{BLOSC2_LEVEL}:bitshuffle:{itemsize}"
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
            and fields[1] in _BLOSC2_INNER
            and 0 <= int(fields[2]) <= 9
            and fields[3] in _BLOSC2_FILTERS
            and 1 <= int(fields[4]) <= 255
        ):
            return ("blosc2", fields[1], int(fields[2]), fields[3], int(fields[4]))
    except ValueError:
        pass
    raise _corrupt(
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
        return max(BLOSC2_CHUNK // typesize, 1) * typesize
    return max(size, 1)


def _run(jobs: Sequence[Callable[[], _T]], threads: int) -> list[_T]:
    """Call each job (a no-argument function) on up to ``threads`` threads; results in order."""
    if threads <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]

    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def encode_parts(
    buffers: Sequence[Buffer], itemsizes: Sequence[int] | None = None, spec: str | None = None
) -> EncodedParts:
    """Encode ``buffers`` (any contiguous buffers; read in place, never copied) by ``spec`` (see
    :func:`part_codec`; ``None`` reads ``$SCOUT_PERSIST_COMPRESSION``). ``itemsizes`` are the bytes per item of
    each buffer (8 for float64 array data; 1, the default, for opaque bytes).

    Under ``auto`` a part whose first chunk shrinks by less than a tenth is stored plain instead (recorded as
    ``none``): random-looking data costs encode and decode time for next to no space."""
    auto = parse_spec(spec)[0] == "auto"  # a bad spec fails here, naming the variable
    itemsizes = list(itemsizes) if itemsizes is not None else [1] * len(buffers)
    threads = _cores()
    out = EncodedParts()
    # (part, chunk index, piece index, job): frames encoded on all cores at the end
    zstd_jobs: list[tuple[dict[str, Any], int, int, Callable[[], bytes]]] = []
    for buffer, itemsize in zip(buffers, itemsizes):
        view = _flat(buffer)
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
    for (part, j, k, _), frame in zip(zstd_jobs, _run([job for *_, job in zstd_jobs], threads)):
        part["stored"][j] = len(frame)
        out.pieces[k] = frame
    return out


def _chunk_encoder(codec: str, threads: int) -> Callable[[memoryview], bytes] | None:
    """``piece -> stored bytes`` for ``codec``; None for plain parts."""
    parsed = _parse_part_codec(codec, "")
    if parsed[0] == "zstd":
        return lambda piece: _zstd_frame(piece, parsed[1])
    if parsed[0] == "blosc2":
        blosc2 = _blosc2()
        return lambda piece: _blosc2_chunk(blosc2, piece, parsed, threads)
    return None


def _zstd_frame(piece: memoryview, level: int) -> bytes:
    import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(piece)


def _blosc2_chunk(blosc2: Any, piece: memoryview, parsed: tuple[Any, ...], threads: int) -> bytes:
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


def _check_header(header: Any, payload_size: int, where: str) -> list[tuple[tuple[Any, ...], str, int, int, list[int]]]:
    """``(parsed codec, codec, size, chunk, stored sizes)`` per part after checking that the header is
    coherent and accounts for exactly ``payload_size`` stored bytes."""
    if not isinstance(header, list) or not header:
        raise _corrupt(where, "the envelope header lists no parts")
    parts, total = [], 0
    for i, p in enumerate(header):
        size: Any  # read from the header, checked below
        chunk: Any
        ok = isinstance(p, dict) and isinstance(p.get("stored"), list)
        size, chunk = (p.get("size"), p.get("chunk")) if ok else (None, None)
        ok = ok and all(type(x) is int and x >= 0 for x in (size, chunk, *p["stored"])) and chunk >= 1
        if not ok or len(p["stored"]) != -(-size // chunk):
            raise _corrupt(where, f"the envelope header of part {i} is damaged ({p!s:.120})")
        parsed = _parse_part_codec(p.get("codec"), where)
        if parsed[0] == "none" and p["stored"] != [min(chunk, size - s) for s in range(0, size, chunk)]:
            raise _corrupt(where, f"part {i} is stored plain but its stored sizes differ from its plain sizes")
        total += sum(p["stored"])
        parts.append((parsed, p["codec"], size, chunk, p["stored"]))
    if total != payload_size:
        raise _corrupt(
            where,
            f"the envelope header accounts for {total} stored bytes but {payload_size} are there "
            "(truncated or damaged)",
        )
    return parts


def decode_parts(header: Any, payload: Buffer, where: str = "") -> list[memoryview]:
    """The plain bytes of each part described by ``header`` (from :func:`encode_parts`) whose stored chunks are
    ``payload``, each in a new writable buffer of its own (aligned for array data).

    A header that does not match the payload, a chunk that does not decode to its recorded size, or a zstd frame
    whose content checksum fails raises CorruptPayloadError naming ``where``; a part that needs Blosc2 without
    it installed raises MissingDependencyError.
    """
    stored_bytes = _flat(payload)
    parts = _check_header(header, stored_bytes.nbytes, where)
    outs: list[memoryview] = []
    zstd_jobs: list[Callable[[], None]] = []
    blosc2_jobs: list[tuple[memoryview, memoryview, str]] = []
    pos = 0
    for parsed, codec, size, chunk, stored in parts:
        out = memoryview(_new_buffer(size))
        outs.append(out)
        for j, n in enumerate(stored):
            src, dst = stored_bytes[pos : pos + n], out[j * chunk : min((j + 1) * chunk, size)]
            pos += n
            if parsed[0] == "none":
                dst[:] = src
            elif parsed[0] == "zstd":
                zstd_jobs.append(partial(_zstd_into, src, dst, where))
            else:
                blosc2_jobs.append((src, dst, codec))
    if blosc2_jobs:
        blosc2 = _blosc2()
        if blosc2 is None:
            raise MissingDependencyError(
                f"payload {where or '<unnamed>'} has a part encoded with {blosc2_jobs[0][2]!r}, which needs the "
                f"blosc2 package; install it: {ARRAYS_EXTRA}"
            )
        threads = _cores()
        for src, dst, _ in blosc2_jobs:
            _blosc2_into(blosc2, src, dst, threads, where)
    _run(zstd_jobs, _cores())
    return outs


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


def _zstd_into(src: memoryview, dst: memoryview, where: str) -> None:
    import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

    filled = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(src) as reader:
            while filled < dst.nbytes:
                n = reader.readinto(dst[filled:])
                if not n:
                    break
                filled += n
            extra = reader.read(1)  # reaching the frame end verifies zstd's content checksum
    except zstandard.ZstdError as exc:
        raise _corrupt(where, f"a zstd frame is damaged ({exc})") from exc
    if filled != dst.nbytes or extra:
        raise _corrupt(
            where,
            f"a zstd frame decodes to {'more than ' if extra else ''}{filled} bytes where {dst.nbytes} were recorded; "
            "truncated or damaged",
        )


def _blosc2_into(blosc2: Any, src: memoryview, dst: memoryview, threads: int, where: str) -> None:
    # Blosc2 writes as many bytes as the chunk header says, whatever dst holds: check them first.
    try:
        nbytes, cbytes, _ = blosc2.get_cbuffer_sizes(src)
    except (ValueError, RuntimeError) as exc:
        raise _corrupt(where, f"a blosc2 chunk header is damaged ({exc})") from exc
    if nbytes != dst.nbytes or cbytes != src.nbytes:
        raise _corrupt(
            where,
            f"a blosc2 chunk says {nbytes} plain / {cbytes} stored bytes where "
            f"{dst.nbytes} / {src.nbytes} were recorded",
        )
    try:
        blosc2.decompress2(src, dst=dst, nthreads=threads)
    except (ValueError, RuntimeError) as exc:
        raise _corrupt(where, f"a blosc2 chunk is damaged ({exc})") from exc


# -- streams -----------------------------------------------------------------------
def compress_stream(src: IO[bytes], dst: IO[bytes], spec: str | None = None) -> dict[str, Any]:
    """Copy ``src`` to ``dst`` encoded by ``spec``, in bounded memory; returns the payload record.

    Large inputs (the first read fills a whole chunk) are compressed on all cores.
    """
    codec, level = _bytes_codec(spec)
    digest = new_checksum(size_hint=THREADED_HASH_MIN)
    size = stored = 0

    def emit(block: bytes) -> None:
        nonlocal stored
        if block:
            dst.write(block)
            digest.update(block)
            stored += len(block)

    first = src.read(CHUNK)
    if codec == "none":
        chunk = first
        while chunk:
            size += len(chunk)
            emit(chunk)
            chunk = src.read(CHUNK)
    else:
        size_hint = MULTITHREAD_MIN if len(first) >= CHUNK else len(first)
        assert level is not None  # zstd has a level
        cobj = _compressor(level, size_hint).compressobj()
        chunk = first
        while chunk:
            size += len(chunk)
            emit(cobj.compress(chunk))
            chunk = src.read(CHUNK)
        emit(cobj.flush())
    return {
        "codec": codec,
        "level": level,
        "size": size,
        "stored_size": stored,
        "checksum": f"{checksum_algorithm()}:{digest.hexdigest()}",
    }


def open_decompressed(fh: IO[bytes], where: str = "", record: dict[str, Any] | None = None) -> BinaryIO:
    """A reader of the plain bytes of ``fh`` (zstd, gzip or plain, told by magic bytes), in bounded memory.

    Damage is raised as CorruptPayloadError naming ``where`` at the latest when the end is read, so a caller
    that reads to the end never takes truncated or altered data for the payload.
    """
    where = where or getattr(fh, "path", None) or getattr(fh, "name", None) or ""
    return io.BufferedReader(_DecodingReader(fh, str(where), record), buffer_size=CHUNK)


class _StoredSource(io.RawIOBase):
    """The stored bytes of a payload, re-joined after peeking at the magic, counted and hashed as they pass."""

    def __init__(
        self, fh: IO[bytes], head: bytes, observer: _ZstdFrames | None = None, digest: Hasher | None = None
    ) -> None:
        self.fh = fh
        self.head = head
        self.digest = digest
        self.count = 0
        self.observer = observer

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            data, self.head = (self.head, b"") if n < 0 or n >= len(self.head) else (self.head[:n], self.head[n:])
        else:
            data = self.fh.read() if n is None or n < 0 else self.fh.read(n)
        if data:
            if self.digest is not None:
                self.digest.update(data)
            self.count += len(data)
            if self.observer is not None:
                self.observer.feed(data)
        return data

    def readinto(self, buffer: Any) -> int:  # io's writable buffer (typeshed's has no item assignment)
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _DecodingReader(io.RawIOBase):
    def __init__(self, fh: IO[bytes], where: str, record: dict[str, Any] | None) -> None:
        self.where = where
        self.record = record
        self.produced = 0
        self.finished = False
        head = _read_exactly(fh, 4)
        self.codec = detect(head)
        if record is not None and record.get("codec") not in (None, self.codec):
            raise _corrupt(where, f"the record says codec {record.get('codec')!r} but the bytes are {self.codec}")
        self.frames = _ZstdFrames(where) if self.codec == "zstd" else None
        expected = record.get("checksum") if record is not None else None
        digest = new_checksum(parse_checksum(expected)[0], THREADED_HASH_MIN) if expected is not None else None
        self.source = _StoredSource(fh, head, self.frames, digest)
        self.inner: zstandard.ZstdDecompressionReader | gzip.GzipFile | _StoredSource
        self.errors: tuple[type[Exception], ...]
        if self.codec == "zstd":
            import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

            self.inner = zstandard.ZstdDecompressor().stream_reader(
                cast("IO[bytes]", self.source),
                read_size=CHUNK,
                read_across_frames=True,  # any object with read()
            )
            self.errors = (zstandard.ZstdError,)
        elif self.codec == "gzip":
            self.inner = gzip.GzipFile(fileobj=self.source, mode="rb")
            self.errors = (EOFError, OSError, zlib.error)
        else:
            self.inner = self.source
            self.errors = ()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # io's writable buffer (typeshed's has no item assignment)
        if self.finished:
            return 0
        try:
            data = self.inner.read(len(buffer))
        except CorruptPayloadError:
            raise
        except self.errors as exc:
            raise _corrupt(self.where, f"{self.codec} stream is damaged ({exc})") from exc
        if not data:
            self._finish()
            return 0
        self.produced += len(data)
        buffer[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        # Anything the decoder left unread is trailing garbage: pass it through the checks too.
        rest = self.source.read()
        while rest:
            if self.codec != "zstd":
                raise _corrupt(self.where, f"{len(rest)}+ unexpected bytes after the end of the {self.codec} stream")
            rest = self.source.read()
        if self.frames is not None:
            self.frames.finish()
        if self.record is not None:
            _verify_stored(self.record, self.source.count, self.source.digest, self.where)
            if self.record.get("size") is not None and self.record["size"] != self.produced:
                raise _corrupt(
                    self.where, f"decodes to {self.produced} bytes but the record says {self.record['size']}"
                )
        self.finished = True

    def close(self) -> None:
        try:
            if self.inner is not self.source:
                self.inner.close()
        finally:
            super().close()


def _read_exactly(fh: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = fh.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _verify_stored(
    record: dict[str, Any], stored_size: int, data_or_digest: bytes | bytearray | memoryview | Hasher | None, where: str
) -> None:
    """Size and checksum of the stored bytes against ``record``; ``data_or_digest`` is the bytes or a hasher
    already fed with them (of the record's algorithm)."""
    expected_size = record.get("stored_size")
    if expected_size is not None and expected_size != stored_size:
        raise _corrupt(where, f"holds {stored_size} bytes but the record says {expected_size} (truncated or replaced)")
    expected = record.get("checksum")
    if expected is None:
        return
    algorithm, value = parse_checksum(expected)
    if isinstance(data_or_digest, (bytes, bytearray, memoryview)):
        digest = new_checksum(algorithm, stored_size)
        digest.update(_bytes_view(data_or_digest))
    else:
        assert data_or_digest is not None  # a reader of a record with a checksum hashes what it reads
        digest = data_or_digest
    actual = digest.hexdigest()
    if not hmac.compare_digest(actual, value):
        raise _corrupt(where, f"{algorithm} of the stored bytes is {actual}, the record says {value}")


def _corrupt(where: str, reason: str) -> CorruptPayloadError:
    return CorruptPayloadError(
        f"payload {where or '<unnamed>'!s} is corrupt: {reason}; it was not returned. "
        "Delete the entry and recompute it, or restore it from a copy"
    )


class _ZstdFrames:
    """Follows zstd frame boundaries (RFC 8878) in a stream without decoding, to detect truncation.

    The zstd decoder stops quietly when its input ends mid-frame; this walker knows whether the last frame
    (blocks and content checksum) was complete.
    """

    def __init__(self, where: str):
        self.where = where
        self.state = "magic"
        self.need = 4
        self.buf = bytearray()
        self.skip = 0
        self.frames = 0
        self.has_checksum = False

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        i, n = 0, len(view)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                continue
            take = min(self.need - len(self.buf), n - i)
            self.buf += view[i : i + take]
            i += take
            if len(self.buf) == self.need:
                field = bytes(self.buf)
                self.buf.clear()
                self._advance(field)

    def _expect(self, state: str, need: int) -> None:
        self.state, self.need = state, need

    def _advance(self, field: bytes) -> None:
        if self.state == "magic":
            if field == ZSTD_MAGIC:
                self._expect("descriptor", 1)
            elif field[1:] == b"\x2a\x4d\x18" and field[0] & 0xF0 == 0x50:
                self._expect("skippable", 4)
            elif not self.frames:
                raise _corrupt(self.where, "zstd magic bytes are damaged")
            else:
                raise _corrupt(self.where, "bytes after a zstd frame are not another frame")
        elif self.state == "skippable":
            self.skip = int.from_bytes(field, "little")
            self._expect("magic", 4)
        elif self.state == "descriptor":
            fhd = field[0]
            if fhd & 0x08:
                raise _corrupt(self.where, "zstd frame header has its reserved bit set")
            single_segment = (fhd >> 5) & 1
            fcs_flag = fhd >> 6
            fcs_size = (single_segment, 2, 4, 8)[fcs_flag]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3] + fcs_size
            self.has_checksum = bool((fhd >> 2) & 1)
            if rest:
                self._expect("header", rest)
            else:
                self._expect("block", 3)
        elif self.state == "header":
            self._expect("block", 3)
        elif self.state == "block":
            header = int.from_bytes(field, "little")
            last, block_type, size = header & 1, (header >> 1) & 3, header >> 3
            if block_type == 3:
                raise _corrupt(self.where, "zstd block has the reserved type")
            self.skip = 1 if block_type == 1 else size
            if not last:
                self._expect("block", 3)
            elif self.has_checksum:
                self._expect("checksum", 4)
            else:
                self._end_frame()
        elif self.state == "checksum":
            self._end_frame()

    def _end_frame(self) -> None:
        self.frames += 1
        self._expect("magic", 4)

    def finish(self) -> None:
        if self.state != "magic" or self.buf or self.skip or not self.frames:
            raise _corrupt(self.where, "zstd stream ends inside a frame (truncated)")
