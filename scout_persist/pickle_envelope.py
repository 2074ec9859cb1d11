"""The Python serializer: values with no Scout type as a signed pickle envelope.

Pickle protocol 5, its buffers encoded as the parts of :mod:`scout_persist.envelope_parts` (Blosc2 for array data,
zstd for the rest, by default), in a self-describing envelope with a checksum trailer and an HMAC-SHA256.  Trust
rule: every pickle must carry a valid HMAC under the pickle key (:mod:`scout_persist.pickle_key`:
``$SCOUT_PERSIST_HMAC_KEY``, else this user's own key; or ``hmac_key=``) or it is refused with
:class:`UntrustedPayloadError` before unpickling; a key that cannot be used is a :class:`PickleKeyError`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import pickle
import struct
from typing import TYPE_CHECKING, Any

from . import pickle_key, unpickling
from .checksums import CHECKSUM_SIZE, checksum_algorithm, checksum_matches, new_checksum
from .envelope_parts import decode_parts, encode_parts
from .errors import ClassNotImportable, CorruptPayloadError, UnsupportedValueError, UntrustedPayloadError
from .zstd_codec import decompress, decompress_into

if TYPE_CHECKING:
    from typing_extensions import Buffer

PICKLE = "pickle"
# 8 bytes of magic, then 1 byte HMAC length (0 or 32).  The parts are the pickle stream, then its out-of-band
# buffers (array data, never copied into the pickle).
# Version 3 (written now): <I header length, the header (UTF-8 JSON: {"parts": [{"codec", "size", "chunk",
# "stored"}...], "checksum": algorithm}, see envelope_parts.encode_parts), the stored chunks of every part back to
# back, a 32-byte trailer (the checksum, in the header's algorithm, of every byte before it), then the HMAC of every
# byte before it.  Versions 1 and 2 (read only): the HMAC, then the body; version 2's body is the part table (<I count,
# then <Q length of each part) and one zstd or plain payload of the parts back to back, version 1's the codec
# payload of the whole pickle.
PICKLE_MAGIC = b"SCOUTPY\x03"
PICKLE_MAGIC_V2 = b"SCOUTPY\x02"
PICKLE_MAGIC_V1 = b"SCOUTPY\x01"


def _key_bytes(key: bytes | str | None) -> bytes | None:
    if key is None:
        return pickle_key.current()
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


class _Pickler(pickle.Pickler):
    """Protocol 5 with out-of-band buffers, noting whether the value holds anything but the builtin data types whose
    pickle is exact (None, bool, int, float, str, bytes, and dicts, lists, tuples, sets of them): the C pickler asks
    ``reducer_override`` about every other object, and only about those."""

    builtin_only = True

    def reducer_override(self, obj: Any) -> Any:
        self.builtin_only = False
        return NotImplemented


def _pickle_parts(value: Any) -> tuple[list[memoryview], list[int], bool]:
    """The pickle stream and its out-of-band buffers (zero-copy views of contiguous array data), the bytes per item
    of each (1 for the stream; 8 for float64 data), which lets the codec shuffle fixed-width data, and whether the
    value is builtin data only (its unpickled copy is indistinguishable from it)."""
    buffers: list[memoryview] = []
    itemsizes: list[int] = [1]

    def out_of_band(buf: pickle.PickleBuffer) -> bool:
        try:
            buffers.append(buf.raw())
        except BufferError:  # not contiguous: let pickle copy it in-band
            return True
        with memoryview(buf) as typed:
            itemsizes.append(typed.itemsize)
        return False

    stream = io.BytesIO()
    pickler = _Pickler(stream, protocol=5, buffer_callback=out_of_band)
    try:
        pickler.dump(value)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise UnsupportedValueError(
            f"{value.__class__.__name__} value cannot be pickled ({exc}); return a picklable value "
            "(module-level classes, no open files, locks or lambdas)"
        ) from exc
    return [stream.getbuffer(), *buffers], itemsizes, pickler.builtin_only and not buffers


def dump_pickle_with_record(
    value: Any, spec: str | None = None, hmac_key: bytes | str | None = None, bind: str | None = None
) -> tuple[bytes, dict[str, Any]]:
    """``(stored bytes, record)``: pickle protocol 5 with out-of-band buffers, each part encoded per ``spec``
    (``None``: ``$SCOUT_PERSIST_COMPRESSION``, default ``auto``), HMAC'd when a key is known.  Array data goes from
    the value to the encoder without an intermediate copy; the record's ``codec`` names each part's codec.

    ``bind`` (the store key of the entry, e.g. the job's key) is covered by the HMAC with the payload, so a signed
    payload copied to another entry does not verify there."""
    parts, itemsizes, _ = _pickle_parts(value)
    return _envelope(parts, itemsizes, spec, hmac_key, bind)


def dump_pickle_handing_on(
    value: Any, spec: str | None = None, hmac_key: bytes | str | None = None, bind: str | None = None
) -> tuple[bytes, dict[str, Any], Any]:
    """:func:`dump_pickle_with_record`, and the value a load of those bytes gives back: the value itself when it is
    builtin data only, else the pickle stream just written, unpickled in memory with its out-of-band buffers (no
    decompression, no copy of array data: its arrays share the value's memory, read-only where the value's are, as
    loaded ones are).  A value whose pickle does not load back is refused: every cache hit would fail."""
    parts, itemsizes, builtin_only = _pickle_parts(value)
    stored, record = _envelope(parts, itemsizes, spec, hmac_key, bind)
    if builtin_only:  # dicts, lists, numbers, text: pickle gives them back exactly, no need to unpickle
        return stored, record, value
    try:
        back = pickle.loads(parts[0], buffers=parts[1:])  # noqa: S301 (the stream this call just made of the value)
    except Exception as exc:  # whatever a __reduce__ or __setstate__ raises
        raise UnsupportedValueError(
            f"a {value.__class__.__name__} value pickles but does not unpickle ({type(exc).__name__}: {exc}), so "
            "every cache hit would fail; give its class a __reduce__ or __getstate__/__setstate__ that round trip"
        ) from exc
    return stored, record, back


def _envelope(
    parts: list[memoryview], itemsizes: list[int], spec: str | None, hmac_key: bytes | str | None, bind: str | None
) -> tuple[bytes, dict[str, Any]]:
    """The version 3 envelope of a pickle stream and its out-of-band buffers, and its record."""

    encoded = encode_parts(parts, itemsizes, spec)
    algorithm = checksum_algorithm()
    header = json.dumps({"parts": encoded.header, "checksum": algorithm}, separators=(",", ":")).encode("utf-8")
    key = _key_bytes(hmac_key)
    mac_size = hashlib.sha256().digest_size if key else 0
    prefix = PICKLE_MAGIC + bytes([mac_size]) + struct.pack("<I", len(header)) + header
    digest = new_checksum(algorithm, len(prefix) + sum(memoryview(p).nbytes for p in encoded.pieces))
    signer = hmac.new(key, _bound(bind) + prefix, hashlib.sha256) if key else None
    for piece in (prefix, *encoded.pieces):
        digest.update(piece)
        if signer is not None and piece is not prefix:
            signer.update(piece)
    trailer = digest.copy().digest()  # the checksum of every byte before the trailer
    assert len(trailer) == CHECKSUM_SIZE
    digest.update(trailer)
    mac = b""
    if signer is not None:
        signer.update(trailer)
        mac = signer.digest()
        digest.update(mac)  # the record's checksum: every stored byte, in the same pass as the trailer's
    stored = b"".join((prefix, *encoded.pieces, trailer, mac))
    record = {
        "serializer": PICKLE,
        "pickle_protocol": 5,
        "codec": encoded.codec,
        "size": encoded.size,
        "stored_size": len(stored),
        "checksum": f"{algorithm}:{digest.hexdigest()}",
        "hmac": bool(mac),
    }
    return stored, record


def dump_pickle(
    value: Any, spec: str | None = None, hmac_key: bytes | str | None = None, bind: str | None = None
) -> bytes:
    return dump_pickle_with_record(value, spec, hmac_key, bind)[0]


def _bound(bind: str | None) -> bytes:
    """What the HMAC covers before the payload: the entry's key (nothing for unbound payloads)."""
    return b"" if bind is None else b"scout-persist entry\0" + bind.encode("utf-8", "surrogatepass") + b"\0"


def is_pickle(data: bytes) -> bool:
    return data[: len(PICKLE_MAGIC)] in (PICKLE_MAGIC, PICKLE_MAGIC_V2, PICKLE_MAGIC_V1)


def load_pickle(
    data: bytes,
    where: str = "",
    record: dict[str, Any] | None = None,
    hmac_key: bytes | str | None = None,
    bind: str | None = None,
) -> Any:
    """Unpickle a payload of :func:`dump_pickle` after checking record, envelope and (when a key is set) HMAC,
    which must have been made for the same ``bind`` key."""

    where = where or "<pickle payload>"
    verified = False  # the record's checksum covered every stored byte
    if record:
        if record.get("stored_size") not in (None, len(data)):
            raise CorruptPayloadError(
                f"{where} holds {len(data)} bytes but its .info says {record['stored_size']}; truncated or replaced"
            )
        expected = record.get("checksum")
        if expected:
            if not checksum_matches(expected, data):
                raise CorruptPayloadError(f"{where} does not match the checksum in its .info ({expected}); not loaded")
            verified = True
    if not is_pickle(data) or len(data) < len(PICKLE_MAGIC) + 1:
        raise CorruptPayloadError(
            f"{where} is not a scout-persist pickle (no {PICKLE_MAGIC!r} header); it was written by something else"
        )
    key = _key_bytes(hmac_key)
    if data[: len(PICKLE_MAGIC)] == PICKLE_MAGIC:
        head, *buffers = _open_v3(memoryview(data), where, record, verified, key, bind)
        return _unpickle(head, buffers, where)
    n = data[len(PICKLE_MAGIC)]
    start = len(PICKLE_MAGIC) + 1
    view = memoryview(data)  # slices below are views: no copy of a large payload
    mac, body = bytes(view[start : start + n]), view[start + n :]
    if n not in (0, 32) or len(mac) != n:
        raise CorruptPayloadError(f"{where}: damaged pickle envelope (HMAC length {n})")
    if key is not None:
        _verify_hmac(key, mac, [_bound(bind), body], where, bind)
    if data[: len(PICKLE_MAGIC)] == PICKLE_MAGIC_V1:
        head, buffers = decompress(body, where), []
    else:
        head, buffers = _unpack_parts(body, where)
    return _unpickle(head, buffers, where)


def check_pickle_hmac(
    data: bytes, where: str = "", hmac_key: bytes | str | None = None, bind: str | None = None
) -> None:
    """Check a pickle envelope's HMAC for ``bind`` under the key (the pickle key by default) without
    unpickling anything; UntrustedPayloadError when it is unsigned, or signed with another key or for another
    entry; CorruptPayloadError when it is not one of our envelopes."""
    key = _key_bytes(hmac_key)
    if not is_pickle(data) or len(data) < len(PICKLE_MAGIC) + 1:
        raise CorruptPayloadError(f"{where} is not a scout-persist pickle (no {PICKLE_MAGIC!r} header)")
    if key is None:
        return
    view = memoryview(data)
    n = data[len(PICKLE_MAGIC)]
    if n not in (0, 32):
        raise CorruptPayloadError(f"{where}: damaged pickle envelope (HMAC length {n})")
    if data[: len(PICKLE_MAGIC)] == PICKLE_MAGIC:
        _verify_hmac(
            key, bytes(view[len(view) - n :]) if n else b"", [_bound(bind), view[: len(view) - n]], where, bind
        )
    else:
        start = len(PICKLE_MAGIC) + 1
        _verify_hmac(key, bytes(view[start : start + n]), [_bound(bind), view[start + n :]], where, bind)


def _verify_hmac(key: bytes, mac: bytes, signed: list[Any], where: str, bind: str | None = None) -> None:
    if not mac:
        raise UntrustedPayloadError(
            f"{where} carries no HMAC, and every pickle must be signed with the pickle key ({pickle_key.source()}); "
            "refusing to unpickle. Recompute the entry (caches do), or, for pickles a colleague signed, share one "
            f"key as ${pickle_key.HMAC_ENV}"
        )
    signer = hmac.new(key, digestmod=hashlib.sha256)
    for piece in signed:
        signer.update(piece)
    if not hmac.compare_digest(mac, signer.digest()):
        raise UntrustedPayloadError(
            f"{where} has an HMAC that does not verify under the pickle key ({pickle_key.source()}) for this entry"
            f"{'' if bind is None else f' ({bind!r})'}: written with another key, for another entry, or altered; "
            "refusing to unpickle"
        )


def _unpickle(head: Buffer, buffers: list[Any], where: str) -> Any:
    try:
        return unpickling.loads(head, buffers)  # (trust rule above)
    except ClassNotImportable as exc:
        raise ClassNotImportable(f"{where}: {exc}") from None
    except Exception as exc:
        raise CorruptPayloadError(f"{where}: the pickle does not load ({type(exc).__name__}: {exc})") from exc


def _unpack_parts(body: memoryview, where: str) -> tuple[memoryview, list[memoryview]]:
    """Decompress a version-2 body into one writable buffer; views of it are the pickle and its buffers."""

    try:
        (count,) = struct.unpack_from("<I", body)
        lengths = struct.unpack_from(f"<{count}Q", body, 4)
    except struct.error as exc:
        raise CorruptPayloadError(f"{where}: damaged pickle part table ({exc})") from exc
    if count == 0 or count > len(body):
        raise CorruptPayloadError(f"{where}: damaged pickle part table ({count} parts)")
    plain = decompress_into(body[4 + 8 * count :], sum(lengths), where)
    views, offset = [], 0
    for n in lengths:
        views.append(plain[offset : offset + n])
        offset += n
    return views[0], views[1:]


def _open_v3(
    view: memoryview,
    where: str,
    record: dict[str, Any] | None,
    verified: bool,
    key: bytes | None,
    bind: str | None = None,
) -> list[Any]:
    """The decoded parts (pickle stream, then its buffers) of a version-3 envelope.

    Order: the HMAC when a key is set (before anything else is parsed; it also proves the bytes intact), else the
    checksum trailer unless the record's checksum (``verified``) already covered every byte; then the record must
    name the codecs and size the header does."""

    magic = len(PICKLE_MAGIC)
    mac_size = view[magic]
    fixed = magic + 1 + 4 + CHECKSUM_SIZE + mac_size
    if mac_size not in (0, 32) or len(view) < fixed:
        raise CorruptPayloadError(
            f"{where}: damaged pickle envelope (HMAC length {mac_size}, {len(view)} bytes); truncated or damaged"
        )
    signed_end = len(view) - mac_size
    if key is not None:
        _verify_hmac(key, bytes(view[signed_end:]), [_bound(bind), view[:signed_end]], where, bind)
    (length,) = struct.unpack_from("<I", view, magic + 1)
    start = magic + 1 + 4 + length  # the first chunk
    end = signed_end - CHECKSUM_SIZE  # the trailer
    try:
        if start > end:
            raise ValueError(f"a {length}-byte header does not fit in {len(view)} bytes")
        header = json.loads(bytes(view[magic + 5 : start]).decode("utf-8"))
        if not isinstance(header, dict) or not isinstance(header.get("parts"), list):
            raise ValueError("it lists no parts")
        if not isinstance(header.get("checksum"), str):
            raise ValueError("it names no checksum algorithm")
        digest = new_checksum(header["checksum"], end) if not (verified or key is not None) else None
    except ValueError as exc:  # also InvalidInputError (an unknown algorithm) and JSON/UTF-8 errors
        raise CorruptPayloadError(f"{where}: damaged pickle envelope header ({exc}); truncated or damaged") from exc
    if digest is not None:
        digest.update(view[:end])
        if not hmac.compare_digest(digest.digest(), bytes(view[end:signed_end])):
            raise CorruptPayloadError(
                f"{where}: the {header['checksum']} checksum trailer does not match the bytes before it; "
                "truncated or damaged, not loaded"
            )
    parts = header["parts"]
    codec = ",".join(str(p.get("codec")) if isinstance(p, dict) else "?" for p in parts)
    if record and record.get("codec") not in (None, codec):
        raise CorruptPayloadError(f"{where}: the record says codec {record['codec']!r} but the envelope says {codec!r}")
    size = sum(p["size"] for p in parts if isinstance(p, dict) and type(p.get("size")) is int)
    if record and record.get("size") not in (None, size):
        raise CorruptPayloadError(f"{where}: the record says {record['size']} plain bytes but the envelope says {size}")
    return decode_parts(parts, view[start:end], where)
