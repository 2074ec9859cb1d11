"""Typed payload formats: how a Python value of a known kind becomes stored bytes and comes back, exactly.

Each format is one small module with one :class:`Format` object: ``name``, ``version``, ``can_encode(value)`` (a
cheap type test that never imports an optional library the value's own module did not load), ``encode``,
``decode`` and ``verify``.  The record a format returns travels in the job's ``.info`` under ``payload`` with
``format`` and ``version``; reading follows the record, never the bytes.

=============  ===============================  =================================  ==============================
format         chosen for                       bytes                              needs
=============  ===============================  =================================  ==============================
``npy``        ``numpy.ndarray`` (no objects)   NPY (compressed: envelope parts)   numpy
``parquet``    ``pandas.DataFrame`` / Series    Parquet, index and dtypes kept     pandas + pyarrow (``frames``)
``arrow``      ``pyarrow.Table``                Arrow IPC file                     pyarrow (``frames``)
``safetensors`` dict of str -> numpy arrays     safetensors (compressed: parts)    safetensors (``tensors``)
``json``       only when asked (``format=``)    Scout JSON (Ruby reads it)         -
=============  ===============================  =================================  ==============================

Everything else is a pickle (:mod:`scout_persist.payload`), under the HMAC rules and ``SCOUT_PERSIST_ALLOW_PICKLE``.

The contract of every format: ``encode`` returns, as :attr:`Stored.value`, a value indistinguishable
(:func:`scout_persist.equality.difference`) from what a later ``decode`` of its bytes gives back, and the first run
hands that value on; it differs from the value given only by a lossless change the format documents (NPY and
safetensors hand on a C-contiguous writable copy of a strided or read-only array, safetensors of any array not
C-contiguous).  A value the format cannot hold exactly is refused with :class:`UnsupportedValueError` naming the
value, the rule and the fix (chosen by type, it is then pickled).  Formats whose load is cheap to compare (Parquet,
Arrow, JSON) decode once and compare; NPY and safetensors hold by construction (the arrays written are the arrays
handed on), so a large array is never decoded twice.  docs/formats.md has the rule of each format.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checksums import checksum_matches
from ..codec_spec import parse_spec
from ..errors import CorruptPayloadError, FormatVersionError, InvalidInputError, MissingDependencyError

# name -> module defining FORMAT (imported on first use: none of them imports its library at import time)
_MODULES = {"npy": "npy", "parquet": "parquet", "arrow": "arrow", "safetensors": "safetensors", "json": "json_format"}
# tried in this order for a value of unknown format (json is never chosen by itself)
AUTO = ("npy", "parquet", "arrow", "safetensors")
EXTRAS = {"numpy": "arrays", "pandas": "frames", "pyarrow": "frames", "safetensors": "tensors", "torch": "tensors"}
AUTO_ZSTD_LEVEL = 3  # what 'auto' compression means for the formats that compress inside their own bytes
# Below this many bytes the parts of a payload are joined and stored with one put (one request on object stores).
JOIN_MAX = 8 << 20


@dataclass
class Stored:
    """What a format made of a value: ``data`` to store (bytes, a buffer, or :class:`Parts` written in order),
    the format's ``record`` fields (sizes, codec, checksum), and the ``value`` a later decode gives back."""

    data: Any
    record: dict[str, Any] = field(default_factory=dict)
    value: Any = None


class Parts(tuple[bytes | memoryview, ...]):
    """Buffers stored back to back (e.g. an NPY header and the array's own memory, never joined in memory)."""

    @property
    def nbytes(self) -> int:
        return sum(memoryview(p).nbytes for p in self)


def stored_pieces(pieces: list[bytes | memoryview]) -> bytes | Parts:
    """Encoded chunks as a format's ``data``: joined when small (one buffer, one put), else :class:`Parts` written
    back to back (never joined in memory)."""
    if len(pieces) == 1 and isinstance(pieces[0], bytes):
        return pieces[0]
    parts = Parts(pieces)
    return b"".join(parts) if parts.nbytes <= JOIN_MAX else parts


def nbytes(data: Any) -> int:
    return data.nbytes if isinstance(data, Parts) else memoryview(data).nbytes


