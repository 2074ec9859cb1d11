"""A job's result as stored: value -> (bytes, record) and back, under the round-trip contract.

The *record* travels in the job's ``.info`` under ``payload`` and says how the bytes were written, so reading
follows the record and never guesses from the bytes::

    {"format": "scout", "type": "json", "stored_size": 42, "checksum": "sha256:..."}
    {"format": "pickle", "codec": "zstd", "level": 3, "size": ..., "stored_size": ..., "checksum": ..., "hmac": true}
    {"format": "none"}                      # the task returned None: no result file, as Ruby does for nil
    {"format": "npy", "version": 1, "codec": "none", "header": ..., ...}   # typed formats: scout_persist.formats

A value of "any Python type" (type None or ``pickle``) is stored in the format its type calls for (numpy array ->
``npy``, DataFrame/Series -> ``parquet``, pyarrow Table -> ``arrow``, dict of arrays -> ``safetensors``), else as a
pickle; ``format=`` overrides the choice (``"json"``, ``"pickle"``, or any format name).  Pickles are written and
read only while ``$SCOUT_PERSIST_ALLOW_PICKLE`` is not ``0`` (:class:`PickleNotAllowed` otherwise).

Contract: :func:`encode` returns, besides the bytes, the value a later :func:`decode` of them gives back; callers
hand *that* value on, so a first run and every cached run see indistinguishable values
(:func:`scout_persist.equality.difference`: same classes, dtypes, layout, float bits, ...).  Lossless changes of
representation are accepted (:func:`lossless`: a tuple stored as a JSON array comes back as a list, ``str`` stored
as ``binary`` as ``bytes``, an ``int`` stored as ``float`` as a float; the formats' own in docs/formats.md); a value
the declared Scout type or the asked format cannot hold exactly is refused with :class:`UnsupportedValueError`
naming the type and the fix, and a value whose format was chosen by its type falls back to a pickle.  A pickle of
anything but builtin data hands on the stream just written, unpickled in memory, so what a ``__reduce__`` drops is
dropped on the first run too.  :func:`decode` verifies the stored size
and checksum first: damaged or replaced bytes raise :class:`CorruptPayloadError`, never decode to a wrong value.
Only a record that says ``pickle`` (or a caller that explicitly asks for ``pickle``) ever unpickles.
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import formats, pickle_envelope, scout_types, settings, tsv, usage
from .checksums import checksum, checksum_matches
from .equality import difference
from .errors import (
    CorruptPayloadError,
    InvalidInputError,
    MissingDependencyError,
    PickleNotAllowed,
    UnsupportedValueError,
)
from .rubyvalues import Symbol

log = logging.getLogger(__name__)

RECORD_KEY = "payload"
PICKLE = pickle_envelope.PICKLE
FORMATS = ("scout", "pickle", "none", *formats.names())
ALLOW_PICKLE_ENV = "SCOUT_PERSIST_ALLOW_PICKLE"
JOIN_MAX = formats.JOIN_MAX
# .info keys of the record of jobs written before the record had its own key
_LEGACY_PICKLE_KEYS = ("pickle_protocol", "codec", "level", "size", "stored_size", "checksum", "hmac")


@dataclass
class Encoded:
    """``data`` to store (None: no result file; bytes, a buffer, or :class:`formats.Parts`; see :func:`write`), its
    ``record``, and the ``value`` a decode gives back."""

    data: Any
    record: dict[str, Any]
    value: Any


def pickle_allowed() -> bool:
    """Whether pickles may be written and read here: ``$SCOUT_PERSIST_ALLOW_PICKLE`` is not ``0``/``false``/``no``."""
    return settings.allow_pickle()


def require_pickle_allowed(action: str, what: str) -> None:
    """PickleNotAllowed when ``$SCOUT_PERSIST_ALLOW_PICKLE`` forbids pickles; ``action`` is "store"/"load"."""
    if pickle_allowed():
        return
    if action == "store":
        fix = (
            "return a value with a typed format (numpy array, DataFrame, pyarrow Table, dict of arrays), declare "
            "format='json' or a Scout type, or unset the variable where the store is trusted"
        )
    else:
        fix = (
            "it was written as a pickle, and unpickling runs code from the store; recompute it in a typed format, "
            "or unset the variable where the store is trusted"
        )
    raise PickleNotAllowed(f"{what}: ${ALLOW_PICKLE_ENV}=0 forbids pickles; refusing to {action} one: {fix}")


def is_pickled(scout_type: str | None) -> bool:
    """Whether a declared type means "any Python value" (stored as a pickle): None, ``""`` or ``pickle``."""
    return scout_type in (None, "", PICKLE)


def info_type(scout_type: str | None) -> str:
    """The ``type`` written to ``.info``: the Scout type, or ``binary`` (opaque to Ruby) for pickled values."""
    if is_pickled(scout_type):
        return "binary"
    return "json" if scout_type == "serializer" else str(scout_type)


def encode(
    value: Any,
    scout_type: str | None = None,
    *,
    key: str,
    compression: str | None = None,
    hmac_key: bytes | str | None = None,
    location: str | None = None,
    format: str | None = None,
    in_files: str | Sequence[str] | None = None,
) -> Encoded:
    """Bytes and record for ``value`` as a result of ``scout_type`` of the job stored at ``key``.

    ``scout_type`` None (or ``pickle``): any Python value, stored in ``format`` (None: chosen by the value's type,
    see :mod:`scout_persist.formats`; a pickle when no format fits).  ``key`` binds a pickle's HMAC to its job;
    ``location`` is where the result will live (``path``/``file`` results load relative to it).  ``in_files``: a
    ``file`` (or ``file_array``) result naming files of the job's own ``.files/`` (relative names): stored as their
    absolute locations, as Ruby does, and loaded as ``<location>.files/<name>`` wherever the job is read from.
    Raises UnsupportedValueError for a value the type or format cannot hold exactly, InvalidInputError for a
    format that does not apply, MissingDependencyError when the format's library is missing.
    """
    where = location or key
    if value is None:
        return Encoded(None, {"format": "none"}, None)
    asked = None if format in (None, "", "auto") else str(format)
    any_value = is_pickled(scout_type)
    if asked is not None and not any_value and info_type(scout_type) != "binary":
        raise InvalidInputError(
            f"format={asked!r} applies to results of any Python type (type=None); {where} is declared as Scout type "
            f"{scout_type!r}, whose bytes Ruby reads: drop format= or type="
        )
    if asked == PICKLE:
        return _encode_pickle(value, key, compression, hmac_key, where)
    if asked is not None:
        return _encode_format(formats.get(asked), value, compression, where)
    if any_value:
        chosen = formats.for_value(value)
        if chosen is not None:
            try:
                return _encode_format(chosen, value, compression, where)
            except (UnsupportedValueError, MissingDependencyError) as exc:
                log.info("%s: a %s is stored as a pickle, not %s (%s)", where, type(value).__name__, chosen.name, exc)
        return _encode_pickle(value, key, compression, hmac_key, where)
    stype = info_type(scout_type)
    if stype == "tsv" and _is_pandas(value):
        return _encode_tsv_frame(value, where)
    if in_files is not None and stype in ("file", "file_array"):
        return _encode_in_files(in_files, stype, location or key)
    try:
        data = scout_types.dump(value, stype)
    except (UnsupportedValueError, UnicodeEncodeError) as exc:
        why = f"text Ruby reads is UTF-8, which cannot hold {exc}" if isinstance(exc, UnicodeEncodeError) else exc
        raise UnsupportedValueError(
            f"a {type(value).__name__} cannot be stored as Scout type {stype!r}: {why}; {_fix(stype)}"
        ) from exc
    record: dict[str, Any] = {"format": "scout", "type": stype, "stored_size": len(data), "checksum": checksum(data)}
    if stype == "binary" and not _ends_with_newline(value):
        record["newline"] = True  # Ruby appends a newline to binary results; it is not part of the value
    try:
        back = _decode_scout(data, record, location, None)
    except CorruptPayloadError as exc:  # written, but unreadable: every cache hit would be a miss
        raise UnsupportedValueError(
            f"a {type(value).__name__} cannot be stored as Scout type {stype!r}: the bytes written for it do not "
            f"load back ({exc}); {_fix(stype)}"
        ) from exc
    require_roundtrip(value, back, stype)
    return Encoded(data, record, handed(value, back))


def _encode_pickle(value: Any, key: str, compression: str | None, hmac_key: Any, where: str) -> Encoded:
    require_pickle_allowed("store", f"{where} (a {type(value).__name__})")
    data, prec, back = pickle_envelope.dump_pickle_handing_on(value, compression, hmac_key, bind=key)
    record = {"format": PICKLE, **{k: v for k, v in prec.items() if k != "serializer"}}
    return Encoded(data, record, back)


def _encode_format(fmt: formats.Format, value: Any, compression: str | None, where: str) -> Encoded:
    stored = fmt.encode(value, compression, where)
    record = {"format": fmt.name, "version": fmt.version, **stored.record}
    return Encoded(stored.data, record, stored.value)


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "pandas"


def _encode_tsv_frame(value: Any, where: str) -> Encoded:
    """A DataFrame (or Series) as a Scout ``tsv`` result: Ruby's TSV bytes; the record keeps the dtypes."""

    data, meta = tsv.dump_frame(value, where)
    record: dict[str, Any] = {
        "format": "scout",
        "type": "tsv",
        "pandas": meta,
        "stored_size": len(data),
        "checksum": checksum(data),
    }
    back = tsv.load_frame(data, meta, where)
    problem = difference(value, back)
    if problem:
        raise UnsupportedValueError(
            f"a {type(value).__name__} cannot be stored as Scout type 'tsv' without change: a cache hit would give "
            f"back a different table ({problem}); TSV cells are text: use columns of str, int, float or bool, "
            "unique str index values without tabs or newlines, or declare type=None (Parquet)"
        )
    return Encoded(data, record, back)


