"""Payload codecs: zstd (default for Python payloads), gzip (read only) and plain, told apart by magic bytes.

A compressed payload describes itself twice: zstd frames carry their own content checksum, and the writer
returns a *record* for the job's ``.info``::

    {"codec": "zstd", "level": 3, "size": <plain bytes>, "stored_size": <stored bytes>,
     "checksum": "sha256:<hex digest of the stored bytes>"}

The checksum covers the bytes as stored (after compression), so a damaged file is detected before it is
decoded and a plain payload is covered as well. Damage (truncation, a flipped byte, a record that does not
match) raises :class:`CorruptPayloadError` naming the payload; wrong data is never returned.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from typing import BinaryIO

from .errors import CorruptPayloadError, InvalidInputError

ENV_VAR = "SCOUT_PERSIST_COMPRESSION"
DEFAULT_SPEC = "zstd:3"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
# Below this many bytes a payload is compressed on one thread: starting workers costs more than it saves.
MULTITHREAD_MIN = 4 << 20
CHECKSUM_ALGORITHM = "sha256"


# -- specs ----------------------------------------------------------------------
def parse_spec(spec: str | None = None) -> tuple[str, int | None]:
    """``"zstd:3"`` -> ``("zstd", 3)``, ``"zstd"`` -> ``("zstd", 3)``, ``"none"`` -> ``("none", None)``.

    ``None`` reads ``$SCOUT_PERSIST_COMPRESSION`` (default ``zstd:3``).
    """
    source = "compression spec"
    if spec is None:
        spec = os.environ.get(ENV_VAR) or DEFAULT_SPEC
        source = f"${ENV_VAR}"
    if not isinstance(spec, str):
        raise InvalidInputError(f"{source} {spec!r} is a {type(spec).__name__}; use a string like 'zstd:3' or 'none'")
    text = spec.strip().lower()
    if text in ("none", "plain", "off"):
        return "none", None
    codec, _, level_text = text.partition(":")
    if codec != "zstd":
        raise InvalidInputError(
            f"{source} {spec!r} names an unknown codec {codec!r}; use 'zstd', 'zstd:<level 1-22>' or 'none'"
        )
    if not level_text:
        return "zstd", 3
    try:
        level = int(level_text)
    except ValueError:
        level = 0
    if not 1 <= level <= 22:
        raise InvalidInputError(
            f"{source} {spec!r} has zstd level {level_text!r}; zstd levels are integers 1-22 (e.g. 'zstd:19')"
        )
    return "zstd", level


def detect(head: bytes) -> str:
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


def _compressor(level: int, size_hint: int):
    import zstandard

    threads = -1 if size_hint >= MULTITHREAD_MIN else 0
    return zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)


def _checksum(digest) -> str:
    return f"{CHECKSUM_ALGORITHM}:{digest.hexdigest()}"


def checksum(data) -> str:
    """``"<algorithm>:<hex>"`` of the stored bytes ``data`` (bytes or a buffer; not copied)."""
    return _checksum(hashlib.sha256(data))


class checksum_hasher:
    """Incremental :func:`checksum` for data written in pieces: ``update(chunk)`` then ``checksum()``."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, data) -> None:
        self._h.update(data)

    def checksum(self) -> str:
        return _checksum(self._h)


def checksum_matches(expected: str, data) -> bool:
    """Whether ``data`` has the recorded checksum ``expected``; an unknown algorithm never matches."""
    algorithm, _, value = str(expected).partition(":")
    if algorithm != CHECKSUM_ALGORITHM or not value:
        return False
    return hashlib.sha256(data).hexdigest() == value


# -- whole payloads ---------------------------------------------------------------
def compress(data: bytes, spec: str | None = None) -> bytes:
    """``data`` encoded by ``spec`` (zstd frame with content checksum, or unchanged for ``none``)."""
    return compress_with_record(data, spec)[0]


def compress_with_record(data: bytes, spec: str | None = None) -> tuple[bytes, dict]:
    """``(stored bytes, record)``: the record is what the job's ``.info`` keeps about the payload."""
    codec, level = parse_spec(spec)
    stored = bytes(data) if codec == "none" else _compressor(level, len(data)).compress(data)
    record = {
        "codec": codec,
        "level": level,
        "size": len(data),
        "stored_size": len(stored),
        "checksum": _checksum(hashlib.sha256(stored)),
    }
    return stored, record


def decompress(data: bytes, where: str = "", record: dict | None = None) -> bytes:
    """The plain bytes of a zstd, gzip or plain payload; CorruptPayloadError naming ``where`` on damage.

    With ``record`` (from :func:`compress_with_record` / :func:`compress_stream`), sizes and the checksum of
    the stored bytes are verified too.
    """
    if record is not None:
        _verify_stored(record, len(data), hashlib.sha256(data), where)
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


def compress_parts(parts: list, spec: str | None = None) -> tuple[bytes, dict]:
    """Compress buffers back to back as one payload (zero-copy for memoryviews); returns ``(payload, record)``."""
    codec, level = parse_spec(spec)
    size = sum(memoryview(p).nbytes for p in parts)
    if codec == "none":
        stored = b"".join(parts)
    else:
        cobj = _compressor(level, size).compressobj(size=size)
        stored = b"".join([*(cobj.compress(p) for p in parts), cobj.flush()])
    return stored, {"codec": codec, "level": level, "size": size, "stored_size": len(stored)}


