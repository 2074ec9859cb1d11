"""``safetensors``: a dict of named arrays (numpy; torch tensors when torch is installed) as safetensors.

Chosen for a non-empty ``dict`` of ``str`` -> ``numpy.ndarray`` of booleans, integers or floats (up to 64 bits) in
native byte order (or -> CPU ``torch.Tensor`` without ``requires_grad``); no key may be ``__metadata__``.  The
safetensors file orders tensors its own way, so the record keeps the dict's key order and a load gives the keys back
in it.  A safetensors file holds C-ordered data: an array in another layout (transposed, Fortran-ordered, a strided
view) or read-only is stored as, and handed on as, its C-contiguous writable copy, which is what every load gives
back.  ``none`` leaves a plain ``.safetensors`` file (version 1).

Compressed numpy arrays (version 2): the safetensors header (its 8-byte length and JSON, the tensors laid out in the
dict's order) and each array's bytes are the parts of :mod:`scout_persist.envelope_parts`, each encoded on all
cores by its item size (Blosc2 for the arrays of its break-even size or more under ``auto``, zstd frames for the
rest), the checksum taken of the stored chunks as they are encoded; a load decodes the header, makes each array with
``numpy.empty`` and decodes its chunks straight into it.  The parts decoded back to back are the ``.safetensors``
file.  torch tensors, and version 1 records (the whole file as one zstd frame), go through the safetensors library.

Record: ``{"format": "safetensors", "version": 1|2, "framework": "numpy"|"torch", "names": [...], "codec",
"level", "size", "stored_size", "checksum"}``, and for version 2 ``"parts"``, the envelope-parts header (the
``codec`` then names each part's codec).
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Mapping
from typing import Any

from ..checksums import checksum, checksum_algorithm, new_checksum
from ..codec_spec import parse_spec
from ..envelope_parts import decode_parts, encode_parts
from ..errors import CorruptPayloadError, UnsupportedValueError
from ..zstd_codec import compress_with_record, decompress
from . import Format, Stored, compression, loaded, stored_pieces

# numpy dtype name -> the safetensors header's name for it
_DTYPES = {
    "bool": "BOOL",
    "int8": "I8",
    "uint8": "U8",
    "int16": "I16",
    "uint16": "U16",
    "int32": "I32",
    "uint32": "U32",
    "int64": "I64",
    "uint64": "U64",
    "float16": "F16",
    "float32": "F32",
    "float64": "F64",
}
_NUMPY_DTYPES = {v: k for k, v in _DTYPES.items()}
_RESERVED = "__metadata__"  # the header's own entry: no tensor may have this name
PLAIN_VERSION = 1  # a .safetensors file, or (read only) one zstd frame of it
PARTS_VERSION = 2  # the header and each array as envelope parts
_LENGTH = struct.Struct("<Q")  # the header's length, before it


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_parts(np: Any, data: Any, header: Any, where: str) -> dict[str, Any]:
    """The arrays of a version 2 payload, each decoded straight into its own ``numpy.empty`` memory, in file order."""
    if not isinstance(header, list) or not header or not isinstance(header[0], dict):
        raise CorruptPayloadError(f"{where}: its .info lists no safetensors parts")
    stored = header[0].get("stored")
    first = sum(stored) if isinstance(stored, list) and all(type(n) is int for n in stored) else -1
    view = memoryview(data)
    if not 0 <= first <= view.nbytes:
        raise CorruptPayloadError(f"{where}: the safetensors header part is damaged ({header[0]!s:.120})")
    (head,) = decode_parts(header[:1], view[:first], where)
    arrays = _empty_arrays(np, bytes(head), len(header) - 1, where)
    decode_parts(header[1:], view[first:], where, into=[a.reshape(-1).view("u1") for a in arrays.values()])
    return arrays


def _empty_arrays(np: Any, head: bytes, count: int, where: str) -> dict[str, Any]:
    """An empty array per tensor the safetensors header ``head`` names, in the order of their data."""
    try:
        (length,) = _LENGTH.unpack_from(head)
        if length != len(head) - _LENGTH.size:
            raise ValueError(f"it says {length} bytes where {len(head) - _LENGTH.size} are stored")
        entries = json.loads(head[_LENGTH.size :].decode("utf-8"))
        if not isinstance(entries, dict):
            raise ValueError("it is not a JSON object")
        entries.pop(_RESERVED, None)
        arrays: dict[str, Any] = {}
        end = 0
        for name, entry in sorted(entries.items(), key=lambda item: item[1]["data_offsets"][0]):
            shape = entry["shape"]
            if not all(type(n) is int and n >= 0 for n in shape):
                raise ValueError(f"{name!r} has shape {shape!r}")
            arr = np.empty(shape, dtype=_NUMPY_DTYPES[entry["dtype"]])
            if entry["data_offsets"] != [end, end + arr.nbytes]:
                raise ValueError(f"{name!r} has data offsets {entry['data_offsets']!r} where [{end}, ...] was next")
            end += arr.nbytes
            arrays[name] = arr
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, struct.error) as exc:
        raise CorruptPayloadError(f"{where}: the safetensors header is damaged ({exc!s:.200})") from exc
    if len(arrays) != count:
        raise CorruptPayloadError(
            f"{where}: the safetensors header names {len(arrays)} tensors where {count} are stored"
        )
    return arrays


def _numpy_ok(np: Any, v: Any) -> bool:
    return type(v) is np.ndarray and v.dtype.name in _DTYPES and v.dtype.isnative


def _as_loaded(v: Any, framework: str) -> Any:
    """``v`` as a load gives it back: C-contiguous and writable (a copy only when ``v`` is not)."""
    if framework == "torch":
        return v.contiguous()
    if v.flags.c_contiguous and v.flags.writeable:
        return v
    return v.copy(order="C")


def _torch_ok(torch: Any, v: Any) -> bool:
    return (
        isinstance(v, torch.Tensor)
        and type(v) is torch.Tensor
        and v.device.type == "cpu"
        and not v.requires_grad
        and v.layout == torch.strided
    )


class SafeTensors(Format):
    name = "safetensors"
    version = PARTS_VERSION
    libraries = ("safetensors",)

    def framework(self, value: Any) -> str | None:
        if type(value) is not dict or not value or not all(type(k) is str for k in value) or _RESERVED in value:
            return None
        np = loaded("numpy")
        if np is not None and all(_numpy_ok(np, v) for v in value.values()):
            return "numpy"
        torch = loaded("torch")
        if torch is not None and all(_torch_ok(torch, v) for v in value.values()):
            return "torch"
        return None

    def can_encode(self, value: Any) -> bool:
        return self.framework(value) is not None

    def encode(self, value: Any, spec: str | None, where: str) -> Stored:
        framework = self.framework(value)
        if framework is None:
            raise UnsupportedValueError(
                f"a {type(value).__name__} cannot be stored as safetensors: safetensors holds a non-empty dict of "
                "str -> numpy arrays of bool/int/float in native byte order (or CPU torch tensors without "
                "requires_grad); convert the values, or declare format='pickle'"
            )
        lib = self.require(f"safetensors.{framework}", "storing a dict of arrays", where)
        # safetensors writes an array's memory as it lies: every array is stored, and handed on, as the C-contiguous,
        # writable array a load gives back (the value itself when it is one already, so no copy)
        arrays = {k: _as_loaded(v, framework) for k, v in value.items()}
        if framework == "numpy" and parse_spec(spec)[0] != "none":
            return self._encode_parts(arrays, spec)
        try:
            raw = lib.save(arrays)
        except Exception as exc:  # safetensors' own SafetensorError, ValueError
            raise UnsupportedValueError(
                f"a dict of {framework} arrays cannot be stored as safetensors ({type(exc).__name__}: {exc}); "
                "declare format='pickle'"
            ) from exc
        codec, _level = compression(spec)
        record: dict[str, Any] = {"framework": framework, "names": list(value), "size": len(raw)}
        if codec == "none":
            data = raw
            record.update(version=PLAIN_VERSION, codec="none", level=None)
        else:
            data, crec = compress_with_record(raw, spec)
            record.update(version=PLAIN_VERSION, codec=crec["codec"], level=crec["level"])
        record.update(stored_size=len(data), checksum=checksum(data))
        return Stored(data, record, arrays)

    def _encode_parts(self, arrays: dict[str, Any], spec: str | None) -> Stored:
        """Version 2: the header, then each array's own memory, as envelope parts (no copy of the data)."""
        names = list(arrays)
        bad = [n for n in names if not _utf8(n)]
        if bad:
            raise UnsupportedValueError(
                f"a dict of numpy arrays cannot be stored as safetensors: its header is UTF-8 JSON, which cannot hold "
                f"the names {bad!r:.60}; rename them, or declare format='pickle'"
            )
        bodies = [arrays[n].reshape(-1).view("u1") for n in names]
        entries, offset = {}, 0
        for name, body in zip(names, bodies):
            arr = arrays[name]
            entries[name] = {
                "dtype": _DTYPES[arr.dtype.name],
                "shape": list(arr.shape),
                "data_offsets": [offset, offset + body.nbytes],
            }
            offset += body.nbytes
        text = json.dumps(entries, separators=(",", ":")).encode("utf-8")
        text += b" " * (-(len(text) + _LENGTH.size) % 8)  # the data starts 8-byte aligned, as safetensors writes it
        head = _LENGTH.pack(len(text)) + text
        digest = new_checksum(size_hint=offset)
        parts = encode_parts([head, *bodies], [1, *(arrays[n].dtype.itemsize for n in names)], spec, digest)
        record: dict[str, Any] = {
            "version": PARTS_VERSION,
            "framework": "numpy",
            "names": names,
            "size": parts.size,
            "codec": parts.codec,
            "level": None,
            "parts": parts.header,
            "stored_size": sum(sum(p["stored"]) for p in parts.header),
            "checksum": f"{checksum_algorithm()}:{digest.hexdigest()}",
        }
        return Stored(stored_pieces(parts.pieces), record, arrays)

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        framework = str(record.get("framework") or "numpy")
        if framework not in ("numpy", "torch"):
            raise CorruptPayloadError(f"{where}: safetensors framework {framework!r} is unknown")
        if framework == "torch" and "torch" not in sys.modules:
            self.require("torch", "reading tensors stored", where)
        lib = self.require(f"safetensors.{framework}", "reading arrays stored", where)
        if "parts" in record:
            if framework != "numpy":
                raise CorruptPayloadError(f"{where}: safetensors parts are numpy arrays, not {framework} tensors")
            tensors = _decode_parts(self.require("numpy", "reading arrays stored", where), data, record["parts"], where)
        else:
            raw = bytes(data) if record.get("codec") == "none" else decompress(data, where)
            try:
                tensors = lib.load(bytes(raw))
            except Exception as exc:
                raise CorruptPayloadError(f"{where}: the safetensors payload does not load ({exc})") from exc
        names = record.get("names") or sorted(tensors)
        if set(names) != set(tensors):
            raise CorruptPayloadError(f"{where}: the tensors stored are not the ones its .info names")
        return {name: tensors[name] for name in names}


FORMAT = SafeTensors()