class Format:
    """One typed format.  Subclasses set ``name``, ``version``, ``libraries`` and implement the methods."""

    name = ""
    version = 1
    libraries: tuple[str, ...] = ()  # import names the format needs
    ruby_type = "binary"  # the .info ``type`` Ruby sees: opaque bytes

    def can_encode(self, value: Any) -> bool:
        raise NotImplementedError

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:
        raise NotImplementedError

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        raise NotImplementedError

    def verify(self, data: Any, record: Mapping[str, Any], where: str) -> None:
        """CorruptPayloadError unless ``data`` has the recorded size and checksum (over the whole payload)."""
        verify_whole(data, record, where)

    def maps(self, record: Mapping[str, Any]) -> bool:
        """Whether a local payload may be read as a private memory map (decoded in place, zero copy)."""
        return False

    def writable(self, record: Mapping[str, Any]) -> bool:
        """Whether decode hands out the payload's own memory (so it must be read into a writable buffer)."""
        return False

    # -- helpers for subclasses
    def require(self, module: str, action: str, where: str) -> Any:
        """Import ``module`` or raise MissingDependencyError naming the install."""
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            extra = EXTRAS.get(module.split(".")[0], "formats")
            raise MissingDependencyError(
                f"{where}: {action} as {self.name} needs the {module.split('.')[0]} package, which is not installed; "
                f"install it: pip install 'scout-persist[{extra}]' (or pip install {module.split('.')[0]})"
            ) from exc


def loaded(module: str) -> Any:
    """``module`` if the process already imported it (a value of its type exists), else None: no import cost."""
    return sys.modules.get(module)


def verify_whole(data: Any, record: Mapping[str, Any], where: str, offset: int = 0) -> None:
    """Size of the whole payload, then the checksum of its bytes from ``offset`` on."""
    view = memoryview(data)
    expected_size = record.get("stored_size")
    if expected_size is not None and expected_size != view.nbytes:
        raise CorruptPayloadError(
            f"{where} holds {view.nbytes} bytes but its .info says {expected_size}: truncated, damaged or replaced"
        )
    expected = record.get("checksum")
    if not expected:
        raise CorruptPayloadError(f"{where}: its .info records no checksum for the result; it cannot be verified")
    if not checksum_matches(str(expected), view[offset:] if offset else view):
        raise CorruptPayloadError(
            f"{where} does not match the checksum in its .info ({expected}): damaged, tampered or replaced"
        )


def compression(spec: str | None) -> tuple[str, int | None]:
    """``(codec, level)`` of a compression spec (None: ``$SCOUT_PERSIST_COMPRESSION``); ``auto`` is zstd."""
    codec, level = parse_spec(spec)
    if codec == "auto":
        return "zstd", AUTO_ZSTD_LEVEL
    return codec, level


def names() -> tuple[str, ...]:
    return tuple(_MODULES)


def get(name: str) -> Format:
    """The format called ``name``; InvalidInputError naming the known ones."""
    module = _MODULES.get(str(name))
    if module is None:
        raise InvalidInputError(
            f"format {name!r} is unknown; known formats: {', '.join(('pickle', *_MODULES))} (or None: chosen by the "
            "value's type)"
        )
    fmt: Format = importlib.import_module(f".{module}", __name__).FORMAT
    return fmt


def for_value(value: Any) -> Format | None:
    """The format chosen for ``value`` by its type (None: a pickle)."""
    for name in AUTO:
        fmt = get(name)
        if fmt.can_encode(value):
            return fmt
    return None


def for_record(record: Mapping[str, Any], where: str) -> Format | None:
    """The format that reads ``record`` (None for the payload's own ``scout``/``pickle``/``none``); refuses a
    record written by a newer version of the format."""
    name = record.get("format")
    if name not in _MODULES:
        return None
    fmt = get(str(name))
    try:
        version = int(record.get("version", 1))
    except (TypeError, ValueError):
        raise CorruptPayloadError(
            f"{where}: payload record version {record.get('version')!r} is not a number"
        ) from None
    if version > fmt.version:
        raise FormatVersionError(
            f"{where} was written as {fmt.name} version {version}; this scout-persist reads {fmt.name} up to version "
            f"{fmt.version}: upgrade scout-persist to read it (or recompute the entry)"
        )
    return fmt


__all__ = [
    "AUTO",
    "Format",
    "Parts",
    "Stored",
    "compression",
    "for_record",
    "for_value",
    "get",
    "loaded",
    "names",
    "nbytes",
    "stored_pieces",
    "verify_whole",
]