def _encode_in_files(in_files: str | Sequence[str], stype: str, location: str) -> Encoded:
    names = [in_files] if isinstance(in_files, str) else list(in_files)
    paths = [f"{location}.files/{name}" for name in names]
    data = "\n".join(paths).encode("utf-8")
    record = {
        "format": "scout",
        "type": stype,
        "in_files": names[0] if stype == "file" else names,
        "stored_size": len(data),
        "checksum": checksum(data),
    }
    return Encoded(data, record, paths[0] if stype == "file" else paths)


def streams(data: Any) -> bool:
    """Whether ``data`` is parts too large to join in memory (written through a streaming writer)."""
    return isinstance(data, formats.Parts) and data.nbytes > JOIN_MAX


def joined(data: Any) -> bytes | Any:
    """``data`` as one buffer (parts joined)."""
    return b"".join(data) if isinstance(data, formats.Parts) else data


def write(store: Any, key: str, data: Any) -> None:
    """Store ``data`` (bytes, a buffer, or parts written back to back) at ``key`` atomically."""
    if streams(data):
        with store.writer(key) as fh:
            for part in data:
                fh.write(part)
        return
    store.put(key, joined(data))


def read(store: Any, key: str, record: Mapping[str, Any] | None = None, *, use: bool = False) -> Any:
    """The stored bytes of the result at ``key``, as :func:`decode` wants them for ``record``: a private memory map
    of a local file when the format decodes in place (uncompressed NPY and Arrow: zero copy), a writable buffer
    when the value is built on the payload's own memory, else bytes.  KeyNotFound when absent.  ``use``: the read
    is a use of the entry (:mod:`scout_persist.usage`), recorded on the file read where it is read whole."""
    fmt = None
    if record is not None:
        try:
            fmt = formats.for_record(record, key)
        except Exception:  # noqa: BLE001 - an unreadable record: decode() reports it
            fmt = None
    if fmt is not None and record is not None and fmt.maps(record):
        mapped = store.map(key)
        if mapped is not None:
            if use:
                usage.touch(store, key)
            return mapped
    if fmt is not None and record is not None and fmt.writable(record):
        data = _read_writable(store, key, int(record.get("stored_size") or 0))
        if use:
            usage.touch(store, key)
        return data
    return usage.read_used(store, key) if use else store.get(key)


