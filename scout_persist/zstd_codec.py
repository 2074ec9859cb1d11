"""Whole payloads and streams of opaque bytes: zstd (with its content checksum), plain, and gzip (read only).

A compressed payload describes itself twice: zstd frames carry their own content checksum, and the writer
returns a *record* for the job's ``.info``::

    {"codec": "zstd", "level": 3, "size": <plain bytes>, "stored_size": <stored bytes>,
     "checksum": "blake3:<hex digest of the stored bytes>"}

The checksum (:mod:`scout_persist.checksums`) covers the bytes as stored.  Damage (truncation, a flipped byte, a
record that does not match) raises :class:`CorruptPayloadError` naming the payload; wrong data is never returned.
The codec of a payload is told by its first bytes (:func:`detect`); the spec that chooses it is
:mod:`scout_persist.codec_spec`.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from .checksums import (
    THREADED_HASH_MIN,
    Hasher,
    checksum,
    checksum_algorithm,
    corrupt_payload,
    new_checksum,
    parse_checksum,
    verify_stored,
)
from .codec_spec import bytes_codec
from .errors import CorruptPayloadError
from .zstd_frames import ZSTD_MAGIC, ZstdFrames

if TYPE_CHECKING:
    import zstandard

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
# Below this many bytes a payload is compressed on one thread: starting workers costs more than it saves.
MULTITHREAD_MIN = 4 << 20


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


def compress(data: bytes | bytearray | memoryview, spec: str | None = None) -> bytes:
    """``data`` encoded by ``spec`` (zstd frame with content checksum, or unchanged for ``none``)."""
    return compress_with_record(data, spec)[0]


def compress_with_record(data: bytes | bytearray | memoryview, spec: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """``(stored bytes, record)``: the record is what the job's ``.info`` keeps about the payload."""
    codec, level = bytes_codec(spec)
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
        verify_stored(record, len(data), data, where)
    codec = detect(data[:4])
    if record is not None and record.get("codec") not in (None, codec):
        raise corrupt_payload(where, f"the record says codec {record.get('codec')!r} but the bytes are {codec}")
    if codec == "none":
        plain = bytes(data)
    elif codec == "gzip":
        try:
            plain = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise corrupt_payload(where, f"gzip stream is damaged ({exc})") from exc
    else:
        frames = ZstdFrames(where)
        frames.feed(data)
        frames.finish()
        plain = _zstd_decode_all(data, where)
    if record is not None and record.get("size") is not None and record["size"] != len(plain):
        raise corrupt_payload(where, f"decodes to {len(plain)} bytes but the record says {record['size']}")
    return plain


def decompress_into(payload: bytes | memoryview, size: int, where: str = "") -> memoryview:
    """Decode ``payload`` (zstd or plain) into one new writable buffer of exactly ``size`` bytes.

    A payload that decodes to another size, or whose zstd content checksum fails, raises CorruptPayloadError.
    """
    out = bytearray(size)
    view = memoryview(out)
    if detect(bytes(payload[:4])) == "none":
        if len(payload) != size:
            raise corrupt_payload(where, f"holds {len(payload)} bytes where {size} were recorded")
        view[:] = payload
        return view
    zstd_into(memoryview(payload), view, where)
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
        raise corrupt_payload(where, f"zstd frame is damaged ({exc})") from exc
    return b"".join(parts)


def zstd_into(src: memoryview, dst: memoryview, where: str) -> None:
    """Decode the zstd frame(s) ``src`` into ``dst``, which they must fill exactly; CorruptPayloadError otherwise."""
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
        raise corrupt_payload(where, f"a zstd frame is damaged ({exc})") from exc
    if filled != dst.nbytes or extra:
        raise corrupt_payload(
            where,
            f"a zstd frame decodes to {'more than ' if extra else ''}{filled} bytes where {dst.nbytes} were recorded; "
            "truncated or damaged",
        )


def zstd_frame(piece: memoryview, level: int) -> bytes:
    """``piece`` as one zstd frame with its content checksum."""
    import zstandard  # lazy: codec libraries load on first use, import scout_persist stays light

    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(piece)


def compress_stream(src: IO[bytes], dst: IO[bytes], spec: str | None = None) -> dict[str, Any]:
    """Copy ``src`` to ``dst`` encoded by ``spec``, in bounded memory; returns the payload record.

    Large inputs (the first read fills a whole chunk) are compressed on all cores.
    """
    codec, level = bytes_codec(spec)
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
        self, fh: IO[bytes], head: bytes, observer: ZstdFrames | None = None, digest: Hasher | None = None
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
            raise corrupt_payload(
                where, f"the record says codec {record.get('codec')!r} but the bytes are {self.codec}"
            )
        self.frames = ZstdFrames(where) if self.codec == "zstd" else None
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
            raise corrupt_payload(self.where, f"{self.codec} stream is damaged ({exc})") from exc
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
                raise corrupt_payload(
                    self.where, f"{len(rest)}+ unexpected bytes after the end of the {self.codec} stream"
                )
            rest = self.source.read()
        if self.frames is not None:
            self.frames.finish()
        if self.record is not None:
            verify_stored(self.record, self.source.count, self.source.digest, self.where)
            if self.record.get("size") is not None and self.record["size"] != self.produced:
                raise corrupt_payload(
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
