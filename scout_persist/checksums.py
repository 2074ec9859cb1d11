"""Checksums of stored bytes, one API: ``blake3:<hex>`` (``sha256:<hex>`` without the blake3 package), and the check
of stored bytes against their record.

:func:`checksum` writes ``blake3:<hex>``; :func:`checksum_matches` reads both algorithms, so records written before
blake3 keep verifying.  A payload's record (see :func:`scout_persist.zstd_codec.compress_with_record`) carries the
checksum of the bytes as stored (after compression), so a damaged file is detected before it is decoded and a plain
payload is covered as well; :func:`verify_stored` checks a record, and damage raises :class:`CorruptPayloadError`
naming the payload (:func:`corrupt_payload`): wrong data is never returned.
"""

from __future__ import annotations

import hashlib
import hmac
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from .errors import CorruptPayloadError, InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    from typing_extensions import Buffer


class Hasher(Protocol):
    """What :func:`new_checksum` returns: hashlib's sha256 or a blake3 hasher."""

    def update(self, data: Buffer, /) -> object: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


CHECKSUM_ALGORITHM = "blake3"  # written when the blake3 package is installed (a dependency)
FALLBACK_CHECKSUM = "sha256"  # written without it; also every record written before blake3
CHECKSUM_SIZE = 32  # bytes of a digest, both algorithms
# Below this many bytes blake3 hashes on one thread: starting workers costs more than it saves.
THREADED_HASH_MIN = 4 << 20


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


def flat_view(buffer: Buffer) -> memoryview:
    """``buffer`` as a one-dimensional view of bytes (no copy), whatever its item format and shape."""
    view = memoryview(buffer)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _bytes_view(data: Any) -> memoryview:
    """``data`` as a flat byte view (no copy), whatever its item format; TypeError when it has no contiguous bytes."""
    if isinstance(data, str):
        raise TypeError("checksum() takes bytes, bytearray or memoryview, not str; encode the text first")
    try:
        view = flat_view(data)
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


def verify_stored(
    record: dict[str, Any], stored_size: int, data_or_digest: bytes | bytearray | memoryview | Hasher | None, where: str
) -> None:
    """Size and checksum of the stored bytes against ``record``; ``data_or_digest`` is the bytes or a hasher
    already fed with them (of the record's algorithm)."""
    expected_size = record.get("stored_size")
    if expected_size is not None and expected_size != stored_size:
        raise corrupt_payload(
            where, f"holds {stored_size} bytes but the record says {expected_size} (truncated or replaced)"
        )
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
        raise corrupt_payload(where, f"{algorithm} of the stored bytes is {actual}, the record says {value}")


def corrupt_payload(where: str, reason: str) -> CorruptPayloadError:
    """The error for payload ``where`` damaged as ``reason`` says (raised by every codec: never returned as data)."""
    return CorruptPayloadError(
        f"payload {where or '<unnamed>'!s} is corrupt: {reason}; it was not returned. "
        "Delete the entry and recompute it, or restore it from a copy"
    )