def _read_writable(store: Any, key: str, size: int) -> Any:
    """The whole entry in one new writable buffer (``size`` is a hint; a longer or shorter entry is read whole).
    Small entries take one GET and a copy; large ones are streamed into the buffer (no second copy in memory)."""
    if size <= JOIN_MAX:
        return bytearray(store.get(key))
    buf = bytearray(size)
    view = memoryview(buf)
    filled = 0
    with store.open(key) as fh:
        while filled < size:
            n = fh.readinto(view[filled:])
            if not n:
                break
            filled += n
        rest = fh.read()
    if filled < size:
        return bytes(view[:filled])  # shorter than recorded: the size check names it
    if rest:
        return bytes(buf) + rest  # longer than recorded: the size check names it
    return buf


def decode(
    data: bytes | None,
    record: Mapping[str, Any] | None,
    *,
    key: str,
    scout_type: str | None = None,
    location: str | None = None,
    relocate: Callable[[str], str] | None = None,
    hmac_key: bytes | str | None = None,
) -> Any:
    """The value of a stored result.  With a ``record`` (jobs we wrote): size and checksum verified, then decoded
    as the record says.  Without one (Ruby's jobs): Ruby's rules for ``scout_type``; never unpickled."""
    where = location or key
    if record is None:
        if data is None:
            raise CorruptPayloadError(f"{where}: no result bytes to decode")
        if scout_type == PICKLE:
            require_pickle_allowed("load", where)
        return scout_types.load(bytes(data), scout_type or "binary", path=location, relocate=relocate)
    fmt = record.get("format")
    if fmt == "none":
        return None
    if fmt not in FORMATS:
        raise CorruptPayloadError(
            f"{where}: payload format {fmt!r} is unknown to this version of scout-persist (known: "
            f"{', '.join(FORMATS)}); upgrade scout-persist to read it"
        )
    if data is None:
        raise CorruptPayloadError(f"{where}: the record says {fmt!r} but there is no result file")
    typed = formats.for_record(record, where)
    if typed is not None:
        typed.verify(data, record, where)
        return typed.decode(data, record, where)
    if fmt == PICKLE:
        require_pickle_allowed("load", where)
    verify(data, record, where)
    if fmt == PICKLE:
        return pickle_envelope.load_pickle(data, where, hmac_key=hmac_key, bind=key)
    return _decode_scout(data, record, location, relocate)