def decompress_into(payload, size: int, where: str = "") -> memoryview:
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
    import zstandard

    filled = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(payload, closefd=False) as reader:
            while filled < size:
                n = reader.readinto(view[filled:])
                if not n:
                    break
                filled += n
            extra = reader.read(1)  # reaching the frame end verifies zstd's content checksum
    except zstandard.ZstdError as exc:
        raise _corrupt(where, f"zstd frame is damaged ({exc})") from exc
    if filled != size or extra:
        raise _corrupt(where, f"decodes to {'more than ' if extra else ''}{filled} bytes where {size} were recorded; "
                              "truncated or damaged")
    return view


def _zstd_decode_all(data: bytes, where: str) -> bytes:
    import zstandard

    parts = []
    rest = data
    try:
        while rest:
            obj = zstandard.ZstdDecompressor().decompressobj()
            parts.append(obj.decompress(rest))
            rest = obj.unused_data
    except zstandard.ZstdError as exc:
        raise _corrupt(where, f"zstd frame is damaged ({exc})") from exc
    return b"".join(parts)


# -- streams -----------------------------------------------------------------------
def compress_stream(src: BinaryIO, dst: BinaryIO, spec: str | None = None) -> dict:
    """Copy ``src`` to ``dst`` encoded by ``spec``, in bounded memory; returns the payload record.

    Large inputs (the first read fills a whole chunk) are compressed on all cores.
    """
    codec, level = parse_spec(spec)
    digest = hashlib.sha256()
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
        cobj = _compressor(level, size_hint).compressobj()
        chunk = first
        while chunk:
            size += len(chunk)
            emit(cobj.compress(chunk))
            chunk = src.read(CHUNK)
        emit(cobj.flush())
    return {"codec": codec, "level": level, "size": size, "stored_size": stored, "checksum": _checksum(digest)}


def open_decompressed(fh: BinaryIO, where: str = "", record: dict | None = None) -> BinaryIO:
    """A reader of the plain bytes of ``fh`` (zstd, gzip or plain, told by magic bytes), in bounded memory.

    Damage is raised as CorruptPayloadError naming ``where`` at the latest when the end is read, so a caller
    that reads to the end never takes truncated or altered data for the payload.
    """
    where = where or getattr(fh, "path", None) or getattr(fh, "name", None) or ""
    return io.BufferedReader(_DecodingReader(fh, str(where), record), buffer_size=CHUNK)


class _StoredSource(io.RawIOBase):
    """The stored bytes of a payload, re-joined after peeking at the magic, counted and hashed as they pass."""

    def __init__(self, fh: BinaryIO, head: bytes, observer=None):
        self.fh = fh
        self.head = head
        self.digest = hashlib.sha256()
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
            self.digest.update(data)
            self.count += len(data)
            if self.observer is not None:
                self.observer.feed(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _DecodingReader(io.RawIOBase):
    def __init__(self, fh: BinaryIO, where: str, record: dict | None):
        self.where = where
        self.record = record
        self.produced = 0
        self.finished = False
        head = _read_exactly(fh, 4)
        self.codec = detect(head)
        if record is not None and record.get("codec") not in (None, self.codec):
            raise _corrupt(where, f"the record says codec {record.get('codec')!r} but the bytes are {self.codec}")
        self.frames = _ZstdFrames(where) if self.codec == "zstd" else None
        self.source = _StoredSource(fh, head, self.frames)
        if self.codec == "zstd":
            import zstandard

            self.inner = zstandard.ZstdDecompressor().stream_reader(
                self.source, read_size=CHUNK, read_across_frames=True
            )
            self.errors: tuple = (zstandard.ZstdError,)
        elif self.codec == "gzip":
            self.inner = gzip.GzipFile(fileobj=self.source, mode="rb")
            self.errors = (EOFError, OSError, zlib.error)
        else:
            self.inner = self.source
            self.errors = ()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
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
                raise _corrupt(self.where, f"decodes to {self.produced} bytes but the record says {self.record['size']}")
        self.finished = True

    def close(self) -> None:
        try:
            if self.inner is not self.source:
                self.inner.close()
        finally:
            super().close()


def _read_exactly(fh: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = fh.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _verify_stored(record: dict, stored_size: int, digest, where: str) -> None:
    expected_size = record.get("stored_size")
    if expected_size is not None and expected_size != stored_size:
        raise _corrupt(where, f"holds {stored_size} bytes but the record says {expected_size} (truncated or replaced)")
    expected = record.get("checksum")
    if expected is None:
        return
    algorithm, _, value = str(expected).partition(":")
    if algorithm != CHECKSUM_ALGORITHM:
        raise InvalidInputError(
            f"payload record checksum {expected!r} of {where!r} uses {algorithm!r}; only '{CHECKSUM_ALGORITHM}:<hex>' is known"
        )
    if digest.hexdigest() != value:
        raise _corrupt(where, f"sha256 of the stored bytes is {digest.hexdigest()}, the record says {value}")


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

    def feed(self, data: bytes) -> None:
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
