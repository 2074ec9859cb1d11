"""``safetensors``: a dict of named arrays (numpy; torch tensors when torch is installed) as safetensors.

Chosen for a non-empty ``dict`` of ``str`` -> ``numpy.ndarray`` of booleans, integers or floats (up to 64 bits) in
native byte order (or -> CPU ``torch.Tensor`` without ``requires_grad``); no key may be ``__metadata__``.  The
safetensors file orders tensors its own way, so the record keeps the dict's key order and a load gives the keys back
in it.  A safetensors file holds C-ordered data: an array in another layout (transposed, Fortran-ordered, a strided
view) or read-only is stored as, and handed on as, its C-contiguous writable copy, which is what every load gives
back.  The compression spec applies to the whole file (the codec's encoding; ``none`` leaves a plain
``.safetensors`` file).

Record: ``{"format": "safetensors", "version": 1, "framework": "numpy"|"torch", "names": [...], "codec", "level",
"size", "stored_size", "checksum"}``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ..checksums import checksum
from ..errors import CorruptPayloadError, UnsupportedValueError
from ..zstd_codec import compress_with_record, decompress
from . import Format, Stored, compression, loaded

_DTYPES = frozenset("bool int8 uint8 int16 uint16 int32 uint32 int64 uint64 float16 float32 float64".split())
_RESERVED = "__metadata__"  # the header's own entry: no tensor may have this name


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
    version = 1
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
            record.update(codec="none", level=None)
        else:
            data, crec = compress_with_record(raw, spec)
            record.update(codec=crec["codec"], level=crec["level"])
        record.update(stored_size=len(data), checksum=checksum(data))
        return Stored(data, record, arrays)

    def decode(self, data: Any, record: Mapping[str, Any], where: str) -> Any:
        framework = str(record.get("framework") or "numpy")
        if framework not in ("numpy", "torch"):
            raise CorruptPayloadError(f"{where}: safetensors framework {framework!r} is unknown")
        if framework == "torch" and "torch" not in sys.modules:
            self.require("torch", "reading tensors stored", where)
        lib = self.require(f"safetensors.{framework}", "reading arrays stored", where)
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