def verify(data: Any, record: Mapping[str, Any], where: str) -> None:
    """CorruptPayloadError unless ``data`` has the size and checksum ``record`` gives."""
    typed = formats.for_record(record, where)
    if typed is not None:
        typed.verify(data, record, where)
        return
    size = memoryview(data).nbytes
    expected_size = record.get("stored_size")
    if expected_size is not None and expected_size != size:
        raise CorruptPayloadError(
            f"{where} holds {size} bytes but its .info says {expected_size}: truncated, damaged or replaced"
        )
    expected = record.get("checksum")
    if not expected:
        raise CorruptPayloadError(f"{where}: its .info records no checksum for the result; it cannot be verified")
    if not checksum_matches(str(expected), data):
        raise CorruptPayloadError(
            f"{where} does not match the checksum in its .info ({expected}): damaged, tampered or replaced"
        )


def record_of(info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The payload record in a job's ``.info`` (None for jobs without one, such as Ruby's)."""
    record = info.get(RECORD_KEY)
    if isinstance(record, Mapping) and record.get("format"):
        return dict(record)
    if info.get("serializer") == PICKLE:  # written before the record had its own key
        return {"format": PICKLE, **{k: info[k] for k in _LEGACY_PICKLE_KEYS if k in info}}
    return None


def ruby_type(record: Mapping[str, Any]) -> str | None:
    """The ``.info`` type Ruby must see for a payload of ``record`` (None: the declared type stands)."""
    fmt = record.get("format")
    if fmt == PICKLE:
        return "binary"
    if fmt in formats.names():
        return formats.get(str(fmt)).ruby_type
    return None


def _decode_scout(data: Any, record: Mapping[str, Any], location: str | None, relocate: Any) -> Any:
    stype = str(record.get("type") or "binary")
    if stype == "tsv" and isinstance(record.get("pandas"), Mapping):
        return tsv.load_frame(bytes(data), record["pandas"], location or "<tsv>")
    ref = record.get("in_files")
    if ref is not None and stype in ("file", "file_array") and location:
        paths = [f"{location}.files/{name}" for name in ([ref] if isinstance(ref, str) else ref)]
        return paths[0] if stype == "file" else paths
    value = scout_types.load(bytes(data), stype, path=location, relocate=relocate)
    if stype == "binary" and record.get("newline") and value.endswith(b"\n"):
        value = value[:-1]
    return value


def _ends_with_newline(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value[-1:]) == b"\n"
    return str(value).endswith("\n")


# ------------------------------------------------------------------------------------------------- contract
def handed(value: Any, back: Any) -> Any:
    """The value to hand on: the original when its load is indistinguishable from it (no copy), else the load."""
    return value if difference(value, back) is None else back


def require_roundtrip(value: Any, back: Any, stype: str) -> None:
    """UnsupportedValueError unless ``back`` (the load of ``value`` stored as ``stype``) is ``value`` up to a
    lossless change of representation.  A ``path`` result always loads as the result file's own path (Ruby)."""
    problem = None if stype == "path" else _contract_problem(value, back, stype)
    if problem:
        raise UnsupportedValueError(problem)


def _contract_problem(value: Any, back: Any, stype: str) -> str | None:
    if isinstance(back, bytes) and isinstance(value, (bytes, bytearray, memoryview, str)) and stype == "binary":
        raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
        if back == raw or back == raw + b"\n":  # the newline Ruby appends to binary results
            return None
    if lossless(value, back):
        return None
    shown = f"{type(value).__name__} {value!r:.80}"
    return (
        f"a {shown} cannot be stored as Scout type {stype!r} without change: a cache hit would give "
        f"{type(back).__name__} {back!r:.80}; {_fix(stype)}"
    )


def _fix(stype: str) -> str:
    if stype.endswith("_array"):
        return f"return a list of {stype[: -len('_array')]} values, or declare type='json' or type=None"
    return _FIXES.get(stype, "declare type=None (any Python value, stored as a pickle)")


_FIXES = {
    "string": "return a str without surrounding whitespace, or declare type='text' (kept as is) or type=None",
    "select": "return a str without surrounding whitespace, or declare type='text' or type=None",
    "folder": "return a str without surrounding whitespace, or declare type='text' or type=None",
    "text": "return a str, or declare type=None (any Python value)",
    "integer": "return an int, or declare type=None (any Python value)",
    "float": "return a float, or declare type=None (any Python value)",
    "boolean": "return a bool, or declare type=None (any Python value)",
    "array": "return a list of str without newlines (the last one non-empty), or declare type='json' or type=None",
    "json": "return JSON data (dict with str keys, list, str, int, float, bool, None), or declare type=None",
    "yaml": "return YAML-safe data, or declare type=None",
    "marshal": "return a value Ruby Marshal holds, or declare type=None",
    "binary": "return bytes, or declare type=None (any Python value)",
    "tsv": "return a scout_persist.TSV, or declare type=None",
    "file": "return the path of an existing file, or declare type='text' to store the path as text",
}


def lossless(a: Any, b: Any) -> bool:
    """Whether ``b`` (a load of ``a``) is ``a`` up to a documented lossless change of representation: a tuple as a
    list, ``bytearray``/``memoryview``/``str`` as ``bytes``, a Symbol or Path as ``str``, an ``int`` as the float
    that holds it exactly, a numpy scalar as its Python value.  Anything else must be indistinguishable
    (:func:`scout_persist.equality.difference`)."""
    if isinstance(a, (bytes, bytearray, memoryview)) and isinstance(b, bytes):
        return bytes(a) == b
    if isinstance(a, str) and isinstance(b, bytes):
        return a.encode("utf-8", "surrogateescape") == b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):  # by the bits: -0.0 is not 0.0; NaN is NaN
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, int) and isinstance(b, float):
        return float(a) == b and int(b) == a
    if isinstance(a, (Symbol, pathlib.PurePath)) and type(b) is str:
        return os.fspath(a) == b if isinstance(a, pathlib.PurePath) else str(a) == b
    if isinstance(a, (list, tuple)) and isinstance(b, list):
        return len(a) == len(b) and all(lossless(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):  # keys exactly, in their order
        return len(a) == len(b) and all(
            difference(ka, kb) is None and lossless(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    if type(a).__module__.split(".")[0] == "numpy" and hasattr(a, "item") and getattr(a, "shape", None) == ():
        return lossless(a.item(), b)
    return difference(a, b) is None  # anything else must come back indistinguishable (a datetime keeps its tzinfo)


__all__ = [
    "ALLOW_PICKLE_ENV",
    "Encoded",
    "RECORD_KEY",
    "decode",
    "encode",
    "handed",
    "info_type",
    "is_pickled",
    "lossless",
    "pickle_allowed",
    "read",
    "record_of",
    "require_pickle_allowed",
    "require_roundtrip",
    "ruby_type",
    "verify",
    "write",
]
